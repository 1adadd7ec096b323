"""Import a ``torch.nn.Module`` into the IR by tracing it with ``torch.fx``.

The module is traced, then run once in eval mode on a zero batch of two inputs
so every node's real output shape is known: reshapes in any form
(``x.view(x.size(0), -1)``, ``x.reshape(b, c, 1, 1)``, ``torch.flatten(x, 1)``,
``nn.Flatten``) become the IR's ``flatten``/``reshape`` with the shape they produced,
and every IR layer's inferred shape is checked against the traced one. Functional
code reads as its modules do: ``F.relu``, ``F.max_pool2d``, ``F.avg_pool2d``,
``F.adaptive_avg_pool2d(x, 1)``, ``F.dropout``, ``x.mean((2, 3))``.

Channels-last blocks (ConvNeXt's ``x.permute(0, 2, 3, 1)`` -> ``LayerNorm`` ->
``Linear`` -> ``GELU`` -> ``Linear`` -> ``permute(0, 3, 1, 2)``) are described in
the IR's channels-first form: a ``Linear`` on a channels-last map is a 1x1 conv with
bias (same weights, same output), ``LayerNorm`` over channels is ``layernorm``.

:data:`SUPPORTED_MODULES` and :data:`SUPPORTED_FUNCTIONS` list what is understood;
anything else is rejected by name with those lists, so a network is never silently
described wrong. Parameter counts equal ``sum(p.numel() for p in module.parameters())``
for every module that imports.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from tapas.core.arch.ir import INPUT, Architecture
from tapas.core.arch.ops import ArchError

SUPPORTED_MODULES = ("Conv2d", "BatchNorm2d", "LayerNorm (over channels)", "Linear", "ReLU",
                     "ReLU6", "GELU", "SiLU", "Hardswish", "Sigmoid", "Hardsigmoid", "Tanh",
                     "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d(1)", "Flatten", "Dropout",
                     "Identity")
SUPPORTED_FUNCTIONS = ("+ / add", "* / mul (tensors, broadcasting)", "torch.cat(dim=1)",
                       "flatten / view / reshape", "mean over dims (2, 3)",
                       "adaptive_avg_pool2d(x, 1)", "max_pool2d, avg_pool2d", "dropout",
                       "permute to and from channels-last",
                       "contiguous", "size / shape", "relu, relu6, gelu, silu, hardswish, "
                       "sigmoid, hardsigmoid, tanh (function or method)")

_ACT_MODULES: dict[type[nn.Module], str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.GELU: "gelu", nn.SiLU: "silu",
    nn.Hardswish: "hardswish", nn.Sigmoid: "sigmoid", nn.Hardsigmoid: "hardsigmoid",
    nn.Tanh: "tanh",
}
_ACT_FUNCTIONS: dict[Any, str] = {
    F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", F.gelu: "gelu", F.silu: "silu",
    F.hardswish: "hardswish", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
    F.hardsigmoid: "hardsigmoid", torch.tanh: "tanh", F.tanh: "tanh",
}
_ACT_METHODS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}
# pooling functions -> (IR op, the names of their arguments after the input)
_POOL_FUNCTIONS: dict[Any, tuple[str, tuple[str, ...]]] = {
    F.max_pool2d: ("maxpool", ("kernel_size", "stride", "padding", "dilation", "ceil_mode",
                               "return_indices")),
    torch.max_pool2d: ("maxpool", ("kernel_size", "stride", "padding", "dilation",
                                   "ceil_mode")),
    F.avg_pool2d: ("avgpool", ("kernel_size", "stride", "padding", "ceil_mode",
                               "count_include_pad", "divisor_override")),
}
_NHWC, _NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


def _unsupported(what: str) -> ArchError:
    return ArchError(f"{what} is not supported by the IR; supported modules: "
                     f"{', '.join(SUPPORTED_MODULES)}; supported functions: "
                     f"{', '.join(SUPPORTED_FUNCTIONS)}")


def _int_or_pair(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return int(v[0]) if v[0] == v[1] else [int(v[0]), int(v[1])]
    return int(v)


def _conv_layer(name: str, m: nn.Conv2d) -> dict[str, Any]:
    if m.padding_mode != "zeros":
        raise ArchError(f"module '{name}' (Conv2d) uses padding_mode={m.padding_mode!r}; "
                        "only zero padding is supported", field=name)
    k = m.kernel_size
    d = m.dilation
    if isinstance(m.padding, str):
        span = (d[0] * (k[0] - 1), d[1] * (k[1] - 1))
        if m.padding == "same" and (span[0] % 2 or span[1] % 2):
            raise ArchError(f"module '{name}' (Conv2d) uses padding='same' with an even "
                            "kernel span, which pads unevenly", field=name)
        pad: Any = (span[0] // 2, span[1] // 2) if m.padding == "same" else (0, 0)
    else:
        pad = m.padding
    return {"op": "conv", "out": m.out_channels, "kernel": _int_or_pair(k),
            "stride": _int_or_pair(m.stride), "padding": _int_or_pair(pad),
            "dilation": _int_or_pair(d), "groups": m.groups, "bias": m.bias is not None}


def _pool_layer(what: str, op: str, a: dict[str, Any]) -> dict[str, Any]:
    """The IR layer of a max or average pooling, from a module's attributes or a
    function call's arguments (names as in ``F.max_pool2d`` / ``F.avg_pool2d``)."""
    if a.get("ceil_mode") or _int_or_pair(a.get("dilation", 1)) != 1:
        raise ArchError(f"{what} uses ceil_mode or dilation, which the IR does not describe")
    if a.get("divisor_override") is not None:
        raise ArchError(f"{what} uses divisor_override, which the IR does not describe")
    if a.get("return_indices"):
        raise ArchError(f"{what} returns indices; only the pooled tensor is supported")
    kernel = a["kernel_size"]
    stride = a.get("stride")  # None, or () for torch.max_pool2d: the kernel's size
    layer = {"op": op, "kernel": _int_or_pair(kernel),
             "stride": _int_or_pair(stride if stride not in (None, (), []) else kernel),
             "padding": _int_or_pair(a.get("padding", 0))}
    if op == "avgpool":
        layer["count_include_pad"] = bool(a.get("count_include_pad", True))
    return layer


