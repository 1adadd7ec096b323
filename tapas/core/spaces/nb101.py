"""The NAS-Bench-101 cell space.

A genotype is ``{"space": "nb101", "matrix": [[0, 1, ...], ...], "ops": ["input", ...,
"output"]}``: a 7-vertex upper-triangular adjacency matrix with at most 9 edges and
five interior ops from conv3x3-bn-relu, conv1x1-bn-relu and maxpool3x3, built into the
benchmark's network (:func:`tapas.core.arch.from_nb101`). Sampling and mutation follow the
benchmark's own examples: sample a random matrix and ops until the pruned cell is
valid (input connected to output, at most 9 edges); mutate by flipping each edge with
probability 1/21 and changing each op with probability 1/5, again until valid.

The network's two 2x2 max-pools need inputs whose sides are multiples of 4.

``nb101-small`` is the same cells in a smaller network, for the starter data's small
datasets: the genotype carries the network's size beside the cell, ``{"space":
"nb101-small", "matrix": ..., "ops": ..., "stem_channels": 16, "stacks": 3,
"cells_per_stack": 1}`` (the benchmark's is 128, 3, 3); sampling draws the cell as above
at that size, mutation changes the cell and keeps the size.
"""

from __future__ import annotations

import random
from typing import Any

from tapas.core.arch import ArchError, Architecture, from_nb101, is_nb101
from tapas.core.arch.nb101 import MAX_EDGES, NB101_OPS, parse_cell
from tapas.core.spaces.base import CellSpecSpace, Space

VERTICES = 7
_EDGE_SPOTS = VERTICES * (VERTICES - 1) // 2

Genotype = dict[str, Any]


def _valid(matrix: list[list[int]], ops: list[str]) -> bool:
    try:
        parse_cell({"matrix": matrix, "ops": ops})
    except ArchError:
        return False
    return True


class NB101(CellSpecSpace):
    """The NAS-Bench-101 cell space in the benchmark's network."""

    name = "nb101"
    description = "NAS-Bench-101 cells (7 vertices, at most 9 edges, 3 ops)"
    inputs = "inputs whose sides are multiples of 4"

    def untagged(self, obj: Any) -> Any:
        """The genotype of the benchmark's own notation, ``{"matrix": [[0, 1, ...], ...],
        "ops": ["input", ..., "output"]}``."""
        return {"space": self.tag, **obj} if is_nb101(obj) and "space" not in obj else obj

    def sample(self, rng: random.Random) -> Genotype:
        """A random valid cell (rejection sampling, as the benchmark's example does)."""
        while True:
            matrix = [[int(j > i and rng.random() < 0.5) for j in range(VERTICES)]
                      for i in range(VERTICES)]
            ops = ["input", *(rng.choice(NB101_OPS) for _ in range(VERTICES - 2)), "output"]
            if _valid(matrix, ops):
                return {"space": self.tag, "matrix": matrix, "ops": ops}

    def validate(self, genotype: Genotype) -> None:
        self._check_tag(genotype)
        parse_cell({"matrix": genotype.get("matrix"), "ops": genotype.get("ops")})

    def fits(self, input_shape: tuple[int, ...]) -> bool:
        """Two 2x2 stride-2 max-pools: both sides must be multiples of 4."""
        _, h, w = input_shape
        return h % 4 == 0 and w % 4 == 0

    def spec(self, genotype: Genotype) -> dict[str, Any]:
        return {"matrix": genotype["matrix"], "ops": genotype["ops"]}

    def mutate(self, genotype: Genotype, rng: random.Random) -> Genotype:
        """Flip each edge with probability 1/21 and change each interior op with
        probability 1/5 (at least one change), until the cell is valid and differs."""
        self.validate(genotype)
        while True:
            matrix = [list(row) for row in genotype["matrix"]]
            ops = list(genotype["ops"])
            for i in range(VERTICES):
                for j in range(i + 1, VERTICES):
                    if rng.random() < 1 / _EDGE_SPOTS:
                        matrix[i][j] = 1 - matrix[i][j]
            for v in range(1, VERTICES - 1):
                if rng.random() < 1 / (VERTICES - 2):
                    ops[v] = rng.choice([op for op in NB101_OPS if op != ops[v]])
            changed = matrix != genotype["matrix"] or ops != genotype["ops"]
            if changed and sum(map(sum, matrix)) <= MAX_EDGES and _valid(matrix, ops):
                return {"space": self.tag, "matrix": matrix, "ops": ops}

    def describe(self, genotype: Genotype) -> str:
        """Ops and edges in a compact form: ``conv3x3,maxpool3x3,... | 0>1 0>2 ...``."""
        short = {"conv3x3-bn-relu": "conv3x3", "conv1x1-bn-relu": "conv1x1",
                 "maxpool3x3": "maxpool3x3"}
        m = genotype["matrix"]
        edges = " ".join(f"{i}>{j}" for i in range(len(m)) for j in range(len(m)) if m[i][j])
        return f"{','.join(short[o] for o in genotype['ops'][1:-1])} | {edges}"


#: The size of ``nb101-small`` samples, and each size key's allowed range.
SMALL_SIZE = {"stem_channels": 16, "stacks": 3, "cells_per_stack": 1}
SIZE_RANGE = {"stem_channels": (1, 128), "stacks": (1, 3), "cells_per_stack": (1, 3)}


class NB101Small(NB101):
    """NAS-Bench-101 cells in a smaller network (the size in the genotype)."""

    name = "nb101-small"
    description = ("NAS-Bench-101 cells in a smaller network (stem 16, 3 stacks of 1 cell: "
                   "starter data)")

    def sample(self, rng: random.Random) -> Genotype:
        return {**super().sample(rng), **SMALL_SIZE}

    def untagged(self, obj: Any) -> Any:
        """Only tagged genotypes: an untagged cell is ``nb101``'s."""
        return obj

    def validate(self, genotype: Genotype) -> None:
        super().validate(genotype)
        if set(genotype) != {"space", "matrix", "ops", *SIZE_RANGE}:
            raise ValueError(f"an nb101-small genotype is the cell and {sorted(SIZE_RANGE)}")
        for key, (lo, hi) in SIZE_RANGE.items():
            v = genotype[key]
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"nb101-small genotype: '{key}' must be an integer in "
                                 f"[{lo}, {hi}]")

    def mutate(self, genotype: Genotype, rng: random.Random) -> Genotype:
        return {**super().mutate(genotype, rng), **{k: genotype[k] for k in SIZE_RANGE}}

    def describe(self, genotype: Genotype) -> str:
        size = "/".join(str(genotype[k]) for k in SIZE_RANGE)
        return f"{super().describe(genotype)} | {size}"

    query = Space.query  # the built network: the cell spec has no size

    def _network(self, genotype: Genotype, input_shape: tuple[int, int, int],
                 num_classes: int) -> Architecture:
        return from_nb101(self.spec(genotype), num_classes, input_shape,
                          **{k: genotype[k] for k in SIZE_RANGE})


SPACE = NB101()
SMALL = NB101Small()
