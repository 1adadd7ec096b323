"""NAS-Bench-201 cell strings, expanded into the full NAS-Bench-201 network.

The macro skeleton follows the benchmark's published network: a 3x3 conv-BN
stem of 16 channels; three stages of ``cells_per_stage`` cells at 16, 32 and 64
channels, separated by residual reduction blocks (ReLU-Conv3x3/2-BN,
ReLU-Conv3x3-BN, plus a 2x2 average-pool then 1x1-conv shortcut); a final
BN-ReLU, global average pooling and a linear classifier.

A cell has four nodes; node ``j`` is the sum over ``i < j`` of ``op(i->j)``
applied to node ``i``. The string lists the edges by target node:
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from tapas.core.arch.cache import budgeted, network_bytes
from tapas.core.arch.ir import INPUT, Architecture, LayerBuilder
from tapas.core.arch.ops import ArchError

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


@dataclass(frozen=True)
class NB201Dataset:
    """One NAS-Bench-201 dataset: its LDE ``name``, the short ``key`` the benchmarks use,
    the networks' classes and input side, and its test-accuracy column in ``nb201.csv``."""

    name: str
    key: str
    num_classes: int
    input_size: int
    column: str


#: The NAS-Bench-201 datasets by LDE name (the one table; :data:`NB201_BY_KEY` by short key).
NB201_DATASETS: dict[str, NB201Dataset] = {d.name: d for d in (
    NB201Dataset("cifar10", "cifar10", 10, 32, "cifar10_test"),
    NB201Dataset("cifar100", "cifar100", 100, 32, "cifar100_test"),
    NB201Dataset("ImageNet16-120", "imagenet16", 120, 16, "imagenet16_test"),
)}
NB201_BY_KEY: dict[str, NB201Dataset] = {d.key: d for d in NB201_DATASETS.values()}
_EDGE = re.compile(r"^([a-z_0-9]+)~(\d+)$")


def parse_cell(cell: str) -> list[list[tuple[str, int]]]:
    """Parse a cell string into, per target node 1..3, its ``(op, source)`` edges."""
    if not isinstance(cell, str):
        raise ArchError(f"a NAS-Bench-201 cell must be a string, got {type(cell).__name__}",
                        field="cell")
    s = cell.strip()
    nodes = s.split("+")
    if len(nodes) != 3:
        raise ArchError(f"malformed NAS-Bench-201 cell {cell!r}: expected 3 nodes joined "
                        f"by '+', found {len(nodes)}", field="cell")
    out: list[list[tuple[str, int]]] = []
    for j, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise ArchError(f"malformed NAS-Bench-201 cell {cell!r}: node {j} must be "
                            "written as |op~i|...|", field="cell")
        edges = [e for e in node[1:-1].split("|")]
        if len(edges) != j:
            raise ArchError(f"malformed NAS-Bench-201 cell {cell!r}: node {j} needs {j} "
                            f"edges, found {len(edges)}", field="cell")
        parsed = []
        for i, e in enumerate(edges):
            m = _EDGE.match(e)
            if not m:
                raise ArchError(f"malformed NAS-Bench-201 cell {cell!r}: edge {e!r} is not "
                                "'op~source'", field="cell")
            op, src = m.group(1), int(m.group(2))
            if op not in NB201_OPS:
                raise ArchError(f"unknown NAS-Bench-201 op {op!r} in {cell!r}; known: "
                                f"{', '.join(NB201_OPS)}", field="cell")
            if src != i:
                raise ArchError(f"malformed NAS-Bench-201 cell {cell!r}: edge {e!r} of node "
                                f"{j} should come from node {i}", field="cell")
            parsed.append((op, src))
        out.append(parsed)
    return out


def cell_string(ops: list[str] | tuple[str, ...]) -> str:
    """The cell string of six edge ops, in the order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2."""
    if len(ops) != 6:
        raise ArchError(f"a NAS-Bench-201 cell has six edges, got {len(ops)} ops", field="cell")
    return f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"


def cell_ops(cell: str) -> list[str]:
    """The six edge ops of ``cell`` in string order (inverse of :func:`cell_string`)."""
    return [op for node in parse_cell(cell) for op, _ in node]


