"""Zero-cost proxies: train-less scores of a network on a mini-batch of a dataset.

The cheap rankings a predictor must beat (issue 12): each scores an untrained network
from one forward (and at most one backward) pass, with no training:

* ``naswot`` (Mellor et al., 2021): log-determinant of the kernel of the ReLU units'
  binary activation codes over the mini-batch; networks whose units separate the
  images score higher.
* ``synflow`` (Tanaka et al., 2020): log of ``sum(theta * dR/dtheta)`` for
  ``R = sum(f(1))`` with every weight replaced by its absolute value (data-free; BN in
  eval mode, float64).
* ``snip`` (Lee et al., 2019): ``sum |theta * dL/dtheta|`` for the cross-entropy loss on
  the mini-batch.
* ``grad_norm`` (Abdelfattah et al., 2021): the sum over parameter tensors of the L2
  norm of ``dL/dtheta``.

Implemented here from the papers' definitions. ``score_archs`` scores IR networks on a
:class:`~probenet.datasets.Dataset`: a stratified mini-batch, standardised per channel
as training does (:attr:`probenet.train.Recipe.standardize`), every network initialised
from the same seed.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from probenet.datasets import Dataset, stratified_subsample
from probenet.train import channel_stats
from tapas.core.arch import to_module
from tapas.core.lazy import LazyImport

torch = LazyImport("torch")
nn = LazyImport("torch.nn")

if TYPE_CHECKING:
    from tapas.core.arch import Architecture

PROXIES = ("naswot", "synflow", "snip", "grad_norm")
#: Images per mini-batch (the papers use 64-128).
BATCH = 64


def minibatch(ds: Dataset, n: int = BATCH, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of ``ds`` in class proportion (seeded), standardised per channel with
    the dataset's own mean and std, and their labels."""
    x = torch.from_numpy(np.array(ds.x))
    mean, std = channel_stats(x)
    idx = torch.from_numpy(stratified_subsample(ds.y, n, seed))
    return (x[idx] - mean) / std, torch.from_numpy(np.array(ds.y))[idx]


def naswot(module: torch.nn.Module, x: torch.Tensor) -> float:
    """Log-determinant of the activation-code kernel ``K = C C^T + (1 - C)(1 - C)^T``
    (``C``: which ReLU units are on, per image). ``-inf`` when ``K`` is singular, e.g.
    with no ReLU or two images coded alike."""
    codes: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(
        lambda _m, _i, out: codes.append((out.detach() > 0).flatten(1).double()))
        for m in module.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    module.train()
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in hooks:
            h.remove()
    if not codes:
        return -math.inf
    c = torch.cat(codes, 1)
    sign, logdet = torch.linalg.slogdet(c @ c.T + (1 - c) @ (1 - c).T)
    return float(logdet) if float(sign) > 0 else -math.inf


def synflow(module: torch.nn.Module, input_shape: Sequence[int]) -> float:
    """``log sum(theta * dR/dtheta)`` of a float64 copy with absolute weights, ``R`` the
    sum of its output for an all-ones input (``-inf`` when the sum is 0). ``module`` is
    not changed."""
    net = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        for p in net.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    net.zero_grad()
    net(torch.ones((1, *input_shape), dtype=torch.float64)).sum().backward()
    with torch.no_grad():
        total = sum(float((p * p.grad).sum()) for p in net.parameters() if p.grad is not None)
    return math.log(total) if total > 0 else -math.inf


def gradient_scores(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor
                    ) -> dict[str, float]:
    """``snip`` and ``grad_norm`` from one cross-entropy backward pass (train mode)."""
    module.train()
    module.zero_grad()
    torch.nn.functional.cross_entropy(module(x), y).backward()
    snip = grad = 0.0
    with torch.no_grad():
        for p in module.parameters():
            if p.grad is not None:
                snip += float((p * p.grad).abs().sum())
                grad += float(p.grad.norm())
    module.zero_grad()
    return {"snip": snip, "grad_norm": grad}


def score_module(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Every proxy of :data:`PROXIES` for one initialised network. Synflow goes first:
    the train-mode passes of the others move BatchNorm's running statistics, which
    synflow (in eval mode) would otherwise read, and it is meant to be data-free."""
    out = {"synflow": synflow(module, tuple(x.shape[1:])), "naswot": naswot(module, x)}
    out.update(gradient_scores(module, x, y))
    return out


def score_archs(archs: Sequence[Architecture], ds: Dataset, n: int = BATCH, seed: int = 0
                ) -> dict[str, np.ndarray]:
    """Each proxy for each network on ``ds`` (one mini-batch for all; every network
    initialised from ``seed``). Networks must match ``ds``'s input shape and classes."""
    x, y = minibatch(ds, n, seed)
    out = {p: np.empty(len(archs)) for p in PROXIES}
    for i, a in enumerate(archs):
        if tuple(a.input_shape) != ds.input_shape or a.num_classes != ds.num_classes:
            raise ValueError(f"network {i} expects input {tuple(a.input_shape)} and "
                             f"{a.num_classes} classes; {ds.name} has {ds.input_shape} and "
                             f"{ds.num_classes}")
        torch.manual_seed(seed)
        for k, v in score_module(to_module(a), x, y).items():
            out[k][i] = v
    return out
