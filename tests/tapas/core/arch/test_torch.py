"""The exporter builds what the IR describes; the fx importer reads real modules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tapas.core.arch import ArchError, Architecture, from_module, from_nb201, to_module
from tests.tapas.core.arch.test_ir import RESNETISH

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


@pytest.mark.parametrize("arch", [
    Architecture.from_dict(RESNETISH),
    from_nb201(CELL, 100, 32),
    from_nb201(CELL, 120, 16, channels=8, cells_per_stage=1),
])
def test_exported_module_matches_ir(arch: Architecture) -> None:
    m = to_module(arch)
    assert sum(p.numel() for p in m.parameters()) == arch.params
    x = torch.randn(2, *arch.input_shape)
    assert m(x).shape == (2, arch.num_classes)
    # every intermediate shape matches shape inference
    seen = []
    hooks = [layer.register_forward_hook(lambda mod, i, o: seen.append(tuple(o.shape[1:])))
             for layer in m.layers]
    m(x)
    for h in hooks:
        h.remove()
    assert seen == [li.out_shape for li in arch.infos]


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(8, 8, 3, padding=1)
        self.b = nn.BatchNorm2d(8)
        self.c = nn.Conv2d(8, 4, (1, 3), padding=(0, 1), bias=False)

    def forward(self, x):
        y = torch.relu(self.b(self.a(x)))
        return torch.cat([x + y, self.c(y)], dim=1)


class SimpleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.block = Block()
        self.pool = nn.MaxPool2d(2)
        self.avg = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(12, 7))

    def forward(self, x):
        return self.head(self.gap(self.avg(self.pool(self.block(self.stem(x))))))


class Net(SimpleNet):
    """The same layers, reshaped through ``view``/``size``, which the IR cannot describe."""

    def forward(self, x):
        x = self.avg(self.pool(self.block(self.stem(x))))
        return self.head(torch.flatten(self.gap(x), 1).view(x.size(0), 12, 1, 1))


def test_fx_import_counts_and_reexport_equivalence() -> None:
    torch.manual_seed(0)
    net = SimpleNet().eval()
    arch = from_module(net, (3, 16, 16))
    assert arch.num_classes == 7
    assert arch.params == sum(p.numel() for p in net.parameters())
    ops = [op for op, _, _ in arch.layers]
    assert ops.count("concat") == 1 and ops.count("add") == 1 and "gap" in ops
    # the exported module with the same weights computes the same function
    rebuilt = to_module(arch).eval()
    src = [p for p in net.parameters()]
    dst = [p for p in rebuilt.parameters()]
    assert [p.shape for p in src] == [p.shape for p in dst]
    with torch.no_grad():
        for s, d in zip(src, dst, strict=True):
            d.copy_(s)
        x = torch.randn(3, 3, 16, 16)
        assert torch.allclose(net(x), rebuilt(x), atol=1e-5)


def test_fx_import_names_what_is_unsupported() -> None:
    with pytest.raises(ArchError, match="Upsample.*supported modules: Conv2d"):
        from_module(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Upsample(scale_factor=2),
                                  nn.Flatten(), nn.Linear(4 * 28 * 28, 2)), (3, 16, 16))
    with pytest.raises(ArchError, match="padding_mode='reflect'"):
        from_module(nn.Sequential(nn.Conv2d(3, 4, 3, padding_mode="reflect"), nn.Flatten(),
                                  nn.Linear(4 * 14 * 14, 2)), (3, 16, 16))
    with pytest.raises(ArchError, match="last operation is not Linear"):
        from_module(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), (3, 16, 16))
    # a shape error in the traced module names the module that fails
    with pytest.raises(ArchError, match="call_module '2'.*fails"):
        from_module(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(5, 2)),
                    (3, 16, 16))