def is_nb201_string(text: str) -> bool:
    """Cheap test used by the CLI and service to tell cell strings from JSON."""
    return isinstance(text, str) and text.lstrip().startswith("|") and "~" in text


class _Builder(LayerBuilder):
    def relu_conv_bn(self, x: int, c_out: int, kernel: int, stride: int = 1) -> int:
        x = self.add("relu", x)
        x = self.add("conv", x, out=c_out, kernel=kernel, stride=stride,
                     padding=kernel // 2)
        return self.add("bn", x)

    def cell(self, x: int, c: int, edges: list[list[tuple[str, int]]]) -> int:
        nodes = [x]
        for node_edges in edges:
            terms = []
            for op, src in node_edges:
                s = nodes[src]
                if op == "none":
                    terms.append(self.add("zero", s))
                elif op == "skip_connect":
                    terms.append(self.add("identity", s))
                elif op == "nor_conv_1x1":
                    terms.append(self.relu_conv_bn(s, c, 1))
                elif op == "nor_conv_3x3":
                    terms.append(self.relu_conv_bn(s, c, 3))
                else:
                    terms.append(self.add("avgpool", s, kernel=3, stride=1, padding=1,
                                          count_include_pad=False))
            nodes.append(terms[0] if len(terms) == 1 else self.add("add", terms))
        return nodes[-1]

    def reduction(self, x: int, c_out: int) -> int:
        a = self.relu_conv_bn(x, c_out, 3, stride=2)
        b = self.relu_conv_bn(a, c_out, 3)
        p = self.add("avgpool", x, kernel=2, stride=2, padding=0)
        s = self.add("conv", p, out=c_out, kernel=1, stride=1, padding=0)
        return self.add("add", [s, b])


def nb201_dict(cell: str, num_classes: int = 10, input_size: int = 32,
               channels: int = 16, cells_per_stage: int = 5,
               in_channels: int = 3) -> dict[str, Any]:
    """The IR dict of the full network for ``cell`` (see :func:`from_nb201`)."""
    edges = parse_cell(cell)
    b = _Builder()
    x = b.add("conv", INPUT, out=channels, kernel=3, stride=1, padding=1)
    x = b.add("bn", x)
    for stage in range(3):
        c = channels * 2**stage
        if stage:
            x = b.reduction(x, c)
        for _ in range(cells_per_stage):
            x = b.cell(x, c, edges)
    x = b.add("bn", x)
    x = b.add("relu", x)
    x = b.add("gap", x)
    b.add("linear", x, out=num_classes)
    return {"input": {"shape": [in_channels, input_size, input_size],
                      "num_classes": num_classes},
            "layers": b.layers}


def from_nb201(cell: str, num_classes: int = 10, input_size: int = 32, channels: int = 16,
               cells_per_stage: int = 5, in_channels: int = 3) -> Architecture:
    """Expand a NAS-Bench-201 cell string into the full network.

    Defaults give the benchmark's CIFAR network (32x32, 16 channels, 5 cells per
    stage); ImageNet16-120 is ``num_classes=120, input_size=16``. Smaller
    ``channels``/``cells_per_stage`` give the reduced variants used on small
    datasets. Cached, since search loops ask for the same cells repeatedly.
    """
    key = (cell, num_classes, input_size, channels, cells_per_stage, in_channels)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    arch = Architecture.from_dict(nb201_dict(cell, num_classes, input_size, channels,
                                             cells_per_stage, in_channels))
    _cache.put(key, arch, network_bytes(len(arch.layers), len(cell)))
    return arch


_cache = budgeted("nb201")
"""Expanded cells (a full network with its encoding is ~120 KB), under their share of
TAPAS_CACHE_MB (:mod:`tapas.core.arch.cache`)."""


def all_cells() -> list[str]:
    """Every one of the 5^6 = 15,625 cell strings, in a fixed order."""
    return [cell_string(o) for o in itertools.product(NB201_OPS, repeat=6)]


#: The fixed cell whose NAS-Bench-201 test accuracy serves as each benchmark dataset's DCN
#: (the benchmark's ResNet-like cell): a probe network, since the raw images are absent.
REFERENCE_CELL = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"
