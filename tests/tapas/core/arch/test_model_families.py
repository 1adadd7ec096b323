"""``from_module`` on the model families practitioners score: ResNet-18, MobileNetV2-style
inverted residuals with squeeze-and-excite, ConvNeXt-style blocks; and every new op's
exporter round trip (a forward pass gives the inferred shapes)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tapas.core.arch import ArchError, Architecture, from_module, to_module
from tests.tapas.core.arch.torch_checks import assert_module_matches


# ------------------------------------------------------------------ ResNet-18
class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        blocks, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        out = F.adaptive_avg_pool2d(out, 1)
        out = out.view(out.size(0), -1)
        return self.fc(out)


# ------------------------------------------------- MobileNetV2 + squeeze-excite
class SqueezeExcite(nn.Module):
    def __init__(self, c: int, r: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Linear(c, c // r)
        self.fc2 = nn.Linear(c // r, c)

    def forward(self, x):
        b, c = x.shape[0], x.shape[1]
        s = x.mean((2, 3))
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s.view(b, c, 1, 1)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.expand = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid),
                                    nn.ReLU6(inplace=True))
        self.dw = nn.Sequential(nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False),
                                nn.BatchNorm2d(mid), nn.Hardswish())
        self.se = SqueezeExcite(mid)
        self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.use_res else y


class MobileNetV2SE(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.SiLU())
        self.blocks = nn.Sequential(InvertedResidual(16, 16, 1, 1), InvertedResidual(16, 24, 2, 6),
                                    InvertedResidual(24, 24, 1, 6), InvertedResidual(24, 32, 2, 6),
                                    InvertedResidual(32, 32, 1, 6))
        self.head = nn.Sequential(nn.Conv2d(32, 128, 1, bias=False), nn.BatchNorm2d(128),
                                  nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Dropout(0.2), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


# ------------------------------------------------ functional style (F.* calls)
class FunctionalCNN(nn.Module):
    """A LeNet/VGG-style network written with ``torch.nn.functional`` calls."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.conv3 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.avg_pool2d(F.relu(self.conv2(x)), kernel_size=3, stride=1, padding=1,
                         count_include_pad=False)
        x = torch.max_pool2d(x, 3, 2, 1)
        x = F.max_pool2d(F.relu(self.conv3(x)), kernel_size=2, stride=2)
        x = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)
        x = F.dropout(F.relu(self.fc1(x)), p=0.3, training=self.training)
        return self.fc2(x)


