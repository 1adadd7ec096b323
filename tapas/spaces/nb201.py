"""NAS-Bench-201 cells at reduced size, for small inputs.

A genotype is ``{"space": "nb201", "cell": "|op~0|+|op~0|op~1|+|...|", "channels": 8,
"cells_per_stage": 1}``: a NAS-Bench-201 cell (five ops on six edges) placed in the
benchmark's macro skeleton by :func:`tapas.arch.from_nb201`, with ``channels``
(first-stage width; the three stages use ``c, 2c, 4c``) and ``cells_per_stage``
reduced from the benchmark's 16 and 5 so that training on 8x8 inputs takes well
under a second per epoch on one CPU core.

The skeleton's two reduction blocks halve the input twice and add a strided conv to
an average-pooled shortcut; the two only agree in size when the side is divisible by
4, so the space applies to square inputs whose side is a multiple of 4 (8x8 digits,
28x28 MNIST, 4x4 down-sampled MNIST); :func:`compatible` says which. The layer list
does not depend on the input, so a genotype is one ``template_id`` on all of them.
"""

from __future__ import annotations

import random
from typing import Any

from tapas.arch import NB201_OPS, Architecture, cell_ops, cell_string, from_nb201, parse_cell

NAME = "nb201"
CHANNELS = (8, 12)
CELLS_PER_STAGE = (1, 2)

Genotype = dict[str, Any]


def sample(rng: random.Random) -> Genotype:
    """A random genotype: six uniform edge ops, mostly the smallest macro settings."""
    ops = [rng.choice(NB201_OPS) for _ in range(6)]
    return {"space": NAME, "cell": cell_string(ops),
            "channels": rng.choices(CHANNELS, (3, 1))[0],
            "cells_per_stage": rng.choices(CELLS_PER_STAGE, (3, 1))[0]}


def validate(genotype: Genotype) -> None:
    """Raise ``ValueError`` naming the field when ``genotype`` is not in the space."""
    if not isinstance(genotype, dict) or genotype.get("space") != NAME:
        raise ValueError(f"not an nb201 genotype: {genotype!r}")
    parse_cell(genotype.get("cell"))  # ArchError (a ValueError) names the problem
    if genotype.get("channels") not in CHANNELS:
        raise ValueError(f"nb201 genotype: 'channels' must be one of {CHANNELS}")
    if genotype.get("cells_per_stage") not in CELLS_PER_STAGE:
        raise ValueError(f"nb201 genotype: 'cells_per_stage' must be one of {CELLS_PER_STAGE}")


def compatible(input_shape: tuple[int, int, int]) -> bool:
    """Whether the macro skeleton can be built for inputs of ``input_shape`` (C, H, W)."""
    _, h, w = input_shape
    return h == w and h % 4 == 0


def build(genotype: Genotype, input_shape: tuple[int, int, int],
          num_classes: int) -> Architecture:
    """The full network of ``genotype`` for ``input_shape`` (square, side divisible by 4)."""
    validate(genotype)
    if not compatible(input_shape):
        raise ValueError(f"nb201 space needs square inputs whose side is a multiple of 4, "
                         f"got {list(input_shape)}")
    c, h, _ = input_shape
    return from_nb201(genotype["cell"], num_classes, h, channels=genotype["channels"],
                      cells_per_stage=genotype["cells_per_stage"], in_channels=c)


def mutate(genotype: Genotype, rng: random.Random) -> Genotype:
    """Change one edge's op (as in regularized evolution on NAS-Bench-201); one time in
    ten change the width or the number of cells per stage instead."""
    validate(genotype)
    g = dict(genotype)
    if rng.random() < 0.1:
        key, choices = rng.choice((("channels", CHANNELS), ("cells_per_stage", CELLS_PER_STAGE)))
        g[key] = next(v for v in choices if v != g[key])
        return g
    ops = cell_ops(g["cell"])
    e = rng.randrange(6)
    ops[e] = rng.choice([op for op in NB201_OPS if op != ops[e]])
    g["cell"] = cell_string(ops)
    return g


def describe(genotype: Genotype) -> str:
    """A short label: the cell string and the macro settings."""
    return f"{genotype['cell']} c={genotype['channels']} n={genotype['cells_per_stage']}"
