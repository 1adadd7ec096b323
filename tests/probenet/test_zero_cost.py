"""Zero-cost proxies against their definitions, and as starter-suite baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from probenet import load_dataset
from probenet.zero_cost import (
    PROXIES,
    gradient_scores,
    minibatch,
    naswot,
    score_archs,
    synflow,
)


def _seeded(module: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return module


def test_naswot_is_the_log_determinant_of_the_activation_code_kernel() -> None:
    net = _seeded(nn.Sequential(nn.Flatten(), nn.Linear(4, 24), nn.ReLU(), nn.Linear(24, 3)))
    x = torch.randn(6, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    w, b = net[1].weight.detach().numpy(), net[1].bias.detach().numpy()
    c = (x.reshape(6, 4).numpy() @ w.T + b > 0).astype(float)
    k = c @ c.T + (1 - c) @ (1 - c).T
    sign, want = np.linalg.slogdet(k)
    assert sign > 0
    assert naswot(net, x) == pytest.approx(want, rel=1e-9)
    # two images coded alike make the kernel singular; no ReLU at all leaves no codes
    assert naswot(net, torch.cat([x[:1], x[:1]])) == -math.inf
    assert naswot(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), x) == -math.inf


def test_synflow_of_a_linear_chain_is_twice_its_path_norm() -> None:
    """With every weight made positive, R = 1'|W2||W1|1 is homogeneous of degree one in
    each layer, so sum(theta * dR/dtheta) = 2R (Euler)."""
    net = _seeded(nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False),
                                nn.Linear(3, 2, bias=False)))
    before = [p.detach().clone() for p in net.parameters()]
    w1, w2 = (np.abs(p.numpy()).astype(np.float64) for p in before)
    r = float(np.ones(2) @ w2 @ w1 @ np.ones(4))
    assert synflow(net, (1, 2, 2)) == pytest.approx(math.log(2 * r), rel=1e-12)
    # the caller's network is not touched (signs, dtype, no gradients left behind)
    for p, q in zip(net.parameters(), before, strict=True):
        assert p.dtype == torch.float32 and torch.equal(p.detach(), q) and p.grad is None


def test_score_module_reads_synflow_before_the_data_moves_batchnorm() -> None:
    from probenet.zero_cost import score_module

    def net() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                             nn.Linear(16, 3))

    x = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(3)) * 5 + 2
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    data_free = synflow(net(), (1, 4, 4))
    assert score_module(net(), x, y)["synflow"] == pytest.approx(data_free, rel=1e-12)
    moved = net()
    naswot(moved, x)  # one train-mode pass updates the running statistics
    assert synflow(moved, (1, 4, 4)) != pytest.approx(data_free, rel=1e-6)


def test_snip_and_grad_norm_of_a_softmax_classifier_in_closed_form() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].bias.copy_(torch.tensor([1.0, 0.0, -0.5]))
    x = torch.randn(5, 1, 2, 2, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 2, 1, 0])
    b = np.array([1.0, 0.0, -0.5])
    p = np.exp(b) / np.exp(b).sum()
    d = p[None, :] - np.eye(3)[y.numpy()]             # dL/dlogits per image, times N
    gw = d.T @ x.reshape(5, 4).numpy().astype(np.float64) / 5
    gb = d.mean(0)
    got = gradient_scores(net, x, y)
    assert got["grad_norm"] == pytest.approx(np.linalg.norm(gw) + np.linalg.norm(gb), rel=1e-5)
    assert got["snip"] == pytest.approx(float(np.abs(b * gb).sum()), rel=1e-5)  # W = 0
    assert all(q.grad is None for q in net.parameters())


def test_score_archs_on_a_built_in_dataset() -> None:
    from tapas.core import spaces

    ds = load_dataset("digits?per_class=20")
    x, y = minibatch(ds, 40, seed=0)
    assert x.shape == (40, 1, 8, 8) and abs(float(x.mean())) < 0.3
    assert np.bincount(y.numpy(), minlength=10).tolist() == [4] * 10  # class proportions
    archs = [spaces.build(g, ds.input_shape, ds.num_classes)
             for g in spaces.sample_unique("chain", 4, seed=3)]
    a = score_archs(archs, ds)
    assert set(a) == set(PROXIES) and all(len(v) == 4 for v in a.values())
    assert all(np.isfinite(a[p]).all() for p in ("synflow", "snip", "grad_norm"))
    b = score_archs(archs, ds)
    assert all(np.array_equal(a[p], b[p]) for p in PROXIES)  # seeded: same scores
    other = spaces.build(spaces.sample_unique("chain", 1, seed=3)[0], ds.input_shape, 3)
    with pytest.raises(ValueError, match="3 classes"):
        score_archs([other], ds)