def _module_layer(name: str, m: nn.Module, nhwc: bool, in_shape: tuple[int, ...]
                  ) -> dict[str, Any] | None:
    """The IR layer of one module call (``None``: passes its input through)."""
    kind = type(m).__name__
    if type(m) in _ACT_MODULES:
        if isinstance(m, nn.GELU) and m.approximate != "none":
            raise ArchError(f"module '{name}' (GELU) uses approximate={m.approximate!r}; "
                            "only the exact GELU is supported", field=name)
        return {"op": _ACT_MODULES[type(m)]}
    if isinstance(m, nn.Identity):
        return None
    if isinstance(m, nn.Dropout):
        return {"op": "dropout", "p": float(m.p)}
    if isinstance(m, nn.Linear):
        if nhwc:  # a Linear on channels-last maps is a 1x1 conv on channels-first ones
            return {"op": "conv", "out": m.out_features, "kernel": 1, "padding": 0,
                    "bias": m.bias is not None}
        return {"op": "linear", "out": m.out_features, "bias": m.bias is not None}
    if isinstance(m, nn.LayerNorm):
        c = in_shape[-1]
        if tuple(m.normalized_shape) != (c,) or not (nhwc or len(in_shape) == 2):
            raise ArchError(f"module '{name}' (LayerNorm{tuple(m.normalized_shape)}) on a "
                            f"tensor of shape {list(in_shape)}: only layer norm over the "
                            "channels (of a channels-last map or an (N, C) vector) is "
                            "supported", field=name)
        if m.elementwise_affine and (m.weight is None) != (m.bias is None):
            raise ArchError(f"module '{name}' (LayerNorm) has a weight but no bias",
                            field=name)
        return {"op": "layernorm", "affine": m.elementwise_affine, "eps": float(m.eps)}
    if nhwc:
        raise ArchError(f"module '{name}' ({kind}) is applied to a channels-last tensor; "
                        "channels-last blocks may hold LayerNorm, Linear, activations and "
                        "dropout before permuting back", field=name)
    if isinstance(m, nn.Conv2d):
        return _conv_layer(name, m)
    if isinstance(m, nn.BatchNorm2d):
        return {"op": "bn", "affine": m.affine}
    if isinstance(m, nn.MaxPool2d):
        return _pool_layer(f"module '{name}' ({kind})", "maxpool", {
            "kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding,
            "dilation": m.dilation, "ceil_mode": m.ceil_mode})
    if isinstance(m, nn.AvgPool2d):
        return _pool_layer(f"module '{name}' ({kind})", "avgpool", {
            "kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding,
            "ceil_mode": m.ceil_mode, "count_include_pad": m.count_include_pad,
            "divisor_override": m.divisor_override})
    if isinstance(m, nn.AdaptiveAvgPool2d):
        if _int_or_pair(m.output_size) != 1:
            raise ArchError(f"module '{name}' (AdaptiveAvgPool2d) has output size "
                            f"{m.output_size}; only 1 (global pooling) is supported", field=name)
        return {"op": "gap", "flatten": False}
    if isinstance(m, nn.Flatten):
        return {"op": "flatten"}  # the traced shape decides flatten vs reshape
    raise _unsupported(f"module '{name}' of type {kind}")


