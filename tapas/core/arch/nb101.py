"""NAS-Bench-101 cells (a 7x7 adjacency matrix and an op list), expanded into the
benchmark's network.

A cell is ``{"matrix": [[0, 1, ...], ...], "ops": ["input", "conv3x3-bn-relu", ...,
"output"]}``: an upper-triangular adjacency matrix of at most 7 vertices and 9 edges,
the first vertex the input and the last the output; interior vertices are
``conv3x3-bn-relu``, ``conv1x1-bn-relu`` or ``maxpool3x3``. As in the benchmark,
vertices off every input-to-output path are pruned first.

The network (Ying et al., ICML 2019): a 3x3 conv-BN-ReLU stem of 128 channels, three
stacks of three cells, a 2x2 stride-2 max-pool before the second and third stacks
(which double the channels), global average pooling and a linear classifier.

Inside a cell of ``C`` output channels, the benchmark's channel rule: the vertices
feeding the output split ``C`` evenly (the first ``C mod k`` get one more), and every
other interior vertex takes the largest width among its successors. A vertex sums
its inputs: tensors of other vertices truncated to its width (their first channels),
and the cell input projected by conv1x1-BN-ReLU. The output concatenates the vertices
that feed it, plus the projected input when the input feeds the output directly.
Convs have no bias, BN is affine, the classifier has a bias.
"""

from __future__ import annotations

from typing import Any

from tapas.core.arch.ir import INPUT, Architecture
from tapas.core.arch.ops import ArchError, json_value

NB101_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
MAX_VERTICES = 7
MAX_EDGES = 9


def is_nb101(obj: Any) -> bool:
    """Whether ``obj`` looks like a NAS-Bench-101 cell dict (``matrix`` and ``ops``)."""
    return isinstance(obj, dict) and "matrix" in obj and "ops" in obj and "layers" not in obj


def prune(matrix: list[list[int]], ops: list[str]) -> tuple[list[list[int]], list[str]]:
    """Drop vertices that are not on a path from the input to the output (as the
    benchmark's ``ModelSpec`` does); raises when the output is unreachable."""
    n = len(matrix)
    fwd = {0}
    for v in range(n):
        if v in fwd:
            fwd.update(w for w in range(v + 1, n) if matrix[v][w])
    bwd = {n - 1}
    for v in range(n - 1, -1, -1):
        if v in bwd:
            bwd.update(u for u in range(v) if matrix[u][v])
    if n - 1 not in fwd:
        raise ArchError("the output vertex cannot be reached from the input", field="matrix")
    keep = sorted(fwd & bwd)
    return ([[matrix[a][b] for b in keep] for a in keep], [ops[a] for a in keep])


def parse_cell(obj: Any) -> tuple[list[list[int]], list[str]]:
    """Validate a cell (dict or JSON text) and return its pruned ``(matrix, ops)``."""
    if isinstance(obj, str):
        obj = json_value(obj, "NAS-Bench-101 cell ", "cell")
    if not is_nb101(obj):
        raise ArchError("a NAS-Bench-101 cell is an object with 'matrix' and 'ops'",
                        field="cell")
    extra = sorted(set(obj) - {"matrix", "ops", "space"})
    if extra:
        raise ArchError(f"unknown NAS-Bench-101 cell field(s) {extra}", field=extra[0])
    matrix, ops = obj["matrix"], obj["ops"]
    if not isinstance(matrix, list) or not 2 <= len(matrix) <= MAX_VERTICES:
        raise ArchError(f"must be a square list of 2 to {MAX_VERTICES} rows", field="matrix")
    n = len(matrix)
    rows = []
    for i, row in enumerate(matrix):
        if not isinstance(row, list) or len(row) != n or any(
                v not in (0, 1) or isinstance(v, float) for v in row):
            raise ArchError(f"row {i} must hold {n} zeros or ones", field="matrix")
        if any(row[: i + 1]):
            raise ArchError(f"row {i} has an edge to an earlier vertex or itself; the matrix "
                            "must be strictly upper triangular", field="matrix")
        rows.append([int(v) for v in row])
    edges = sum(map(sum, rows))
    if edges > MAX_EDGES:
        raise ArchError(f"{edges} edges; the space allows at most {MAX_EDGES}", field="matrix")
    if not isinstance(ops, list) or len(ops) != n:
        raise ArchError(f"must list one op per vertex ({n})", field="ops")
    if ops[0] != "input" or ops[-1] != "output":
        raise ArchError("the first op must be 'input' and the last 'output'", field="ops")
    for op in ops[1:-1]:
        if op not in NB101_OPS:
            raise ArchError(f"unknown NAS-Bench-101 op {op!r}; known: {', '.join(NB101_OPS)}",
                            field="ops")
    return prune(rows, list(ops))


