"""The NAS-Bench-Macro space: 8-character strings of identity and MobileNetV2 layers.

A genotype is the string as NAS-Bench-Macro writes it, e.g. ``"02012100"``: one of
``0`` (identity), ``1`` (inverted residual k3 e3) or ``2`` (k5 e6) for each of eight
layers in stages of 2, 3 and 3, built into the benchmark's network
(:func:`tapas.core.arch.macro.from_macro`). Its key is the string the benchmark trained
for it (``trained_arch``, :func:`tapas.core.arch.macro.canonical_string`), since strings
that differ only in where a stage's later identities sit are one network: 6,561
strings, 3,969 networks. Mutation changes one character so that the network changes.

Each stage halves the map with a stride-2 layer, so the space takes inputs whose sides
are at least 8 (three halvings that each still down-sample).

``macro-small`` is the same networks at reduced width, for the starter data's small
datasets: ``{"space": "macro-small", "arch": "02012100", "stem": 4, "head": 128}``, the
published string under ``arch`` (untouched notation), the stem's width (the stages are
2x, 4x and 8x it, as in the benchmark's 32 -> 64 -> 128 -> 256) and the head's. Sampling
draws the string uniformly at stem 4 and head 128 (an eighth and a tenth of the
benchmark's: about 12 core-seconds per 32x32 run of the starter v2 recipe, mostly the
depthwise convs' backward pass); mutation changes the string as in ``macro``.
"""

from __future__ import annotations

import random
from typing import Any

from tapas.core.arch import Architecture
from tapas.core.arch.macro import LENGTH, MACRO_CHOICES, canonical_string, from_macro, parse_string
from tapas.core.spaces.base import DictSpace, Space

MIN_SIDE = 2 ** 3
SMALL_STEM, SMALL_HEAD = 4, 128
MAX_WIDTH = 1280


class Macro(Space):
    """NAS-Bench-Macro strings in the benchmark's network (CIFAR-10 size)."""

    name = "macro"
    description = "NAS-Bench-Macro strings: 8 identity / MobileNetV2 layers in 3 stages"
    inputs = f"inputs whose sides are both at least {MIN_SIDE}"
    size = len(MACRO_CHOICES) ** LENGTH

    def parse(self, obj: Any) -> str:
        return parse_string(obj)

    def format(self, genotype: str) -> str:
        return genotype

    def validate(self, genotype: Any) -> None:
        parse_string(genotype)

    def sample(self, rng: random.Random) -> str:
        return "".join(rng.choice(MACRO_CHOICES) for _ in range(LENGTH))

    def mutate(self, genotype: str, rng: random.Random) -> str:
        """One character changed, chosen uniformly among the changes that change the
        network (moving a later identity within its stage does not)."""
        key = canonical_string(genotype)
        edits = [genotype[:i] + ch + genotype[i + 1:] for i in range(LENGTH)
                 for ch in MACRO_CHOICES if ch != genotype[i]]
        return rng.choice([g for g in edits if canonical_string(g) != key])

    def key(self, genotype: str) -> str:
        return canonical_string(genotype)

    def describe(self, genotype: str) -> str:
        return genotype

    def fits(self, input_shape: tuple[int, ...]) -> bool:
        return min(input_shape[1:]) >= MIN_SIDE

    def _network(self, genotype: str, input_shape: tuple[int, int, int],
                 num_classes: int) -> Architecture:
        return from_macro(genotype, num_classes, input_shape)


class MacroSmall(DictSpace):
    """NAS-Bench-Macro networks at reduced width (the string plus the stem and head)."""

    name = "macro-small"
    description = (f"NAS-Bench-Macro strings at reduced width (stem {SMALL_STEM}, head "
                   f"{SMALL_HEAD}: starter data)")
    inputs = Macro.inputs

    def sample(self, rng: random.Random) -> dict[str, Any]:
        return {"space": self.tag, "arch": SPACE.sample(rng), "stem": SMALL_STEM,
                "head": SMALL_HEAD}

    def validate(self, genotype: Any) -> None:
        self._check_tag(genotype)
        if set(genotype) != {"space", "arch", "stem", "head"}:
            raise ValueError("a macro-small genotype is {'space', 'arch', 'stem', 'head'}")
        parse_string(genotype["arch"])
        for key in ("stem", "head"):
            v = genotype[key]
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_WIDTH:
                raise ValueError(f"macro-small genotype: '{key}' must be an integer in "
                                 f"[1, {MAX_WIDTH}]")

    def mutate(self, genotype: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """The string changed as :meth:`Macro.mutate` does; the widths kept."""
        self.validate(genotype)
        return {**genotype, "arch": SPACE.mutate(genotype["arch"], rng)}

    def describe(self, genotype: dict[str, Any]) -> str:
        return f"{genotype['arch']} stem={genotype['stem']} head={genotype['head']}"

    def fits(self, input_shape: tuple[int, ...]) -> bool:
        return SPACE.fits(input_shape)

    def _network(self, genotype: dict[str, Any], input_shape: tuple[int, int, int],
                 num_classes: int) -> Architecture:
        return from_macro(genotype["arch"], num_classes, input_shape, genotype["stem"],
                          genotype["head"])


SPACE = Macro()
SMALL = MacroSmall()
