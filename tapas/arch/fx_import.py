"""Import a ``torch.nn.Module`` into the IR by tracing it with ``torch.fx``.

Supported: Conv2d (no dilation, zero padding mode), BatchNorm2d, ReLU,
MaxPool2d/AvgPool2d (no dilation or ceil mode), AdaptiveAvgPool2d(1), Flatten
(from dim 1), Linear, Dropout, Identity, ``+``/``torch.add``, ``torch.cat`` on
channels, ``torch.flatten(x, 1)`` and ``relu`` as a function or method. Anything
else is rejected by name, so a network is never silently described wrong.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from tapas.arch.ir import INPUT, Architecture
from tapas.arch.ops import ArchError


def _int_or_pair(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return int(v[0]) if v[0] == v[1] else [int(v[0]), int(v[1])]
    return int(v)


def _module_layer(name: str, m: nn.Module) -> dict[str, Any]:
    kind = type(m).__name__
    if isinstance(m, nn.Conv2d):
        if _int_or_pair(m.dilation) != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise ArchError(f"module '{name}' (Conv2d) uses dilation, a non-zero padding mode "
                            "or string padding, which the IR does not describe", field=name)
        return {"op": "conv", "out": m.out_channels, "kernel": _int_or_pair(m.kernel_size),
                "stride": _int_or_pair(m.stride), "padding": _int_or_pair(m.padding),
                "groups": m.groups, "bias": m.bias is not None}
    if isinstance(m, nn.BatchNorm2d):
        return {"op": "bn", "affine": m.affine}
    if isinstance(m, nn.ReLU):
        return {"op": "relu"}
    if isinstance(m, nn.Identity):
        return {"op": "identity"}
    if isinstance(m, nn.Dropout):
        return {"op": "dropout", "p": float(m.p)}
    if isinstance(m, nn.MaxPool2d | nn.AvgPool2d):
        if m.ceil_mode or (isinstance(m, nn.MaxPool2d) and _int_or_pair(m.dilation) != 1):
            raise ArchError(f"module '{name}' ({kind}) uses ceil_mode or dilation, which the "
                            "IR does not describe", field=name)
        layer = {"op": "maxpool" if isinstance(m, nn.MaxPool2d) else "avgpool",
                 "kernel": _int_or_pair(m.kernel_size),
                 "stride": _int_or_pair(m.stride if m.stride is not None else m.kernel_size),
                 "padding": _int_or_pair(m.padding)}
        if isinstance(m, nn.AvgPool2d):
            if m.divisor_override is not None:
                raise ArchError(f"module '{name}' (AvgPool2d) uses divisor_override", field=name)
            layer["count_include_pad"] = bool(m.count_include_pad)
        return layer
    if isinstance(m, nn.AdaptiveAvgPool2d):
        if _int_or_pair(m.output_size) != 1:
            raise ArchError(f"module '{name}' (AdaptiveAvgPool2d) has output size "
                            f"{m.output_size}; only 1 (global pooling) is supported", field=name)
        return {"op": "gap", "flatten": False}
    if isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            raise ArchError(f"module '{name}' (Flatten) must flatten from dim 1", field=name)
        return {"op": "flatten"}
    if isinstance(m, nn.Linear):
        return {"op": "linear", "out": m.out_features, "bias": m.bias is not None}
    raise ArchError(f"module '{name}' of type {kind} is not supported; supported: Conv2d, "
                    "BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, "
                    "Linear, Dropout, Identity", field=name)


def _describe(node: fx.Node) -> str:
    target = getattr(node.target, "__name__", str(node.target))
    return f"{node.op} '{target}' (node '{node.name}')"


def from_module(module: nn.Module, input_shape: tuple[int, int, int],
                num_classes: int | None = None) -> Architecture:
    """Trace ``module`` and describe it in the IR.

    ``num_classes`` defaults to the output width of the traced network. Parameter
    counts then equal ``sum(p.numel() for p in module.parameters())``.
    """
    try:
        graph = fx.symbolic_trace(module).graph
    except Exception as e:  # fx raises many types on untraceable control flow
        raise ArchError(f"torch.fx could not trace the module: {e}") from e
    modules = dict(module.named_modules())
    index: dict[fx.Node, int] = {}
    layers: list[dict[str, Any]] = []
    declared: dict[int, tuple[str, int]] = {}  # layer -> (module name, input width it expects)
    output: fx.Node | None = None

    def ref(arg: Any, node: fx.Node) -> int:
        if not isinstance(arg, fx.Node) or arg not in index:
            raise ArchError(f"{_describe(node)} takes an argument {arg!r} that is not a "
                            "tensor of the network")
        return index[arg]

    for node in graph.nodes:
        if node.op == "placeholder":
            if index:
                raise ArchError(f"the module takes more than one input ({node.name})")
            index[node] = INPUT
            continue
        if node.op == "output":
            output = node.args[0] if isinstance(node.args[0], fx.Node) else None
            if output is None:
                raise ArchError("the module must return a single tensor")
            continue
        if node.op == "call_module":
            mod = modules[str(node.target)]
            layer = _module_layer(str(node.target), mod)
            inputs = [ref(node.args[0], node)]
            width = getattr(mod, "in_channels", None) or getattr(mod, "in_features", None) or (
                getattr(mod, "num_features", None))
            if width is not None:
                declared[len(layers)] = (str(node.target), int(width))
        elif node.op == "call_function" and node.target in (operator.add, torch.add):
            a, b = node.args[:2]
            if not isinstance(b, fx.Node) or node.kwargs:
                raise ArchError(f"{_describe(node)} adds a constant or uses alpha; only "
                                "tensor + tensor is supported")
            layer, inputs = {"op": "add"}, [ref(a, node), ref(b, node)]
        elif node.op == "call_function" and node.target is torch.cat:
            tensors = node.args[0]
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            if dim != 1:
                raise ArchError(f"{_describe(node)} concatenates along dim {dim}; only "
                                "channels (dim 1) are supported")
            layer, inputs = {"op": "concat"}, [ref(t, node) for t in tensors]
        elif node.op == "call_function" and node.target is torch.flatten:
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            if start != 1 or len(node.args) > 2 or "end_dim" in node.kwargs:
                raise ArchError(f"{_describe(node)} must flatten from dim 1 to the end")
            layer, inputs = {"op": "flatten"}, [ref(node.args[0], node)]
        elif (node.op == "call_function" and node.target in (F.relu, torch.relu)) or (
                node.op == "call_method" and node.target == "relu"):
            layer, inputs = {"op": "relu"}, [ref(node.args[0], node)]
        else:
            raise ArchError(f"{_describe(node)} is not supported by the IR; supported "
                            "functions: +, torch.add, torch.cat(dim=1), torch.flatten(x, 1), "
                            "relu")
        index[node] = len(layers)
        layers.append({**layer, "inputs": inputs})

    if output is None or index.get(output) != len(layers) - 1:
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
    for i, (name, width) in declared.items():
        got = arch.infos[i].in_shapes[0][0]
        if got != width:
            raise ArchError(f"module '{name}' expects an input of width {width} but receives "
                            f"{got} for input shape {list(input_shape)}", i,
                            op=arch.infos[i].op)
    return arch