def _describe(node: fx.Node) -> str:
    target = getattr(node.target, "__name__", str(node.target))
    return f"{node.op} '{target}' (node '{node.name}')"


def _is(node: fx.Node, functions: tuple[Any, ...], methods: tuple[str, ...]) -> bool:
    return (node.op == "call_function" and node.target in functions) or (
        node.op == "call_method" and node.target in methods)


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    return node.meta.get("tapas_shape")


class _ShapeRun(fx.Interpreter):
    """Runs the traced graph, recording each tensor node's shape and naming the node
    that fails."""

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except Exception as e:  # any failure of the user's forward on this input
            raise ArchError(f"{_describe(n)} fails: {type(e).__name__}: {e}") from None
        if isinstance(result, torch.Tensor):
            n.meta["tapas_shape"] = tuple(int(d) for d in result.shape)
        return result


def _propagate(module: nn.Module, gm: fx.GraphModule, input_shape: tuple[int, int, int]) -> None:
    """Run ``gm`` once on zeros in eval mode (BN statistics untouched), then restore modes."""
    modes = [(m, m.training) for m in module.modules()]
    gm.eval()
    try:
        with torch.no_grad():
            _ShapeRun(gm).run(torch.zeros(2, *input_shape))
    finally:
        for m, training in modes:
            m.training = training


