"""One check of an exported network, shared by the IR family tests."""

from __future__ import annotations

import torch

from tapas.core.arch import Architecture, to_module


def assert_module_matches(arch: Architecture) -> torch.Tensor:
    """The ``nn.Module`` built from ``arch`` has its parameter count and, layer by layer,
    the output shapes the IR inferred; returns its output on a batch of two."""
    m = to_module(arch).eval()
    assert sum(p.numel() for p in m.parameters()) == arch.params
    seen: list[tuple[int, ...]] = []
    hooks = [layer.register_forward_hook(lambda mod, i, o: seen.append(tuple(o.shape[1:])))
             for layer in m.layers]
    with torch.no_grad():
        out = m(torch.randn(2, *arch.input_shape))
    for h in hooks:
        h.remove()
    assert seen == [li.out_shape for li in arch.infos]
    return out
