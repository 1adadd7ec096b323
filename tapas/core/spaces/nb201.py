"""NAS-Bench-201 cells: the full benchmark space and the starter data's reduced one.

``nb201`` is the benchmark's cell space: a genotype is the cell string
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (five ops on each of six edges, 15,625 cells),
built into the benchmark's network (16 channels, five cells per stage) for the
target; the scorer is asked the cell string and expands it the same way
(:func:`tapas.core.arch.expand`).

``nb201-small`` places the same cells in the benchmark's macro skeleton at reduced
size, for small inputs. A genotype is ``{"space": "nb201", "cell": "...", "channels":
8, "cells_per_stage": 1}``: ``channels`` (first-stage width; the three stages use
``c, 2c, 4c``) and ``cells_per_stage`` are reduced from 16 and 5 so that training on
8x8 inputs takes well under a second per epoch on one CPU core. Its genotypes keep the
tag ``"nb201"`` they were stored with in the starter data (the tag is part of every
stored experiment's job key); ``"nb201-small"`` is read as the same space.

The skeleton's two reduction blocks halve the input twice and add a strided conv to
an average-pooled shortcut; the two only agree in size when the side is divisible by
4, so both spaces apply to square inputs whose side is a multiple of 4 (8x8 digits,
28x28 MNIST, 4x4 down-sampled MNIST, 32x32 CIFAR, 16x16 ImageNet16). The layer list
does not depend on the input, so a genotype is one ``template_id`` on all of them.
"""

from __future__ import annotations

import random
from typing import Any

from tapas.core.arch import (
    NB201_OPS,
    Architecture,
    all_cells,
    cell_ops,
    cell_string,
    expand,
    from_nb201,
    is_nb201_string,
)
from tapas.core.spaces.base import DictSpace, Space

CHANNELS = (8, 12)
CELLS_PER_STAGE = (1, 2)
EDGES = 6

Genotype = dict[str, Any]
SIDE_RULE = "square inputs whose side is a multiple of 4"


def _fits(input_shape: tuple[int, ...]) -> bool:
    """The skeleton's reductions add a strided conv to an average-pooled shortcut, which
    agree in size only on square inputs whose side is divisible by 4."""
    _, h, w = input_shape
    return h == w and h % 4 == 0


def _cell(obj: Any) -> str:
    """The canonical cell string of ``obj``; ``ArchError`` (a ValueError) names the problem."""
    return cell_string(cell_ops(obj))


class NB201Cells(Space):
    """The NAS-Bench-201 cell space: five ops on each of six edges, 15,625 cells."""

    name = "nb201"
    description = "NAS-Bench-201 cells in the benchmark's network (16 channels, 5 cells/stage)"
    inputs = SIDE_RULE
    size = len(NB201_OPS) ** EDGES

    def parse(self, obj: Any) -> str:
        return _cell(obj)

    def claims(self, obj: Any) -> bool:
        return isinstance(obj, str) and is_nb201_string(obj)

    def format(self, genotype: str) -> str:
        return genotype

    def validate(self, genotype: Any) -> None:
        _cell(genotype)

    def sample(self, rng: random.Random) -> str:
        return cell_string([rng.choice(NB201_OPS) for _ in range(EDGES)])

    def mutate(self, genotype: str, rng: random.Random) -> str:
        """Change the op of one uniformly chosen edge to a different op (as regularized
        evolution on NAS-Bench-201 does)."""
        ops = cell_ops(genotype)
        e = rng.randrange(EDGES)
        ops[e] = rng.choice([op for op in NB201_OPS if op != ops[e]])
        return cell_string(ops)

    def key(self, genotype: str) -> str:
        return genotype

    def query(self, genotype: str, target: Any) -> str:
        return genotype

    def describe(self, genotype: str) -> str:
        return genotype

    def fits(self, input_shape: tuple[int, ...]) -> bool:
        return _fits(input_shape)

    def _network(self, genotype: str, input_shape: tuple[int, int, int],
                 num_classes: int) -> Architecture:
        return expand(genotype, num_classes, input_shape)  # what the scorer does with it

    def enumerate(self) -> list[str]:
        """Every cell (the space is small enough to list)."""
        return all_cells()


class NB201Small(DictSpace):
    """NAS-Bench-201 cells in the benchmark's macro skeleton at reduced size."""

    name = "nb201-small"
    description = "NAS-Bench-201 cells at 8/12 channels and 1-2 cells per stage (starter data)"
    inputs = SIDE_RULE

    @property
    def tag(self) -> str:
        return "nb201"  # the tag of every stored starter genotype

    @property
    def tags(self) -> tuple[str, ...]:
        return ("nb201", "nb201-small")

    def sample(self, rng: random.Random) -> Genotype:
        """Six uniform edge ops, mostly the smallest macro settings."""
        return {"space": self.tag, "cell": CELLS.sample(rng),
                "channels": rng.choices(CHANNELS, (3, 1))[0],
                "cells_per_stage": rng.choices(CELLS_PER_STAGE, (3, 1))[0]}

    def validate(self, genotype: Any) -> None:
        self._check_tag(genotype)
        _cell(genotype.get("cell"))
        if genotype.get("channels") not in CHANNELS:
            raise ValueError(f"nb201-small genotype: 'channels' must be one of {CHANNELS}")
        if genotype.get("cells_per_stage") not in CELLS_PER_STAGE:
            raise ValueError(f"nb201-small genotype: 'cells_per_stage' must be one of "
                             f"{CELLS_PER_STAGE}")

    def fits(self, input_shape: tuple[int, ...]) -> bool:
        return _fits(input_shape)

    def _network(self, genotype: Genotype, input_shape: tuple[int, int, int],
                 num_classes: int) -> Architecture:
        c, h, _ = input_shape
        return from_nb201(genotype["cell"], num_classes, h, channels=genotype["channels"],
                          cells_per_stage=genotype["cells_per_stage"], in_channels=c)

    def mutate(self, genotype: Genotype, rng: random.Random) -> Genotype:
        """Change one edge's op, as in the full space; one time in ten change the width
        or the number of cells per stage instead."""
        self.validate(genotype)
        g = dict(genotype)
        if rng.random() < 0.1:
            key, choices = rng.choice((("channels", CHANNELS),
                                       ("cells_per_stage", CELLS_PER_STAGE)))
            g[key] = next(v for v in choices if v != g[key])
            return g
        g["cell"] = CELLS.mutate(g["cell"], rng)
        return g

    def describe(self, genotype: Genotype) -> str:
        """The cell string and the macro settings."""
        return f"{genotype['cell']} c={genotype['channels']} n={genotype['cells_per_stage']}"


CELLS = NB201Cells()
SMALL = NB201Small()