def vertex_channels(c_in: int, c_out: int, matrix: list[list[int]]) -> list[int]:
    """Each vertex's width under the benchmark's channel-splitting rule."""
    n = len(matrix)
    ch = [0] * n
    ch[0], ch[-1] = c_in, c_out
    if n == 2:
        return ch
    k = sum(matrix[v][n - 1] for v in range(1, n - 1))
    base, extra = divmod(c_out, k)
    for v in range(1, n - 1):
        if matrix[v][n - 1]:
            ch[v] = base + (1 if extra > 0 else 0)
            extra -= 1
    for v in range(n - 2, 0, -1):
        if not matrix[v][n - 1]:
            ch[v] = max([ch[w] for w in range(v + 1, n - 1) if matrix[v][w]] + [0])
    return ch


def nb101_dict(cell: Any, num_classes: int = 10, input_shape: tuple[int, int, int] = (3, 32, 32),
               stem_channels: int = 128, stacks: int = 3,
               cells_per_stack: int = 3) -> dict[str, Any]:
    """The IR dict of the full network for ``cell`` (see :func:`from_nb101`)."""
    matrix, ops = parse_cell(cell)
    n = len(matrix)
    layers: list[dict[str, Any]] = []

    def add(op: str, inputs: int | list[int], **f: Any) -> int:
        layers.append({"op": op, **f, "inputs": [inputs] if isinstance(inputs, int) else inputs})
        return len(layers) - 1

    def conv_bn_relu(x: int, c: int, k: int) -> int:
        x = add("conv", x, out=c, kernel=k, padding=k // 2)
        return add("relu", add("bn", x))

    x = conv_bn_relu(INPUT, stem_channels, 3)
    c_in = c = stem_channels
    for stack in range(stacks):
        if stack:
            x = add("maxpool", x, kernel=2, stride=2)
            c *= 2
        for _ in range(cells_per_stack):
            ch = vertex_channels(c_in, c, matrix)
            vals = [x]
            for t in range(1, n - 1):
                terms = []
                for src in range(1, t):
                    if matrix[src][t]:
                        v = vals[src]
                        terms.append(v if ch[src] == ch[t] else add("crop", v, channels=ch[t]))
                if matrix[0][t]:
                    terms.append(conv_bn_relu(x, ch[t], 1))
                v = terms[0] if len(terms) == 1 else add("add", terms)
                if ops[t] == "maxpool3x3":
                    v = add("maxpool", v, kernel=3, stride=1, padding=1)
                else:
                    v = conv_bn_relu(v, ch[t], 3 if ops[t] == "conv3x3-bn-relu" else 1)
                vals.append(v)
            outs = [vals[t] for t in range(1, n - 1) if matrix[t][n - 1]]
            if not outs:
                y = conv_bn_relu(x, c, 1)
            else:
                y = outs[0] if len(outs) == 1 else add("concat", outs)
                if matrix[0][n - 1]:
                    y = add("add", [y, conv_bn_relu(x, c, 1)])
            x, c_in = y, c
    add("linear", add("gap", x), out=num_classes)
    return {"input": {"shape": list(input_shape), "num_classes": num_classes}, "layers": layers}


def from_nb101(cell: Any, num_classes: int = 10,
               input_shape: tuple[int, int, int] = (3, 32, 32), stem_channels: int = 128,
               stacks: int = 3, cells_per_stack: int = 3) -> Architecture:
    """Expand a NAS-Bench-101 cell into the benchmark's network.

    Defaults are the benchmark's CIFAR-10 network (stem 128, 3 stacks of 3 cells);
    smaller ``stem_channels``/``cells_per_stack`` give reduced variants for small data.
    """
    return Architecture.from_dict(nb101_dict(cell, num_classes, tuple(input_shape),
                                             stem_channels, stacks, cells_per_stack))
