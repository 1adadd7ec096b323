"""DARTS / NAS-Bench-301 genotypes, expanded into the DARTS evaluation network.

A genotype is written as the DARTS code and NAS-Bench-301 print it::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...],
             normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=range(2, 6))

or as the equivalent JSON object (``{"normal": [["sep_conv_3x3", 0], ...], ...}``).
The text is parsed with :mod:`ast` (literals, lists, tuples and ``range`` only):
nothing in it is ever evaluated.

The network (Liu et al., ICLR 2019, the CIFAR evaluation network): a 3x3 conv-BN
stem of ``3C`` channels, ``layers`` cells with reduction cells at ``layers // 3``
and ``2 * layers // 3`` (which double ``C``), global average pooling and a linear
classifier. A cell takes the outputs of the two previous cells, preprocesses them to
``C`` channels (ReLU-conv1x1-BN, or a factorized reduction when the previous cell
reduced), builds ``len(normal) // 2`` nodes each as the sum of two ops on earlier
states, and concatenates the ``concat`` nodes. In a reduction cell the ops applied
to the two inputs use stride 2. The auxiliary head and drop-path are training-time
devices that change no evaluated output; they are not part of the description (the
paper's parameter counts exclude the auxiliary head too).

Op compositions (all convs without bias, BN affine):

* ``sep_conv_kxk``: (ReLU, depthwise kxk, pointwise 1x1, BN) twice, the first with
  the op's stride;
* ``dil_conv_kxk``: ReLU, depthwise kxk with dilation 2, pointwise 1x1, BN;
* ``skip_connect``: identity, or a factorized reduction at stride 2 (ReLU, two
  stride-2 1x1 convs of ``C/2`` channels, the second on the input shifted by one
  pixel, concatenated, BN);
* ``max_pool_3x3`` / ``avg_pool_3x3`` (padding 1, average excluding padding);
* ``conv_7x1_1x7``: ReLU, 1x7 and 7x1 convs, BN; ``none``: zeros.
"""

from __future__ import annotations

import ast
from typing import Any

from tapas.core.arch.cache import budgeted, network_bytes
from tapas.core.arch.ir import INPUT, Architecture, LayerBuilder
from tapas.core.arch.ops import ArchError, json_value

DARTS_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
             "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
"""The DARTS search space's primitives (NAS-Bench-301 uses the same eight)."""
EXTRA_OPS = ("sep_conv_7x7", "conv_7x1_1x7")
"""Ops found in the published NASNet/AmoebaNet genotypes of the DARTS code."""
ALL_OPS = DARTS_OPS + EXTRA_OPS

#: The DARTS (second order) cell of the paper (Liu et al., ICLR 2019), as the DARTS code
#: prints it; 3.3M parameters at C=36, 20 cells, 10 classes (Table 1).
DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
            "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
            "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
            "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
            "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
            "reduce_concat=[2, 3, 4, 5])")

_KEYS = ("normal", "normal_concat", "reduce", "reduce_concat")
MAX_NODES = 16


def is_darts_string(text: Any) -> bool:
    """Cheap test telling a printed genotype from JSON or a NAS-Bench-201 cell."""
    return isinstance(text, str) and text.lstrip().startswith("Genotype(")


