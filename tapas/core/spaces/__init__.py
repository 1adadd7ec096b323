"""The one registry of search spaces: ``SPACES[name]`` is a :class:`Space` object.

=============== ==========================================================================
``nb201``       NAS-Bench-201 cells (a cell string) in the benchmark's network
``nb201-small`` the same cells at reduced size: the starter data's networks
``chain``       plain and residual CNN chains: the starter data's main space
``darts``       DARTS / NAS-Bench-301 cell pairs (C=16, 8 cells)
``nb101``       NAS-Bench-101 cells
``macro``       NAS-Bench-Macro strings (identity / MobileNetV2 layers)
``accel``       Accel-NASBench MBConv designs (ImageNet networks)
``nb101-small`` NAS-Bench-101 cells in a smaller network (starter families)
``macro-small`` NAS-Bench-Macro strings at reduced width (starter families)
``resnet``      ResNet-style stages of basic or bottleneck blocks
=============== ==========================================================================

Each space owns its notation (``parse``/``format``), its key, seeded ``sample`` and
``mutate``, which inputs it ``fits``, ``build(genotype, input_shape, num_classes)`` and
what a scorer is asked (``query``). A genotype's layer list depends only on the
genotype, so one genotype has one :attr:`~tapas.core.arch.Architecture.template_id` on
every dataset it fits. Dict genotypes carry their space's tag (``"space"``), so
:func:`build` and :func:`space_of` find their space. Pure Python: no torch.
"""

from __future__ import annotations

import random
from typing import Any

from tapas.core.arch import Architecture
from tapas.core.spaces import accel, chain, darts, macro, nb101, nb201, resnet
from tapas.core.spaces.base import (
    REFERENCE_SHAPE,
    SPACES,
    CellSpecSpace,
    DictSpace,
    SearchSpace,
    Space,
    canonical_json,
    get_space,
    register,
    space_of,
)
from tapas.core.spaces.notation import (
    IR,
    Notation,
    NotationError,
    notations,
    parse_arch,
    parse_archs,
    read_notation,
)

for _space in (nb201.CELLS, nb201.SMALL, chain.SPACE, darts.SPACE, nb101.SPACE, macro.SPACE,
               accel.SPACE, nb101.SMALL, macro.SMALL, resnet.SPACE):
    register(_space)  # in the order the CLI lists them


def build(genotype: Any, input_shape: tuple[int, int, int], num_classes: int) -> Architecture:
    """Build any space's genotype (its space found by :func:`space_of`)."""
    return space_of(genotype).build(genotype, tuple(input_shape), num_classes)


genotype_key = canonical_json
"""Canonical JSON of a genotype (stable across runs; usable as a dict key)."""


def template_of(genotype: Any) -> str:
    """The :attr:`~tapas.core.arch.Architecture.template_id` a genotype builds on every dataset."""
    return build(genotype, REFERENCE_SHAPE, 10).template_id


def sample_unique(space: str, n: int, seed: int) -> list[Any]:
    """``n`` genotypes of ``space`` drawn with ``random.Random(seed)`` that build ``n``
    different networks (genotypes equal up to unused genes, e.g. the down-sampling of
    a one-stage chain, count once)."""
    sp = get_space(space)
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[Any] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n + 1000:
            raise ValueError(f"space {space!r} has fewer than {n} distinct networks")
        g = sp.sample(rng)
        k = sp.key(g)
        if k not in seen:
            seen.add(k)
            out.append(g)
    return out


__all__ = ["IR", "REFERENCE_SHAPE", "SPACES", "CellSpecSpace", "DictSpace", "Notation",
           "NotationError", "SearchSpace", "Space", "accel", "build", "chain", "darts",
           "genotype_key", "get_space", "macro", "nb101", "nb201", "notations", "parse_arch",
           "parse_archs", "read_notation", "register", "resnet", "sample_unique", "space_of",
           "template_of"]
