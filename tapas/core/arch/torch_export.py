"""Build a real ``nn.Module`` from the IR, so trained networks are exactly the described ones."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tapas.core.arch.ir import INPUT, Architecture


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class _Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class _Concat(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class _Mul(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class _Reshape(nn.Module):
    def __init__(self, shape: list[int]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class _Crop(nn.Module):
    def __init__(self, f: dict[str, Any]) -> None:
        super().__init__()
        self.c, self.t, self.b, self.l, self.r = (f["channels"], f["top"], f["bottom"],
                                                  f["left"], f["right"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        return x[:, :self.c, self.t:h - self.b, self.l:w - self.r]


class _ChannelLayerNorm(nn.LayerNorm):
    """Layer norm over the channels of each position of an (N, C, H, W) map (or of an
    (N, C) vector): ConvNeXt's LayerNorm, whichever data format it was written in."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return super().forward(x)
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "gelu": nn.GELU, "silu": nn.SiLU,
    "hardswish": nn.Hardswish, "sigmoid": nn.Sigmoid, "hardsigmoid": nn.Hardsigmoid,
    "tanh": nn.Tanh,
}


def _pad(v: Any, kernel: Any) -> Any:
    if v is None:
        k = kernel if isinstance(kernel, list) else [kernel, kernel]
        return (k[0] // 2, k[1] // 2)
    return tuple(v) if isinstance(v, list) else v


def _tuple(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def layer_module(op: str, f: dict[str, Any], in_shapes: tuple[tuple[int, ...], ...]) -> nn.Module:
    """The ``nn.Module`` for one IR layer, given its input shapes."""
    if op == "conv":
        return nn.Conv2d(in_shapes[0][0], f["out"], _tuple(f["kernel"]), _tuple(f["stride"]),
                         _pad(f["padding"], f["kernel"]), dilation=_tuple(f["dilation"]),
                         groups=f["groups"], bias=f["bias"])
    if op == "bn":
        return nn.BatchNorm2d(in_shapes[0][0], affine=f["affine"])
    if op in _ACTIVATIONS:
        return _ACTIVATIONS[op]()
    if op == "layernorm":
        return _ChannelLayerNorm(in_shapes[0][0], eps=f["eps"], elementwise_affine=f["affine"])
    if op == "mul":
        return _Mul()
    if op == "reshape":
        return _Reshape(f["shape"])
    if op == "crop":
        return _Crop(f)
    if op == "identity":
        return nn.Identity()
    if op == "zero":
        return _Zero()
    if op == "dropout":
        return nn.Dropout(f["p"])
    if op == "maxpool":
        return nn.MaxPool2d(_tuple(f["kernel"]), _tuple(f["stride"]), _tuple(f["padding"]))
    if op == "avgpool":
        return nn.AvgPool2d(_tuple(f["kernel"]), _tuple(f["stride"]), _tuple(f["padding"]),
                            count_include_pad=f["count_include_pad"])
    if op == "gap":
        pool = nn.AdaptiveAvgPool2d(1)
        return nn.Sequential(pool, nn.Flatten()) if f["flatten"] else pool
    if op == "flatten":
        return nn.Flatten()
    if op == "linear":
        return nn.Linear(in_shapes[0][0], f["out"], bias=f["bias"])
    if op == "add":
        return _Add()
    if op == "concat":
        return _Concat()
    raise ValueError(f"no torch module for op {op!r}")  # unreachable: the IR validated ops


class IRModule(nn.Module):
    """Runs the IR's layers in order, feeding each its listed inputs.

    Intermediate outputs are dropped as soon as no later layer needs them, so
    memory follows the live set rather than the whole graph.
    """

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch_id = arch.id
        self.inputs = [li.inputs for li in arch.infos]
        self.layers = nn.ModuleList(layer_module(li.op, li.fields, li.in_shapes)
                                    for li in arch.infos)
        last_use: dict[int, int] = {}
        for i, ins in enumerate(self.inputs):
            for x in ins:
                last_use[x] = i
        self._free_after = [[x for x, j in last_use.items() if j == i] for i in
                            range(len(self.inputs))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[int, torch.Tensor] = {INPUT: x}
        out = x
        for i, (layer, ins) in enumerate(zip(self.layers, self.inputs, strict=True)):
            out = layer(*(values[j] for j in ins))
            values[i] = out
            for j in self._free_after[i]:
                del values[j]
        return out