class FunctionalMeanHead(nn.Module):
    """The other functional heads: ``x.mean((2, 3))``, ``x.mean(dim=(2, 3), keepdim=True)``
    with ``x.view(x.size(0), -1)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 5, stride=2, padding=2)
        self.gate = nn.Linear(12, 12)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = F.relu(self.conv(x))
        g = torch.sigmoid(self.gate(x.mean((2, 3))))
        x = x * g.view(g.size(0), -1, 1, 1)
        x = F.avg_pool2d(x, 2)
        x = x.mean(dim=(2, 3), keepdim=True)
        return self.fc(x.view(x.size(0), -1))


# ------------------------------------------------------------ ConvNeXt-style
class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        y = self.dwconv(x)
        y = y.permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        y = y.permute(0, 3, 1, 2)
        return x + y


class ConvNeXtTiny(nn.Module):
    def __init__(self, num_classes: int = 10, dims: tuple[int, ...] = (24, 48)) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, dims[0], 4, stride=4)
        self.stage1 = nn.Sequential(ConvNeXtBlock(dims[0]), ConvNeXtBlock(dims[0]))
        self.down = nn.Conv2d(dims[0], dims[1], 2, stride=2)
        self.stage2 = nn.Sequential(ConvNeXtBlock(dims[1]))
        self.norm = nn.LayerNorm(dims[1])
        self.head = nn.Linear(dims[1], num_classes)

    def forward(self, x):
        x = self.stage2(self.down(self.stage1(self.stem(x))))
        return self.head(self.norm(x.mean([-2, -1])))


@pytest.mark.parametrize("make, shape, ops", [
    (ResNet18, (3, 32, 32), {"conv", "bn", "relu", "add", "gap", "flatten", "linear"}),
    (MobileNetV2SE, (3, 32, 32), {"relu6", "hardswish", "silu", "sigmoid", "mul", "reshape",
                                  "gap"}),
    (ConvNeXtTiny, (3, 32, 32), {"layernorm", "gelu", "conv", "add", "gap"}),
    (FunctionalCNN, (3, 32, 32), {"maxpool", "avgpool", "relu", "gap", "flatten", "dropout"}),
    (FunctionalMeanHead, (3, 16, 16), {"gap", "sigmoid", "reshape", "mul", "avgpool",
                                       "flatten"}),
], ids=["resnet18", "mobilenetv2-se", "convnext", "functional", "functional-mean"])
def test_model_family_imports_exactly(make, shape, ops) -> None:
    torch.manual_seed(0)
    net = make().eval()
    arch = from_module(net, shape)
    assert arch.params == sum(p.numel() for p in net.parameters())
    assert ops <= {op for op, _, _ in arch.layers}
    # the exported module with the same weights computes the same function
    rebuilt = to_module(arch).eval()
    src, dst = list(net.parameters()), list(rebuilt.parameters())
    assert [p.numel() for p in src] == [p.numel() for p in dst]
    with torch.no_grad():  # a channels-last Linear's weight is the 1x1 conv's, reshaped
        for s, d in zip(src, dst, strict=True):
            d.copy_(s.reshape(d.shape))
        x = torch.randn(2, *shape)
        assert torch.allclose(net(x), rebuilt(x), atol=1e-4)


def test_functional_pooling_reads_its_arguments() -> None:
    arch = from_module(FunctionalCNN().eval(), (3, 32, 32))
    pools = [(op, f) for op, f, _ in arch.layers if op in ("maxpool", "avgpool")]
    assert [(op, f["kernel"], f["stride"], f["padding"]) for op, f in pools] == [
        ("maxpool", 2, 2, 0), ("avgpool", 3, 1, 1), ("maxpool", 3, 2, 1), ("maxpool", 2, 2, 0)]
    assert pools[1][1]["count_include_pad"] is False
    assert arch.output_shape == (10,)
    assert [li.out_shape for li in arch.infos if li.op == "gap"] == [(16, 1, 1)]


class _Pooled(nn.Module):
    def __init__(self, pool) -> None:
        super().__init__()
        self.pool, self.fc = pool, nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.pool(x), 1), 1))


@pytest.mark.parametrize("pool, match", [
    (lambda x: F.max_pool2d(x, 2, ceil_mode=True), "max_pool2d.*ceil_mode"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=3), "avg_pool2d.*divisor_override"),
    (lambda x: F.max_pool2d(x, 3, 1, 1, 2), "ceil_mode or dilation"),
], ids=["ceil-mode", "divisor", "dilation"])
def test_functional_pooling_the_ir_cannot_describe_is_named(pool, match: str) -> None:
    with pytest.raises(ArchError, match=match):
        from_module(_Pooled(pool), (3, 9, 9))


def test_resnet18_is_the_published_size() -> None:
    # ResNet-18 for CIFAR-10 (3x3 stem, no max-pool): 11,173,962 parameters
    assert from_module(ResNet18(), (3, 32, 32)).params == 11_173_962


def test_import_leaves_the_module_as_it_was() -> None:
    net = MobileNetV2SE().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    from_module(net, (3, 32, 32))
    assert net.training and all(m.training for m in net.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


class LayerScaleBlock(ConvNeXtBlock):
    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x):
        y = self.pwconv2(self.act(self.pwconv1(self.norm(self.dwconv(x).permute(0, 2, 3, 1)))))
        return x + (self.gamma * y).permute(0, 3, 1, 2)


class Head(nn.Module):
    def __init__(self, body: nn.Module, c: int) -> None:
        super().__init__()
        self.body, self.fc = body, nn.Linear(c, 3)

    def forward(self, x):
        return self.fc(self.body(x).mean((2, 3)))


@pytest.mark.parametrize("net, match", [
    (Head(LayerScaleBlock(8), 8), "parameter 'body.gamma' used directly in forward"),
    (Head(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.GroupNorm(2, 8)), 8),
     "GroupNorm is not supported.*supported modules: Conv2d"),
    (Head(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ELU()), 8), "ELU"),
    (Head(nn.Sequential(nn.Conv2d(8, 8, 1), nn.GELU(approximate="tanh")), 8), "approximate"),
], ids=["layer-scale", "groupnorm", "elu", "gelu-tanh"])
def test_unsupported_parts_are_rejected_by_name(net: nn.Module, match: str) -> None:
    with pytest.raises(ArchError, match=match):
        from_module(net, (8, 8, 8))


def test_layernorm_over_spatial_dims_is_rejected() -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.LayerNorm([4, 4])
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.norm(x).mean((2, 3)))

    with pytest.raises(ArchError, match=r"LayerNorm\(4, 4\).*only layer norm over the channels"):
        from_module(Bad(), (8, 4, 4))


# ------------------------------------------------------- new ops: round trip
def _net(layers: list[dict], shape=(4, 8, 8), classes=3) -> Architecture:
    return Architecture.from_dict({"input": {"shape": list(shape), "num_classes": classes},
                                   "layers": layers})


HEAD = [{"op": "gap"}, {"op": "linear", "out": 3}]
NEW_OPS = {
    "dilation": [{"op": "conv", "out": 6, "kernel": 3, "dilation": 2}, *HEAD],
    "dilation-strided": [{"op": "conv", "out": 6, "kernel": 5, "dilation": 2, "stride": 2,
                          "padding": 4}, *HEAD],
    "sep_conv": [{"op": "conv", "out": 4, "kernel": 3, "groups": 4},
                 {"op": "conv", "out": 8, "kernel": 1}, {"op": "bn"}, *HEAD],
    **{act: [{"op": "conv", "out": 4, "kernel": 3}, {"op": act}, *HEAD]
       for act in ("gelu", "silu", "hardswish", "sigmoid", "hardsigmoid", "tanh", "relu6")},
    "mul-gate": [{"op": "conv", "out": 4, "kernel": 3}, {"op": "gap", "flatten": False},
                 {"op": "sigmoid"}, {"op": "mul", "inputs": [0, 2]}, *HEAD],
    "mean-keepdim": [{"op": "gap", "flatten": False}, {"op": "flatten"},
                     {"op": "linear", "out": 3}],
    "reshape": [{"op": "reshape", "shape": [4, 64]}, {"op": "reshape", "shape": [16, 4, 4]},
                {"op": "conv", "out": 2, "kernel": 1}, {"op": "reshape", "shape": [32]},
                {"op": "linear", "out": 3}],
    "crop": [{"op": "crop", "channels": 3, "top": 1, "left": 1},
             {"op": "crop", "bottom": 2, "right": 1}, *HEAD],
    "layernorm": [{"op": "layernorm"}, {"op": "gap"}, {"op": "layernorm", "eps": 1e-6},
                  {"op": "linear", "out": 3}],
}


@pytest.mark.parametrize("name", list(NEW_OPS))
def test_new_op_round_trip(name: str) -> None:
    arch = _net(NEW_OPS[name])
    assert_module_matches(arch)
    # canonical JSON round trip keeps the network and its id
    again = Architecture.from_canonical(arch.to_dict())
    assert again == arch and again.id == arch.id


def test_new_op_rules() -> None:
    a = _net(NEW_OPS["dilation"])
    assert a.infos[0].out_shape == (6, 8, 8) and a.infos[0].fields["padding"] == 2
    assert _net(NEW_OPS["crop"]).infos[1].out_shape == (3, 5, 6)
    assert _net(NEW_OPS["layernorm"]).infos[0].params == 8
    with pytest.raises(ArchError, match=r"layers\[0\]|cannot reshape"):
        _net([{"op": "reshape", "shape": [5, 5]}, *HEAD])
    with pytest.raises(ArchError, match="cannot multiply"):
        _net([{"op": "conv", "out": 3, "kernel": 1}, {"op": "mul", "inputs": [-1, 0]}, *HEAD])
    with pytest.raises(ArchError, match="keeps 9 channels"):
        _net([{"op": "crop", "channels": 9}, *HEAD])
    with pytest.raises(ArchError, match="leaves nothing"):
        _net([{"op": "crop", "top": 4, "bottom": 4}, *HEAD])


def test_dilation_at_default_keeps_old_ids() -> None:
    """Networks described before ``dilation`` existed keep their canonical JSON."""
    a = _net([{"op": "conv", "out": 4, "kernel": 3}, *HEAD])
    assert "dilation" not in a.canonical_json
    b = _net([{"op": "conv", "out": 4, "kernel": 3, "dilation": 1}, *HEAD])
    assert a.id == b.id
    c = _net(NEW_OPS["dilation"])
    assert '"dilation":2' in c.canonical_json
