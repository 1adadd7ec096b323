"""Search spaces expressed in the architecture IR.

Each space is a module with the same functions:

* ``sample(rng) -> genotype``: a random member; ``rng`` is a ``random.Random``, so a
  seed fixes the draw;
* ``build(genotype, input_shape, num_classes) -> Architecture``: the network for one
  dataset; the layer list depends only on the genotype, so one genotype has one
  :attr:`~tapas.arch.Architecture.template_id` on every dataset it fits;
* ``mutate(genotype, rng) -> genotype``: a random local edit (for evolutionary search);
* ``compatible(input_shape) -> bool`` and ``validate(genotype)``.

Genotypes are small JSON-able dicts carrying their space's name (``"space"``), so
:func:`build` can dispatch on them. Pure Python: no torch.
"""

from __future__ import annotations

import json
import random
from types import ModuleType
from typing import Any

from tapas.arch import Architecture
from tapas.spaces import chain, darts, nb101, nb201

SPACES: dict[str, ModuleType] = {"chain": chain, "nb201": nb201, "darts": darts,
                                 "nb101": nb101}


def get_space(name: str) -> ModuleType:
    """The space module called ``name``; a clear error for unknown names."""
    try:
        return SPACES[name]
    except KeyError:
        raise ValueError(f"unknown search space {name!r}; expected one of "
                         f"{', '.join(SPACES)}") from None


def build(genotype: dict[str, Any], input_shape: tuple[int, int, int],
          num_classes: int) -> Architecture:
    """Build any space's genotype (dispatches on ``genotype["space"]``)."""
    if not isinstance(genotype, dict) or "space" not in genotype:
        raise ValueError(f"a genotype must be a dict with a 'space' key, got {genotype!r}")
    return get_space(genotype["space"]).build(genotype, tuple(input_shape), num_classes)


def genotype_key(genotype: dict[str, Any]) -> str:
    """Canonical JSON of a genotype (stable across runs; usable as a dict key)."""
    return json.dumps(genotype, sort_keys=True, separators=(",", ":"))


REFERENCE_SHAPE = (1, 8, 8)
"""Any shape every space fits; template ids do not depend on it."""


def template_of(genotype: dict[str, Any]) -> str:
    """The :attr:`~tapas.arch.Architecture.template_id` a genotype builds on every dataset."""
    return build(genotype, REFERENCE_SHAPE, 10).template_id


def sample_unique(space: str, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` genotypes of ``space`` drawn with ``random.Random(seed)`` that build ``n``
    different networks (genotypes equal up to unused genes, e.g. the down-sampling of
    a one-stage chain, count once)."""
    mod = get_space(space)
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n + 1000:
            raise ValueError(f"space {space!r} has fewer than {n} distinct networks")
        g = mod.sample(rng)
        k = template_of(g)
        if k not in seen:
            seen.add(k)
            out.append(g)
    return out


__all__ = ["REFERENCE_SHAPE", "SPACES", "build", "chain", "darts", "genotype_key", "get_space",
           "nb101", "nb201", "sample_unique", "template_of"]