def from_module(module: nn.Module, input_shape: tuple[int, int, int],
                num_classes: int | None = None) -> Architecture:
    """Trace ``module`` and describe it in the IR.

    ``num_classes`` defaults to the output width of the traced network. Parameter
    counts then equal ``sum(p.numel() for p in module.parameters())``.
    """
    try:
        gm = fx.symbolic_trace(module)
    except Exception as e:  # fx raises many types on untraceable control flow
        raise ArchError(f"torch.fx could not trace the module: {e}") from e
    input_shape = tuple(int(d) for d in input_shape)  # type: ignore[assignment]
    _propagate(module, gm, input_shape)
    modules = dict(module.named_modules())
    index: dict[fx.Node, int] = {}
    nhwc: dict[fx.Node, bool] = {}
    traced: dict[int, tuple[int, ...]] = {}  # IR layer -> traced shape (batch dropped)
    layers: list[dict[str, Any]] = []
    output: fx.Node | None = None

    def ref(arg: Any, node: fx.Node) -> int:
        if not isinstance(arg, fx.Node) or arg not in index:
            raise ArchError(f"{_describe(node)} takes an argument {arg!r} that is not a "
                            "tensor of the network (constants and parameters used in "
                            "forward, e.g. a layer scale, are not supported)")
        return index[arg]

    def tensors(node: fx.Node, *args: Any) -> list[int]:
        return [ref(a, node) for a in args]

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if index:
                raise ArchError(f"the module takes more than one input ({node.name})")
            index[node], nhwc[node] = INPUT, False
            continue
        if node.op == "output":
            output = node.args[0] if isinstance(node.args[0], fx.Node) else None
            if output is None:
                raise ArchError("the module must return a single tensor")
            continue
        shape = _shape(node)
        if node.op == "get_attr":
            raise _unsupported(f"parameter '{node.target}' used directly in forward "
                               f"(node '{node.name}'; e.g. a layer scale)")
        if shape is None:  # x.size(0), x.shape, ...: shape arithmetic, not a layer
            if _is(node, (getattr, operator.getitem, operator.mul, operator.floordiv),
                   ("size", "dim")):
                continue
            raise _unsupported(_describe(node))
        if shape[0] != 2:
            raise ArchError(f"{_describe(node)} changes the batch dimension "
                            f"(output shape {list(shape)} for a batch of 2)")
        src = node.args[0] if node.args else None
        layout = nhwc.get(src, False) if isinstance(src, fx.Node) else False
        layer: dict[str, Any] | None
        if node.op == "call_module":
            name = str(node.target)
            in_shape = _shape(src) if isinstance(src, fx.Node) else None
            layer = _module_layer(name, modules[name], layout, in_shape or ())
            inputs = tensors(node, src)
        elif _is(node, (operator.add, torch.add), ("add",)):
            a, b = node.args[:2]
            if not isinstance(b, fx.Node) or node.kwargs:
                raise ArchError(f"{_describe(node)} adds a constant or uses alpha; only "
                                "tensor + tensor is supported")
            layer, inputs = {"op": "add"}, tensors(node, a, b)
            if nhwc.get(a) != nhwc.get(b):
                raise ArchError(f"{_describe(node)} adds a channels-last and a "
                                "channels-first tensor")
        elif _is(node, (operator.mul, torch.mul), ("mul",)):
            a, b = node.args[:2]
            if not (isinstance(a, fx.Node) and isinstance(b, fx.Node)) or node.kwargs:
                raise ArchError(f"{_describe(node)} multiplies by a constant; only tensor * "
                                "tensor (e.g. a squeeze-and-excite gate) is supported")
            if nhwc.get(a) or nhwc.get(b):
                raise ArchError(f"{_describe(node)} multiplies channels-last tensors")
            layer, inputs = {"op": "mul"}, tensors(node, a, b)
        elif _is(node, (torch.cat,), ()):
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            if dim not in (1, -3) or layout:
                raise ArchError(f"{_describe(node)} concatenates along dim {dim}; only "
                                "channels (dim 1 of a channels-first tensor) are supported")
            layer, inputs = {"op": "concat"}, tensors(node, *node.args[0])
        elif _is(node, (torch.flatten, torch.reshape), ("flatten", "view", "reshape")):
            if layout:
                raise ArchError(f"{_describe(node)} reshapes a channels-last tensor")
            layer, inputs = {"op": "flatten"}, tensors(node, src)
        elif _is(node, (torch.mean,), ("mean",)):
            dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
            keep = node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False)
            dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
            if layout or sorted(d % 4 for d in dims) != [2, 3]:
                raise ArchError(f"{_describe(node)} averages over dims {list(dims)}; only "
                                "the spatial dims (2, 3) of a channels-first map are supported")
            layer, inputs = {"op": "gap", "flatten": not keep}, tensors(node, src)
        elif _is(node, (F.adaptive_avg_pool2d,), ()):
            size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
            if _int_or_pair(size) != 1 or layout:
                raise ArchError(f"{_describe(node)} pools to {size}; only 1 is supported")
            layer, inputs = {"op": "gap", "flatten": False}, tensors(node, src)
        elif node.op == "call_function" and node.target in _POOL_FUNCTIONS:
            op, names = _POOL_FUNCTIONS[node.target]
            if layout:
                raise ArchError(f"{_describe(node)} pools a channels-last tensor")
            args = {**dict(zip(names, node.args[1:], strict=False)), **node.kwargs}
            layer, inputs = _pool_layer(_describe(node), op, args), tensors(node, src)
        elif _is(node, (F.dropout,), ()):
            p = node.args[1] if len(node.args) > 1 else node.kwargs.get("p", 0.5)
            layer, inputs = {"op": "dropout", "p": float(p)}, tensors(node, src)
        elif _is(node, tuple(_ACT_FUNCTIONS), tuple(_ACT_METHODS)):
            op = (_ACT_FUNCTIONS[node.target] if node.op == "call_function"
                  else _ACT_METHODS[node.target])
            if op == "gelu" and node.kwargs.get("approximate", "none") != "none":
                raise ArchError(f"{_describe(node)} uses the tanh approximation of GELU")
            layer, inputs = {"op": op}, tensors(node, src)
        elif _is(node, (torch.permute,), ("permute",)):
            dims = node.args[1:] if node.op == "call_method" else node.args[1]
            dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], tuple | list) else (
                tuple(dims))
            if dims == _NHWC and not layout:
                to_nhwc = True
            elif dims == _NCHW and layout:
                to_nhwc = False
            else:
                raise ArchError(f"{_describe(node)} permutes to {list(dims)}; only "
                                "(0, 2, 3, 1) to channels-last and (0, 3, 1, 2) back are "
                                "supported")
            index[node], nhwc[node] = ref(src, node), to_nhwc
            continue
        elif _is(node, (), ("contiguous",)):
            layer, inputs = None, tensors(node, src)
        else:
            raise _unsupported(_describe(node))
        if layer is None:  # pass-through
            index[node], nhwc[node] = inputs[0], layout
            continue
        if layer["op"] == "flatten" and len(shape) != 2:  # a reshape that keeps dims
            layer = {"op": "reshape", "shape": list(shape[1:])}
        index[node], nhwc[node] = len(layers), layout
        traced[len(layers)] = (shape[1:] if not layout
                               else (shape[3], shape[1], shape[2]))
        layers.append({**layer, "inputs": inputs})

    if not layers or output is None or index.get(output) != len(layers) - 1:
        raise ArchError("the module's output must be its last operation")
    if num_classes is None:
        last = layers[-1]
        if last["op"] != "linear":
            raise ArchError("cannot infer num_classes: the last operation is not Linear; "
                            "pass num_classes")
        num_classes = int(last["out"])
    arch = Architecture.from_dict({
        "input": {"shape": list(input_shape), "num_classes": num_classes},
        "layers": layers,
    })
    for i, want in traced.items():
        got = arch.infos[i].out_shape
        if tuple(got) != tuple(want):
            raise ArchError(f"the IR infers output shape {list(got)} but the traced module "
                            f"produces {list(want)}", i, op=arch.infos[i].op)
    return arch
