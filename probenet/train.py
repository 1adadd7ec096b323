"""A generic, seeded training loop for any ``nn.Module`` on a :class:`Dataset`.

Used by the probe, by the DCN benchmark's architecture panel and by the starter-data
experiment runner. Small data is the common case, so the loop keeps Python overhead
low: data is tensorised once (and moved to the device once), batches are index
slices, no DataLoader or workers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tapas.core.device import resolve_device
from tapas.core.lazy import LazyImport

torch = LazyImport("torch")
nn = LazyImport("torch.nn")
F = LazyImport("torch.nn.functional")

if TYPE_CHECKING:
    from probenet.datasets import Dataset

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "onecycle")
AUGMENTATIONS = ("none", "shift")


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one training run (stored with every experiment)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.01
    optimizer: str = "adamw"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    augmentation: str = "none"
    label_smoothing: float = 0.0
    standardize: bool = True
    """Per-channel mean/std from the training split, applied to both splits."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"invalid recipe {self}: epochs >= 1, batch_size >= 2, lr > 0, "
                             "weight_decay >= 0")
        for name, value, allowed in (("optimizer", self.optimizer, OPTIMIZERS),
                                     ("schedule", self.schedule, SCHEDULES),
                                     ("augmentation", self.augmentation, AUGMENTATIONS)):
            if value not in allowed:
                raise ValueError(f"recipe {name} {value!r} is not one of {', '.join(allowed)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`fit_evaluate`. Accuracies in [0, 1]."""

    final_accuracy: float
    curve: list[float]
    """Held-out accuracy after each epoch (``curve[-1] == final_accuracy``)."""
    epochs: int
    seconds: float
    train_loss: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of an ``(N, C, H, W)`` batch, shaped to broadcast; the
    std is floored so that a constant channel standardises to zero, not NaN."""
    return (x.mean((0, 2, 3), keepdim=True),
            x.std((0, 2, 3), keepdim=True).clamp_min(1e-6))


def _tensors(ds: Dataset, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.from_numpy(np.array(ds.x)).to(device),
            torch.from_numpy(np.array(ds.y)).to(device))


def _shift(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Random per-sample translation by up to ``pad`` pixels (zero padded)."""
    n, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(x.device)
    rows = (torch.arange(h, device=x.device)[None, :] + dy[:, None])[:, None, :, None]
    cols = (torch.arange(w, device=x.device)[None, :] + dx[:, None])[:, None, None, :]
    ni = torch.arange(n, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return xp[ni, ci, rows, cols]


def _reset(module: nn.Module) -> None:
    for m in module.modules():
        fn = getattr(m, "reset_parameters", None)
        if callable(fn):
            fn()


def _predict(module: nn.Module, x: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    module.eval()
    with torch.no_grad():
        out = [module(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)]
    module.train()
    return torch.cat(out)


def train_tensors(module: nn.Module, xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor,
                  yte: torch.Tensor, recipe: Recipe, seed: int, eval_every_epoch: bool = True,
                  progress: Callable[[int, int], None] | None = None,
                  max_steps: int | None = None,
                  ) -> tuple[list[float], list[float], torch.Tensor]:
    """The loop on tensors already on one device; returns (curve, losses, last predictions).

    The module's parameters are re-initialised under ``seed`` so (module, data, recipe,
    seed) fully determine the run on the CPU. ``progress(epoch, epochs)`` is called after
    every epoch.

    ``max_steps`` (None or 0: no cap) stops after that many optimizer steps, part-way
    through the last epoch if need be; the learning-rate schedule is laid over the capped
    step count, so a capped run still warms up and anneals to zero. A cap at or above
    ``recipe.epochs`` epochs' worth of steps changes nothing (same steps, same numbers).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _reset(module)
        module.to(xtr.device).train()
        if recipe.standardize:
            mean, std = channel_stats(xtr)
            xtr, xte = (xtr - mean) / std, (xte - mean) / std
        params = [p for p in module.parameters() if p.requires_grad]
        if recipe.optimizer == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=recipe.lr, momentum=recipe.momentum,
                weight_decay=recipe.weight_decay, nesterov=recipe.momentum > 0)
        elif recipe.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
        else:
            opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
        n = len(xtr)
        bs = min(recipe.batch_size, n)
        steps_per_epoch = max(1, n // bs)
        total = steps_per_epoch * recipe.epochs
        if max_steps:
            total = min(total, int(max_steps))
        sched: Any = None
        if recipe.schedule == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
        elif recipe.schedule == "onecycle":  # linear warm-up (25 %), then cosine to zero
            warm = max(1, total // 4)

            def factor(step: int) -> float:
                if step < warm:
                    return 0.1 + 0.9 * step / warm
                return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        gen = torch.Generator().manual_seed(seed)
        curve: list[float] = []
        losses: list[float] = []
        pred = torch.empty(0, dtype=torch.long)
        last_epoch = -(-total // steps_per_epoch) - 1
        for epoch in range(last_epoch + 1):
            perm = torch.randperm(n, generator=gen).to(xtr.device)
            running = torch.zeros((), device=xtr.device)
            epoch_steps = min(steps_per_epoch, total - epoch * steps_per_epoch)
            for s in range(epoch_steps):
                idx = perm[s * bs:(s + 1) * bs]
                xb = xtr[idx]
                if recipe.augmentation == "shift":
                    xb = _shift(xb, 1 + xb.shape[-1] // 16, gen)
                loss = loss_fn(module(xb), ytr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                running += loss.detach()
            losses.append(float(running) / epoch_steps)
            if eval_every_epoch or epoch == last_epoch:
                pred = _predict(module, xte)
                curve.append(float((pred == yte).float().mean()))
            if progress is not None:
                progress(epoch + 1, last_epoch + 1)
    return curve, losses, pred


def fit_evaluate(module: nn.Module, train: Dataset, test: Dataset, recipe: Recipe, seed: int,
                 device: str | torch.device = "cpu",
                 progress: Callable[[int, int], None] | None = None) -> TrainResult:
    """Train ``module`` on ``train`` with ``recipe`` and report held-out accuracy per epoch.

    ``device`` is a ``torch.device`` or a policy (``auto|cpu|cuda``).
    """
    dev = device if isinstance(device, torch.device) else resolve_device(str(device))
    if train.input_shape != test.input_shape:
        raise ValueError(f"train and test shapes differ: {train.input_shape} vs "
                         f"{test.input_shape}")
    t0 = time.perf_counter()
    xtr, ytr = _tensors(train, dev)
    xte, yte = _tensors(test, dev)
    curve, losses, _ = train_tensors(module, xtr, ytr, xte, yte, recipe, seed, True, progress)
    return TrainResult(final_accuracy=curve[-1], curve=curve, epochs=recipe.epochs,
                       seconds=time.perf_counter() - t0, train_loss=losses)
