"""The NAS-Bench-101 cell space.

A genotype is ``{"space": "nb101", "matrix": [[0, 1, ...], ...], "ops": ["input", ...,
"output"]}``: a 7-vertex upper-triangular adjacency matrix with at most 9 edges and
five interior ops from conv3x3-bn-relu, conv1x1-bn-relu and maxpool3x3, built into the
benchmark's network (:func:`tapas.core.arch.from_nb101`). Sampling and mutation follow the
benchmark's own examples: sample a random matrix and ops until the pruned cell is
valid (input connected to output, at most 9 edges); mutate by flipping each edge with
probability 1/21 and changing each op with probability 1/5, again until valid.

The network's two 2x2 max-pools need inputs whose sides are multiples of 4.
"""

from __future__ import annotations

import random
from typing import Any

from tapas.core.arch import ArchError, is_nb101
from tapas.core.arch.nb101 import MAX_EDGES, NB101_OPS, parse_cell
from tapas.core.spaces.base import CellSpecSpace

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


SPACE = NB101()