def _literal(node: ast.AST, where: str) -> Any:
    """A literal from the parsed text: numbers, strings, lists, tuples, ``range(a, b)``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | str) and not isinstance(
            node.value, bool):
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(e, where) for e in node.elts]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "range" and not node.keywords and 1 <= len(node.args) <= 2):
        bounds = [_literal(a, where) for a in node.args]
        if not all(isinstance(b, int) for b in bounds) or max(bounds) > 1000:
            raise ArchError(f"range() in '{where}' takes small integers", field=where)
        return list(range(*bounds))
    raise ArchError(f"'{where}' may hold only lists of (op, input) pairs, integers and "
                    f"range(a, b); found {ast.dump(node)[:60]}", field=where)


def parse_genotype(obj: Any) -> dict[str, Any]:
    """A genotype (printed text, JSON text or dict) as a validated dict with the keys
    ``normal``, ``normal_concat``, ``reduce``, ``reduce_concat`` (edges as pairs)."""
    if isinstance(obj, str):
        text = obj.strip()
        if text.startswith("{"):
            obj = json_value(text, "genotype ", "genotype")
        else:
            if len(text) > 20_000:
                raise ArchError("genotype text is too long", field="genotype")
            try:
                tree = ast.parse(text, mode="eval").body
            except SyntaxError as e:
                raise ArchError(f"malformed genotype {text[:60]!r}: {e.msg} at column "
                                f"{e.offset}", field="genotype") from None
            if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)
                    and tree.func.id == "Genotype" and not tree.args):
                raise ArchError("a DARTS genotype must read Genotype(normal=[...], "
                                "normal_concat=[...], reduce=[...], reduce_concat=[...])",
                                field="genotype")
            obj = {}
            for kw in tree.keywords:
                if kw.arg not in _KEYS:
                    raise ArchError(f"unknown genotype field {kw.arg!r}; expected "
                                    f"{', '.join(_KEYS)}", field="genotype")
                obj[kw.arg] = _literal(kw.value, kw.arg)
    if not isinstance(obj, dict):
        raise ArchError(f"a genotype must be text or an object, got {type(obj).__name__}",
                        field="genotype")
    missing = [k for k in _KEYS if k not in obj]
    extra = sorted(set(obj) - set(_KEYS) - {"space"})
    if missing or extra:
        raise ArchError(f"genotype needs exactly the fields {', '.join(_KEYS)}"
                        + (f"; missing {missing}" if missing else "")
                        + (f"; unknown {extra}" if extra else ""), field="genotype")
    out: dict[str, Any] = {}
    for kind in ("normal", "reduce"):
        edges = obj[kind]
        if not isinstance(edges, list | tuple) or not edges or len(edges) % 2 or (
                len(edges) > 2 * MAX_NODES):
            raise ArchError(f"'{kind}' must list two (op, input) edges per node, 1 to "
                            f"{MAX_NODES} nodes", field=kind)
        pairs = []
        for j, e in enumerate(edges):
            node = j // 2 + 2
            if not (isinstance(e, list | tuple) and len(e) == 2 and isinstance(e[0], str)
                    and isinstance(e[1], int) and not isinstance(e[1], bool)):
                raise ArchError(f"edge {j} of '{kind}' must be (op, input), got {e!r}",
                                field=kind)
            op, src = e
            if op not in ALL_OPS:
                raise ArchError(f"unknown DARTS op {op!r} in '{kind}'; known: "
                                f"{', '.join(ALL_OPS)}", field=kind)
            if not 0 <= src < node:
                raise ArchError(f"edge {j} of '{kind}' ({op!r}, {src}) feeds node {node}, "
                                f"so its input must be 0..{node - 1}", field=kind)
            pairs.append((op, src))
        n_nodes = len(pairs) // 2 + 2
        concat = obj[f"{kind}_concat"]
        if not isinstance(concat, list | tuple) or not concat or any(
                not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < n_nodes
                for c in concat) or len(set(concat)) != len(concat):
            raise ArchError(f"'{kind}_concat' must list distinct node indices 0..{n_nodes - 1},"
                            f" got {concat!r}", field=f"{kind}_concat")
        out[kind] = pairs
        out[f"{kind}_concat"] = list(concat)
    return out


def genotype_string(genotype: dict[str, Any]) -> str:
    """The genotype in the DARTS code's notation (the inverse of :func:`parse_genotype`)."""
    def edges(es: list[tuple[str, int]]) -> str:
        return "[" + ", ".join(f"('{op}', {src})" for op, src in es) + "]"

    g = genotype
    return (f"Genotype(normal={edges(g['normal'])}, normal_concat={list(g['normal_concat'])}, "
            f"reduce={edges(g['reduce'])}, reduce_concat={list(g['reduce_concat'])})")


