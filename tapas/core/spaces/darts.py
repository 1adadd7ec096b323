"""The DARTS / NAS-Bench-301 cell space.

A genotype is ``{"space": "darts", "normal": [[op, input], ...], "normal_concat": [2, 3,
4, 5], "reduce": [...], "reduce_concat": [2, 3, 4, 5], "C": 16, "layers": 8}``: two
cells of four nodes, each node the sum of two ops on two *different* earlier states
(0 and 1 are the two cell inputs), ops from the seven non-zero DARTS primitives, all
four nodes concatenated: exactly the space NAS-Bench-301 samples from (about 10^18
cell pairs). ``C``/``layers`` size the evaluation network (:func:`tapas.core.arch.from_darts`);
the space's default is the DARTS search network's size (C=16, 8 cells), far cheaper
to encode and score than the paper's C=36, 20 cells.

Mutation follows NASLib's DARTS space: pick a cell and one of its eight edges, then
either change the edge's op or rewire it to another input of the same node (never to
the node's other input). The network needs inputs whose sides are multiples of 4 (two
reductions, each halving by a factorized 1x1 reduction).
"""

from __future__ import annotations

import copy
import random
from typing import Any

from tapas.core.arch import parse_genotype
from tapas.core.arch.darts import genotype_string, is_darts_string
from tapas.core.spaces.base import CellSpecSpace

OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
       "dil_conv_3x3", "dil_conv_5x5")
NODES = 4
CONCAT = [2, 3, 4, 5]
C, LAYERS = 16, 8
EVAL_C, EVAL_LAYERS = 36, 20
"""The size of a genotype written without one: the DARTS evaluation network."""
_SIZE = ("C", "layers")

Genotype = dict[str, Any]


def _cell(rng: random.Random) -> list[list[Any]]:
    edges = []
    for node in range(NODES):
        for src in sorted(rng.sample(range(node + 2), 2)):
            edges.append([rng.choice(OPS), src])
    return edges


class Darts(CellSpecSpace):
    """The DARTS / NAS-Bench-301 cell space at the DARTS search network's size."""

    name = "darts"
    description = "DARTS / NAS-Bench-301 cell pairs (7 ops, C=16, 8 cells)"
    inputs = "inputs whose sides are multiples of 4"

    def untagged(self, obj: Any) -> Any:
        """The genotype of the DARTS notations: as the DARTS code and NAS-Bench-301 print
        it (``Genotype(normal=[...], ...)``), the same as an untagged object, or
        ``{"genotype": "Genotype(...)", "C": .., "layers": ..}``. Without ``C``/``layers``
        the network is the DARTS evaluation network (C=36, 20 cells)."""
        if is_darts_string(obj):
            obj = {"genotype": obj}
        if not isinstance(obj, dict) or "space" in obj or not (
                ("genotype" in obj and set(obj) <= {"genotype", *_SIZE})
                or ("normal" in obj and "reduce" in obj)):
            return obj
        cells = parse_genotype(obj["genotype"] if "genotype" in obj else
                               {k: v for k, v in obj.items() if k not in _SIZE})
        edges = {k: [list(e) for e in cells[k]] for k in ("normal", "reduce")}
        return {"space": self.tag, **cells, **edges, "C": obj.get("C", EVAL_C),
                "layers": obj.get("layers", EVAL_LAYERS)}

    def sample(self, rng: random.Random) -> Genotype:
        """A uniform member of the NAS-Bench-301 space at the default size."""
        return {"space": self.tag, "normal": _cell(rng), "normal_concat": list(CONCAT),
                "reduce": _cell(rng), "reduce_concat": list(CONCAT), "C": C, "layers": LAYERS}

    def validate(self, genotype: Genotype) -> None:
        self._check_tag(genotype)
        g = parse_genotype({k: genotype.get(k) for k in ("normal", "normal_concat", "reduce",
                                                          "reduce_concat")})
        for kind in ("normal", "reduce"):
            edges = g[kind]
            if len(edges) != 2 * NODES or g[f"{kind}_concat"] != CONCAT:
                raise ValueError(f"darts genotype: '{kind}' must have {NODES} nodes of two "
                                 f"edges and concatenate {CONCAT}")
            for j in range(NODES):
                (op1, a), (op2, b) = edges[2 * j], edges[2 * j + 1]
                if a == b:
                    raise ValueError(f"darts genotype: node {j + 2} of '{kind}' takes input {a} "
                                     "twice; its two edges need different inputs")
                if "none" in (op1, op2) or {op1, op2} - set(OPS):
                    raise ValueError(f"darts genotype: '{kind}' uses an op outside {OPS}")
        for key, lo, hi in (("C", 2, 256), ("layers", 3, 32)):
            v = genotype.get(key)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi or (
                    key == "C" and v % 2):
                raise ValueError(f"darts genotype: '{key}' must be an integer in [{lo}, {hi}]"
                                 + (" and even" if key == "C" else ""))

    def fits(self, input_shape: tuple[int, ...]) -> bool:
        """Two reductions by factorized 1x1 convs: both sides must be multiples of 4."""
        _, h, w = input_shape
        return h % 4 == 0 and w % 4 == 0

    def spec(self, genotype: Genotype) -> dict[str, Any]:
        return {"genotype": genotype_string(parse_genotype(
            {k: genotype[k] for k in ("normal", "normal_concat", "reduce", "reduce_concat")})),
            "C": genotype["C"], "layers": genotype["layers"]}

    def mutate(self, genotype: Genotype, rng: random.Random) -> Genotype:
        """Change one edge of one cell: its op, or (half the time) which input it reads."""
        self.validate(genotype)
        g = copy.deepcopy(genotype)
        kind = rng.choice(("normal", "reduce"))
        e = rng.randrange(2 * NODES)
        edge, other = g[kind][e], g[kind][e ^ 1]
        node = e // 2 + 2
        inputs = [s for s in range(node) if s not in (edge[1], other[1])]
        if inputs and rng.random() < 0.5:
            edge[1] = rng.choice(inputs)
            pair = sorted([g[kind][e & ~1], g[kind][e | 1]], key=lambda x: x[1])
            g[kind][e & ~1], g[kind][e | 1] = pair
        else:
            edge[0] = rng.choice([op for op in OPS if op != edge[0]])
        return g

    def describe(self, genotype: Genotype) -> str:
        """The genotype as the DARTS code prints it, with the network size."""
        return f"{self.spec(genotype)['genotype']} C={genotype['C']} layers={genotype['layers']}"


SPACE = Darts()
