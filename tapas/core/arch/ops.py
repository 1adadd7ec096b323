"""The registry of layer ops: each op's fields, defaults and shape/param/FLOP rule.

An op's rule takes the layer's (already defaulted) fields and the shapes of its
inputs and returns ``(out_shape, params, flops)``. Shapes exclude the batch
dimension: ``(C, H, W)`` for feature maps, ``(F,)`` for vectors.

FLOPs convention: multiply-accumulates (MACs) of conv and linear layers, bias
additions included; element-wise ops, BN, layer norm, pooling and activations count
zero.

Fields added after the first release (``optional`` in :class:`OpSpec`, e.g. a conv's
``dilation``) are left out of the canonical JSON while they hold their default, so
every network described before they existed keeps its id.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tapas.core.errors import InvalidArchitecture

Shape = tuple[int, ...]

MAX_CHANNELS = 65_536
MAX_SPATIAL = 8_192
MAX_KERNEL = 64
MAX_FEATURES = 2**31 - 1


class ArchError(InvalidArchitecture):
    """An architecture that cannot be built; names the layer index and field."""

    def __init__(self, message: str, layer: int | None = None, field: str | None = None,
                 op: str | None = None) -> None:
        self.layer = layer
        self.field = field
        self.op = op
        self.reason = message
        where = []
        if layer is not None:
            where.append(f"layer {layer}" + (f" ({op})" if op else ""))
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(": ".join([*where, message]) if where else message)

    @property
    def path(self) -> str:
        """A JSON-path-like location, e.g. ``layers[3].kernel``."""
        if self.layer is None:
            return self.field or ""
        return f"layers[{self.layer}]" + (f".{self.field}" if self.field else "")


def json_value(text: str | bytes, what: str = "", field: str | None = None) -> Any:
    """``json.loads(text)``, with malformed text an :class:`ArchError` naming the line and
    column (``what`` names the notation, e.g. ``"genotype "``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ArchError(f"malformed {what}JSON at line {e.lineno}, column {e.colno}: {e.msg}",
                        field=field) from None


class _Fail(Exception):
    """Raised inside a rule; the caller adds the layer index and op."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class OpSpec:
    """An op's name, its fields (``None`` default means required), arity and rule."""

    name: str
    fields: dict[str, Any]
    rule: Callable[[dict[str, Any], list[Shape]], tuple[Shape, int, int]]
    min_inputs: int = 1
    max_inputs: int = 1
    pair_fields: tuple[str, ...] = ()
    doc: str = ""
    int_fields: tuple[str, ...] = field(default=())
    optional: tuple[str, ...] = ()
    """Fields omitted from the canonical JSON while at their default (ids stay stable)."""
    family: str = ""
    """Ops of one family play the same role (e.g. smooth activations); the encoder may
    give them one slot. Empty: the op is its own family."""
    float_fields: tuple[str, ...] = ()


REQUIRED = object()


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _need_map(shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise _Fail(f"needs a (C, H, W) feature map as input, got shape {list(shape)}")
    return shape  # type: ignore[return-value]


def _window(h: int, w: int, k: tuple[int, int], s: tuple[int, int], p: tuple[int, int],
            what: str) -> tuple[int, int]:
    if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
        raise _Fail(f"padding {list(p)} is more than half the kernel {list(k)}", "padding")
    oh = (h + 2 * p[0] - k[0]) // s[0] + 1
    ow = (w + 2 * p[1] - k[1]) // s[1] + 1
    if oh < 1 or ow < 1:
        raise _Fail(f"{what} with kernel {list(k)}, stride {list(s)}, padding {list(p)} "
                    f"on a {h}x{w} input gives spatial size {oh}x{ow}, which is empty", "kernel")
    return oh, ow


def _conv(f: dict[str, Any], shapes: list[Shape]) -> tuple[Shape, int, int]:
    c, h, w = _need_map(shapes[0])
    k, s, d = _pair(f["kernel"]), _pair(f["stride"]), _pair(f["dilation"])
    p = (_pair(f["padding"]) if f["padding"] is not None
         else (d[0] * (k[0] // 2), d[1] * (k[1] // 2)))
    g, out = f["groups"], f["out"]
    if c % g or out % g:
        raise _Fail(f"groups={g} must divide both input channels {c} and out {out}", "groups")
    # A dilated kernel covers d*(k-1)+1 pixels: the window rule applies to that span.
    span = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    oh, ow = _window(h, w, span, s, p, "conv")
    weights = out * (c // g) * k[0] * k[1]
    bias = out if f["bias"] else 0
    macs = (weights + bias) * oh * ow
    return (out, oh, ow), weights + bias, macs


def _bn(f: dict[str, Any], shapes: list[Shape]) -> tuple[Shape, int, int]:
    c = _need_map(shapes[0])[0]
    return shapes[0], (2 * c if f["affine"] else 0), 0


def _same(f: dict[str, Any], shapes: list[Shape]) -> tuple[Shape, int, int]:
    return shapes[0], 0, 0


def _dropout(f: dict[str, Any], shapes: list[Shape]) -> tuple[Shape, int, int]:
    if not 0.0 <= float(f["p"]) < 1.0:
        raise _Fail(f"must be in [0, 1), got {f['p']}", "p")
    return shapes[0], 0, 0


def _pool(f: dict[str, Any], shapes: list[Shape]) -> tuple[Shape, int, int]:
    c, h, w = _need_map(shapes[0])
    k = _pair(f["kernel"])
    s = _pair(f["stride"]) if f["stride"] is not None else k
    oh, ow = _window(h, w, k, s, _pair(f["padding"]), "pooling")
    return (c, oh, ow), 0, 0


def _gap(f: dict[str, Any], shapes: list[Shape]) -> tuple[Shape, int, int]:
    c = _need_map(shapes[0])[0]
    return ((c,) if f["flatten"] else (c, 1, 1)), 0, 0


def _numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _flatten(f: dict[str, Any], shapes: list[Shape]) -> tuple[Shape, int, int]:
    return (_numel(shapes[0]),), 0, 0


def _reshape(f: dict[str, Any], shapes: list[Shape]) -> tuple[Shape, int, int]:
    shape = tuple(f["shape"])
    if _numel(shape) != _numel(shapes[0]):
        raise _Fail(f"cannot reshape {list(shapes[0])} ({_numel(shapes[0])} values) to "
                    f"{list(shape)} ({_numel(shape)} values)", "shape")
    return shape, 0, 0


def _crop(f: dict[str, Any], shapes: list[Shape]) -> tuple[Shape, int, int]:
    c, h, w = _need_map(shapes[0])
    keep = c if f["channels"] is None else f["channels"]
    if keep > c:
        raise _Fail(f"keeps {keep} channels of an input that has {c}", "channels")
    oh, ow = h - f["top"] - f["bottom"], w - f["left"] - f["right"]
    if oh < 1 or ow < 1:
        raise _Fail(f"cropping {[f['top'], f['bottom'], f['left'], f['right']]} (top, bottom, "
                    f"left, right) from a {h}x{w} input leaves nothing", "top")
    return (keep, oh, ow), 0, 0


def _layernorm(f: dict[str, Any], shapes: list[Shape]) -> tuple[Shape, int, int]:
    if len(shapes[0]) not in (1, 3):
        raise _Fail(f"needs a (C, H, W) map or a (C,) vector, got {list(shapes[0])}")
    if not 0.0 < float(f["eps"]) < 1.0:
        raise _Fail(f"must be in (0, 1), got {f['eps']}", "eps")
    return shapes[0], (2 * shapes[0][0] if f["affine"] else 0), 0


def _mul(f: dict[str, Any], shapes: list[Shape]) -> tuple[Shape, int, int]:
    a, b = shapes
    if len(a) != len(b) or any(x != y and 1 not in (x, y) for x, y in zip(a, b, strict=True)):
        raise _Fail(f"cannot multiply tensors of shapes {list(a)} and {list(b)}: each "
                    "dimension must match or be 1 (e.g. a (C, 1, 1) gate)", "inputs")
    return tuple(max(x, y) for x, y in zip(a, b, strict=True)), 0, 0


def _linear(f: dict[str, Any], shapes: list[Shape]) -> tuple[Shape, int, int]:
    if len(shapes[0]) != 1:
        raise _Fail(f"needs a flat (features,) input, got shape {list(shapes[0])}; "
                    "add a 'gap' or 'flatten' layer before it")
    n_in, out = shapes[0][0], f["out"]
    params = n_in * out + (out if f["bias"] else 0)
    return (out,), params, params


def _add(f: dict[str, Any], shapes: list[Shape]) -> tuple[Shape, int, int]:
    for s in shapes[1:]:
        if s != shapes[0]:
            raise _Fail(f"cannot add tensors of different shapes {[list(x) for x in shapes]}",
                        "inputs")
    return shapes[0], 0, 0


def _concat(f: dict[str, Any], shapes: list[Shape]) -> tuple[Shape, int, int]:
    rest = shapes[0][1:]
    for s in shapes[1:]:
        if len(s) != len(shapes[0]) or s[1:] != rest:
            raise _Fail("can only concatenate along channels tensors whose other dimensions "
                        f"match, got {[list(x) for x in shapes]}", "inputs")
    return (sum(s[0] for s in shapes), *rest), 0, 0


OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in [
        OpSpec("conv", {"out": REQUIRED, "kernel": REQUIRED, "stride": 1, "padding": None,
                        "groups": 1, "bias": False, "dilation": 1}, _conv,
               pair_fields=("kernel", "stride", "padding", "dilation"),
               int_fields=("out", "groups"), optional=("dilation",),
               doc="2-D convolution; padding defaults to dilation*(kernel//2) ('same' at "
                   "stride 1); groups=out=in is depthwise"),
        OpSpec("bn", {"affine": True}, _bn, doc="2-D batch normalization"),
        OpSpec("relu", {}, _same, doc="ReLU"),
        OpSpec("relu6", {}, _same, family="act", doc="ReLU clipped at 6 (MobileNetV2)"),
        OpSpec("gelu", {}, _same, family="act", doc="GELU (exact, erf form)"),
        OpSpec("silu", {}, _same, family="act", doc="SiLU / swish: x * sigmoid(x)"),
        OpSpec("hardswish", {}, _same, family="act", doc="hard swish (MobileNetV3)"),
        OpSpec("sigmoid", {}, _same, family="gate", doc="logistic sigmoid"),
        OpSpec("hardsigmoid", {}, _same, family="gate", doc="hard sigmoid (MobileNetV3)"),
        OpSpec("tanh", {}, _same, family="gate", doc="hyperbolic tangent"),
        OpSpec("layernorm", {"affine": True, "eps": 1e-5}, _layernorm, float_fields=("eps",),
               doc="layer norm over the channels at each position (ConvNeXt's LayerNorm)"),
        OpSpec("identity", {}, _same, doc="identity (skip connection)"),
        OpSpec("zero", {}, _same, doc="outputs zeros (NAS-Bench-201 'none')"),
        OpSpec("dropout", {"p": 0.5}, _dropout, doc="dropout with probability p"),
        OpSpec("maxpool", {"kernel": 2, "stride": None, "padding": 0}, _pool,
               pair_fields=("kernel", "stride", "padding"), doc="max pooling; stride=kernel"),
        OpSpec("avgpool", {"kernel": 2, "stride": None, "padding": 0,
                           "count_include_pad": True}, _pool,
               pair_fields=("kernel", "stride", "padding"), doc="average pooling"),
        OpSpec("gap", {"flatten": True}, _gap, doc="global average pooling to (C,)"),
        OpSpec("flatten", {}, _flatten, doc="flatten to (features,)"),
        OpSpec("reshape", {"shape": REQUIRED}, _reshape,
               doc="reshape to 'shape' (1-3 dims, batch excluded; same number of values)"),
        OpSpec("crop", {"channels": None, "top": 0, "bottom": 0, "left": 0, "right": 0}, _crop,
               doc="keep the first 'channels' channels and drop rows/columns at the edges "
                   "(x[:, :channels, top:H-bottom, left:W-right])"),
        OpSpec("linear", {"out": REQUIRED, "bias": True}, _linear, int_fields=("out",),
               doc="fully connected layer"),
        OpSpec("add", {}, _add, min_inputs=2, max_inputs=64, doc="element-wise sum"),
        OpSpec("concat", {}, _concat, min_inputs=2, max_inputs=64,
               doc="channel concatenation"),
        OpSpec("mul", {}, _mul, min_inputs=2, max_inputs=2,
               doc="element-wise product, broadcasting size-1 dims (squeeze-and-excite gates)"),
    ]
}

#: Ops that carry trainable weights.
WEIGHTED_OPS = frozenset({"conv", "linear"})