class _Builder(LayerBuilder):
    def relu_conv_bn(self, x: int, c: int, kernel: Any, stride: Any = 1,
                     padding: Any = 0) -> int:
        x = self.add("relu", x)
        x = self.add("conv", x, out=c, kernel=kernel, stride=stride, padding=padding)
        return self.add("bn", x)

    def dw_pw_bn(self, x: int, c_in: int, c_out: int, k: int, stride: int, pad: int,
                 dilation: int = 1) -> int:
        x = self.add("relu", x)
        x = self.add("conv", x, out=c_in, kernel=k, stride=stride, padding=pad, groups=c_in,
                     dilation=dilation)
        x = self.add("conv", x, out=c_out, kernel=1, padding=0)
        return self.add("bn", x)

    def factorized_reduce(self, x: int, c_out: int) -> int:
        r = self.add("relu", x)
        a = self.add("conv", r, out=c_out // 2, kernel=1, stride=2, padding=0)
        s = self.add("crop", r, top=1, left=1)
        b = self.add("conv", s, out=c_out // 2, kernel=1, stride=2, padding=0)
        return self.add("bn", self.add("concat", [a, b]))

    def op(self, name: str, x: int, c: int, stride: int) -> int:
        if name == "none":
            if stride > 1:
                x = self.add("maxpool", x, kernel=1, stride=stride)
            return self.add("zero", x)
        if name == "skip_connect":
            return self.add("identity", x) if stride == 1 else self.factorized_reduce(x, c)
        if name in ("max_pool_3x3", "avg_pool_3x3"):
            if name == "max_pool_3x3":
                return self.add("maxpool", x, kernel=3, stride=stride, padding=1)
            return self.add("avgpool", x, kernel=3, stride=stride, padding=1,
                            count_include_pad=False)
        if name.startswith("sep_conv_"):
            k = int(name[-1])
            x = self.dw_pw_bn(x, c, c, k, stride, k // 2)
            return self.dw_pw_bn(x, c, c, k, 1, k // 2)
        if name.startswith("dil_conv_"):
            k = int(name[-1])
            return self.dw_pw_bn(x, c, c, k, stride, k - 1, dilation=2)
        # conv_7x1_1x7
        x = self.add("relu", x)
        x = self.add("conv", x, out=c, kernel=[1, 7], stride=[1, stride], padding=[0, 3])
        x = self.add("conv", x, out=c, kernel=[7, 1], stride=[stride, 1], padding=[3, 0])
        return self.add("bn", x)

    def cell(self, s0: int, s1: int, c_pp: int, c_p: int, c: int, edges: list[Any],
             concat: list[int], reduction: bool, reduction_prev: bool) -> int:
        del c_pp, c_p  # widths follow from shape inference; kept for readability
        p0 = self.factorized_reduce(s0, c) if reduction_prev else self.relu_conv_bn(s0, c, 1)
        p1 = self.relu_conv_bn(s1, c, 1)
        states = [p0, p1]
        for j in range(len(edges) // 2):
            terms = []
            for op, src in edges[2 * j: 2 * j + 2]:
                stride = 2 if reduction and src < 2 else 1
                terms.append(self.op(op, states[src], c, stride))
            states.append(self.add("add", terms))
        outs = [states[i] for i in concat]
        return outs[0] if len(outs) == 1 else self.add("concat", outs)


def darts_dict(genotype: Any, channels: int = 36, layers: int = 20, num_classes: int = 10,
               input_shape: tuple[int, int, int] = (3, 32, 32)) -> dict[str, Any]:
    """The IR dict of the DARTS evaluation network for ``genotype`` (see the module)."""
    g = parse_genotype(genotype)
    if not 1 <= channels <= 4096 or channels % 2:
        raise ArchError(f"C must be an even number of channels, got {channels}", field="C")
    if not 3 <= layers <= 64:
        raise ArchError(f"layers must be between 3 and 64, got {layers}", field="layers")
    b = _Builder()
    stem = b.add("bn", b.add("conv", INPUT, out=3 * channels, kernel=3, padding=1))
    s0 = s1 = stem
    c_pp, c_p, c = 3 * channels, 3 * channels, channels
    reduction_prev = False
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        if reduction:
            c *= 2
        kind = "reduce" if reduction else "normal"
        out = b.cell(s0, s1, c_pp, c_p, c, g[kind], g[f"{kind}_concat"], reduction,
                     reduction_prev)
        s0, s1 = s1, out
        c_pp, c_p = c_p, len(g[f"{kind}_concat"]) * c
        reduction_prev = reduction
    x = b.add("gap", s1)
    b.add("linear", x, out=num_classes)
    return {"input": {"shape": list(input_shape), "num_classes": num_classes},
            "layers": b.layers}


def from_darts(genotype: Any, channels: int = 36, layers: int = 20, num_classes: int = 10,
               input_shape: tuple[int, int, int] = (3, 32, 32)) -> Architecture:
    """Expand a DARTS / NAS-Bench-301 genotype into its evaluation network.

    Defaults are the paper's CIFAR-10 network (C=36, 20 cells); NAS-Bench-301 trained
    C=32, 8 cells. Text genotypes are cached, since search loops repeat them.
    """
    if isinstance(genotype, str):
        return _from_text(genotype.strip(), channels, layers, num_classes, tuple(input_shape))
    return Architecture.from_dict(darts_dict(genotype, channels, layers, num_classes,
                                             tuple(input_shape)))


_cache = budgeted("darts")
"""Expanded text genotypes, under their share of TAPAS_CACHE_MB (:mod:`tapas.core.arch.cache`):
a C=36, 20-cell network holds ~1,000 layers, so a count bound says little about bytes."""


def _from_text(text: str, channels: int, layers: int, num_classes: int,
               input_shape: tuple[int, int, int]) -> Architecture:
    key = (text, channels, layers, num_classes, input_shape)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    arch = Architecture.from_dict(darts_dict(text, channels, layers, num_classes, input_shape))
    _cache.put(key, arch, network_bytes(len(arch.layers), len(text)))
    return arch
