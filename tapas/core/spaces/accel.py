"""The Accel-NASBench space: MnasNet / EfficientNet-B0-style MBConv networks.

A genotype is the benchmark's design with the space's tag: ``{"space": "accel",
"block0_e": 6, "block0_k": 3, "block0_l": 1, "block0_se": false, ..., "block6_se":
true}``, four variables for each of seven blocks (expansion 1/4/6, kernel 3/5, 1-3
layers, 1-4 in block 5, squeeze-and-excitation on/off), built into the benchmark's
ImageNet network (:func:`tapas.core.arch.accel.from_accel`). Every variable changes
the network, so the design itself is the key. Sampling is uniform over the
variables; mutation sets one variable to another of its values.

The stem and four blocks halve the map, so the space takes inputs whose sides are at
least 32 (ImageNet's 224 ends at 7x7).
"""

from __future__ import annotations

import math
import random
from typing import Any

from tapas.core.arch import Architecture
from tapas.core.arch.accel import (
    BLOCKS,
    EXPANSIONS,
    KERNELS,
    VARIABLES,
    from_accel,
    layer_choices,
    parse_design,
)
from tapas.core.spaces.base import DictSpace, canonical_json

MIN_SIDE = 2 ** 5

Genotype = dict[str, Any]


def _values(variable: str) -> tuple[Any, ...]:
    kind = variable.rsplit("_", 1)[1]
    if kind == "l":
        return layer_choices(int(variable[len("block")]))
    return {"e": EXPANSIONS, "k": KERNELS, "se": (False, True)}[kind]


class Accel(DictSpace):
    """Accel-NASBench designs in the benchmark's network (ImageNet size)."""

    name = "accel"
    description = "Accel-NASBench MBConv networks: 7 blocks of expansion, kernel, layers, SE"
    inputs = f"inputs whose sides are both at least {MIN_SIDE}"
    size = math.prod(len(_values(v)) for v in VARIABLES)

    def parse(self, obj: Any) -> Genotype:
        """The design with ``se`` as booleans (the published table writes 0/1)."""
        return {"space": self.tag, **parse_design(super().parse(obj))}

    def validate(self, genotype: Any) -> None:
        self._check_tag(genotype)
        parse_design(genotype)

    def key(self, genotype: Genotype) -> str:
        return canonical_json(self.parse(genotype))

    def sample(self, rng: random.Random) -> Genotype:
        return {"space": self.tag, **{v: rng.choice(_values(v)) for v in VARIABLES}}

    def mutate(self, genotype: Genotype, rng: random.Random) -> Genotype:
        g = self.parse(genotype)
        v = rng.choice(VARIABLES)
        g[v] = rng.choice([x for x in _values(v) if x != g[v]])
        return g

    def describe(self, genotype: Genotype) -> str:
        """Each block as ``e6k3l2``, with ``se`` when it has squeeze-and-excitation."""
        g = parse_design(genotype)
        return " ".join(f"e{g[f'block{b}_e']}k{g[f'block{b}_k']}l{g[f'block{b}_l']}"
                        + ("se" if g[f"block{b}_se"] else "") for b in range(BLOCKS))

    def fits(self, input_shape: tuple[int, ...]) -> bool:
        return min(input_shape[1:]) >= MIN_SIDE

    def _network(self, genotype: Genotype, input_shape: tuple[int, int, int],
                 num_classes: int) -> Architecture:
        return from_accel(genotype, num_classes, input_shape)


SPACE = Accel()
