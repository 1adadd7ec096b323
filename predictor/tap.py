"""The Train-less Accuracy Predictor: a two-layer stacked LSTM with accuracy feedback.

Model (per network, ``T`` encoded steps ``e_1..e_T`` from :mod:`predictor.encoding`):
step ``t`` sees the pair ``[e_{t-1}, e_t]`` (``e_0`` is an all-zero "input"
step), the dataset's DCN and the accuracy field ``A_{t-1}``; the stacked LSTM's
head predicts ``A_t``. ``A_0 = 1 / num_classes``; each predicted ``A_t`` is fed
into step ``t + 1``; ``A_T`` is the network's predicted accuracy. Networks of
different lengths share one padded batch: after its last step a network's ``A``
is frozen, so its output does not depend on what else is in the batch.

Speed: the feedback makes the recurrence sequential in ``t``, so the loop runs
over the (at most 16) steps and is batched over all networks *and* all ensemble
members at once (members are stacked weights used through ``bmm``). The
input-to-hidden projection of the first LSTM layer does not depend on the
feedback, so it is computed for all steps in one matrix product before the loop;
inside the loop only the recurrent products, the feedback term and the head run.

Training: the unrolled recurrence is trained end to end on the final accuracy
(mean squared error, plus a pairwise logistic ranking term among networks of the
same dataset, because users judge the predictor by its ranking). Intermediate
``A_t`` get no direct targets: the LDE's per-epoch curves describe training time,
not depth, so there is no ground truth for the accuracy "after layer i"; ``curves``
are validated and recorded in the provenance but do not enter the loss. Each member
trains on its own bootstrap weights and initialisation (diversity for the
spread); a held-out calibration split sets the conformal interval.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator

from predictor.encoding import ENCODING_VERSION, MAX_STEPS, STEP_DIM, encode_batch
from predictor.ensemble import Prediction, calibrate, interval
from tapas.arch import Architecture

AUTO_UPDATES = 900


class NotFittedError(RuntimeError):
    """Raised by ``predict`` before ``fit``."""


def check_archs(archs: Sequence[Any], what: str = "archs") -> list[Architecture]:
    """Validate that ``archs`` is a non-empty sequence of :class:`Architecture`."""
    if isinstance(archs, Architecture | str | bytes) or not hasattr(archs, "__len__"):
        raise TypeError(f"{what} must be a sequence of Architecture objects")
    out = list(archs)
    for i, a in enumerate(out):
        if not isinstance(a, Architecture):
            raise TypeError(f"{what}[{i}] is a {type(a).__name__}, not an Architecture "
                            "(convert with tapas.arch.load)")
    return out


def check_vector(values: float | ArrayLike, n: int, what: str, lo: float = 0.0,
                 hi: float = 1.0) -> np.ndarray:
    """A float vector of length ``n`` (a scalar is broadcast) within ``[lo, hi]``."""
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} must be numbers: {e}") from None
    if v.ndim == 0:
        v = np.full(n, float(v))
    if v.ndim != 1 or len(v) != n:
        raise ValueError(f"{what} has shape {v.shape}; expected a scalar or {n} values")
    bad = np.flatnonzero(~np.isfinite(v) | (v < lo) | (v > hi))
    if len(bad):
        raise ValueError(f"{what}[{bad[0]}] = {v[bad[0]]!r} is outside [{lo}, {hi}]")
    return v


def check_fit_inputs(archs: Sequence[Any], dcns: float | ArrayLike,
                     accuracies: ArrayLike) -> tuple[list[Architecture], np.ndarray, np.ndarray]:
    a = check_archs(archs)
    if len(a) < 2:
        raise ValueError(f"fit needs at least 2 networks, got {len(a)}")
    y = check_vector(accuracies, len(a), "accuracies")
    d = check_vector(dcns, len(a), "dcns")
    return a, d, y


def dcn_slope(d: np.ndarray, y: np.ndarray) -> float:
    """How the mean accuracy moves with the DCN, for predictions beyond the DCNs seen.

    With several training datasets: the least-squares slope of their mean accuracies
    on their DCNs. With one: 1.0, i.e. accuracy levels move one-for-one with the DCN,
    which is what a DCN *is* (the accuracy a fixed probe network reaches).
    """
    levels = np.unique(d)
    if len(levels) < 2:
        return 1.0
    means = np.array([y[d == v].mean() for v in levels])
    return float(np.polyfit(levels, means, 1)[0])


class _Net:
    """Namespace for the torch module (built lazily so importing this file stays cheap)."""

    @staticmethod
    def build(k: int, f: int, h: int, e: int, seed: int) -> Any:
        import torch
        from torch import nn

        class TAPNet(nn.Module):
            """K stacked-LSTM members with accuracy feedback, evaluated in one batch.

            A shared linear embedding (F -> E) of each encoded step feeds every member;
            each member's first LSTM layer sees ``[emb(e_{t-1}), emb(e_t), DCN, A_{t-1}]``.
            """

            def __init__(self) -> None:
                super().__init__()
                g = torch.Generator().manual_seed(seed)

                def u(*shape: int, fan: int) -> nn.Parameter:
                    b = 1.0 / math.sqrt(fan)
                    return nn.Parameter((torch.rand(*shape, generator=g) * 2 - 1) * b)

                self.w_e = u(f, e, fan=f)                   # shared step embedding
                self.b_e = nn.Parameter(torch.zeros(e))
                self.w_in = u(2 * e + 1, k * 4 * h, fan=h)  # [prev, cur, DCN] -> gates
                self.w_a = u(k, 1, 4 * h, fan=h)            # feedback A_{t-1} -> gates
                self.w_hh = u(k, h, 4 * h, fan=h)
                self.b1 = nn.Parameter(torch.zeros(k * 4 * h))
                self.w2 = u(k, 2 * h, 4 * h, fan=h)         # [h1, h2] -> gates (layer 2)
                self.b2 = nn.Parameter(torch.zeros(k, 1, 4 * h))
                self.w_o = u(k, h, 1, fan=h)
                self.b_o = nn.Parameter(torch.zeros(k, 1, 1))
                with torch.no_grad():  # forget-gate bias 1: the usual LSTM start
                    self.b1.view(k, 4 * h)[:, h:2 * h] = 1.0
                    self.b2[..., h:2 * h] = 1.0
                self.h, self.k = h, k

            def forward(self, x: torch.Tensor, lengths: torch.Tensor, a0: torch.Tensor,
                        dcn: torch.Tensor) -> torch.Tensor:
                n, t_max, f_ = x.shape
                kk, h = self.k, self.h
                ne = self.w_e.shape[1]
                # shared step embedding, time-major: (T, N, E)
                xt = x.transpose(0, 1).reshape(t_max * n, f_)
                emb = torch.tanh(torch.addmm(self.b_e, xt, self.w_e)).reshape(t_max, n, ne)
                prev = torch.cat([emb.new_zeros(1, n, ne), emb[:-1]], 0)
                pairs = torch.cat([prev, emb, dcn[None, :, None].expand(t_max, n, 1)], 2)
                # the feedback-free part of layer 1 for all steps and members: one GEMM
                proj = torch.addmm(self.b1, pairs.reshape(t_max * n, 2 * ne + 1), self.w_in)
                # unbind: one gradient stack in backward instead of a full-size zero fill
                # per step (slicing proj[t] would allocate and fill T times)
                projs = proj.reshape(t_max, n, kk, 4 * h).transpose(1, 2).unbind(0)
                a = a0[None, :].expand(kk, n)
                h1 = c1 = h2 = c2 = x.new_zeros(kk, n, h)
                for t in range(t_max):
                    g1 = torch.baddbmm(torch.addcmul(projs[t], a[..., None], self.w_a),
                                       h1, self.w_hh)
                    i1, f1, z1, o1 = torch.sigmoid(g1).chunk(4, 2)
                    c1 = torch.addcmul(f1 * c1, i1, 2 * z1 - 1)
                    h1 = o1 * torch.tanh(c1)
                    g2 = torch.baddbmm(self.b2, torch.cat([h1, h2], 2), self.w2)
                    i2, f2, z2, o2 = torch.sigmoid(g2).chunk(4, 2)
                    c2 = torch.addcmul(f2 * c2, i2, 2 * z2 - 1)
                    h2 = o2 * torch.tanh(c2)
                    a_new = torch.sigmoid(torch.baddbmm(self.b_o, h2, self.w_o)[..., 0])
                    a = torch.where((t < lengths)[None, :], a_new, a)
                return a  # (K, N)

        return TAPNet()


class TAPRegressor(BaseEstimator):
    """Train-less accuracy predictor (stacked LSTM ensemble) in scikit-learn's style.

    Parameters
    ----------
    hidden_size : LSTM width of each member.
    embed_size : width of the shared linear embedding of each encoded step.
    epochs, lr, batch_size, weight_decay : optimisation (Adam, cosine-decayed lr).
        ``epochs=None`` picks the number of epochs that gives about
        ``AUTO_UPDATES`` gradient steps (between 8 and 150 epochs): small training
        sets need many epochs, large ones few, and training time stays bounded.
    n_members : ensemble size K (mean and spread).
    coverage : nominal coverage of the split-conformal interval.
    calibration_fraction : share of the training rows held out for calibration.
    rank_weight : weight of the pairwise ranking term next to the squared error.
    max_steps : encoding length cap (see :mod:`predictor.encoding`).
    seed : everything random derives from it; same seed, same data -> same model.
    device : ``auto|cpu|cuda``.
    """

    def __init__(self, hidden_size: int = 32, embed_size: int = 24, epochs: int | None = None,
                 lr: float = 3e-3, batch_size: int = 128, weight_decay: float = 1e-5,
                 n_members: int = 4,
                 coverage: float = 0.9, calibration_fraction: float = 0.15,
                 rank_weight: float = 0.5, max_steps: int = MAX_STEPS, seed: int = 0,
                 device: str = "auto") -> None:
        self.hidden_size = hidden_size
        self.embed_size = embed_size
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.n_members = n_members
        self.coverage = coverage
        self.calibration_fraction = calibration_fraction
        self.rank_weight = rank_weight
        self.max_steps = max_steps
        self.seed = seed
        self.device = device

    # ------------------------------------------------------------------ helpers
    def _check_params(self) -> None:
        if not (isinstance(self.hidden_size, int) and 1 <= self.hidden_size <= 4096):
            raise ValueError(f"hidden_size must be an int in [1, 4096], got {self.hidden_size!r}")
        if not (isinstance(self.embed_size, int) and 1 <= self.embed_size <= 4096):
            raise ValueError(f"embed_size must be an int in [1, 4096], got {self.embed_size!r}")
        if self.epochs is not None and not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ValueError(f"epochs must be a positive int, got {self.epochs!r}")
        if not (isinstance(self.n_members, int) and 1 <= self.n_members <= 64):
            raise ValueError(f"n_members must be an int in [1, 64], got {self.n_members!r}")
        if not 0.0 < self.coverage < 1.0:
            raise ValueError(f"coverage must lie in (0, 1), got {self.coverage!r}")
        if not 0.0 < self.calibration_fraction < 0.9:
            raise ValueError("calibration_fraction must lie in (0, 0.9), got "
                             f"{self.calibration_fraction!r}")
        if not (self.lr > 0 and self.batch_size >= 1 and self.weight_decay >= 0
                and self.rank_weight >= 0 and 1 <= self.max_steps <= 256):
            raise ValueError("lr, batch_size, weight_decay, rank_weight or max_steps is out "
                             "of range")

    def _device(self) -> Any:
        from tapas.device import resolve_device

        return resolve_device(self.device)

    def _members(self, archs: list[Architecture], dcn: np.ndarray,
                 chunk: int = 8192) -> np.ndarray:
        """Every member's prediction, (K, N)."""
        if not hasattr(self, "net_"):
            raise NotFittedError("this TAPRegressor is not fitted yet; call fit() first")
        x, lengths, ncls = encode_batch(archs, self.max_steps)
        return self._members_encoded(x, lengths, ncls, dcn, chunk)

    def _members_encoded(self, x: np.ndarray, lengths: np.ndarray, ncls: np.ndarray,
                         dcn: np.ndarray, chunk: int = 8192) -> np.ndarray:
        import torch

        dev = self.device_
        # outside the DCN range seen in training the LSTM would extrapolate blindly;
        # evaluate it at the nearest seen DCN and move the level linearly (dcn_slope_)
        lo, hi = self.dcn_range_
        d_in = np.clip(dcn, lo, hi)
        outs = []
        with torch.inference_mode():
            for s in range(0, len(x), chunk):
                ln = lengths[s:s + chunk]
                t_b = int(ln.max())
                xb = (x[s:s + chunk, :t_b] - self.x_mean_) / self.x_std_
                outs.append(self.net_(
                    torch.from_numpy(np.ascontiguousarray(xb, dtype=np.float32)).to(dev),
                    torch.from_numpy(ln).to(dev),
                    torch.from_numpy((1.0 / ncls[s:s + chunk]).astype(np.float32)).to(dev),
                    torch.from_numpy(d_in[s:s + chunk].astype(np.float32)).to(dev)).cpu())
        m = torch.cat(outs, 1).numpy().astype(np.float64)
        return np.clip(m + self.dcn_slope_ * (dcn - d_in)[None, :], 0.0, 1.0)

    # --------------------------------------------------------------------- API
    def fit(self, archs: Sequence[Architecture], dcns: float | ArrayLike,
            accuracies: ArrayLike, curves: Sequence[Sequence[float] | None] | None = None,
            progress: Callable[[int, int], None] | None = None) -> TAPRegressor:
        """Train the ensemble on ``(architecture, dataset DCN) -> final accuracy`` rows.

        ``progress(epoch, epochs)`` is called before the first epoch and after each one
        (a fit parameter, not a hyper-parameter: it does not change the model).
        """
        self._check_params()
        archs_l, d, y = check_fit_inputs(archs, dcns, accuracies)
        n_curves = 0
        if curves is not None:
            if len(curves) != len(archs_l):
                raise ValueError(f"curves has {len(curves)} entries for {len(archs_l)} networks")
            for i, c in enumerate(curves):
                if c is not None:
                    check_vector(c, len(c), f"curves[{i}]")
                    n_curves += 1
        x_all, len_all, ncls_all = encode_batch(archs_l, self.max_steps)
        self.n_curves_ = n_curves
        return self._fit_encoded(x_all, len_all, ncls_all, d, y, progress)

    def _fit_encoded(self, x_all: np.ndarray, len_all: np.ndarray, ncls_all: np.ndarray,
                     d: np.ndarray, y: np.ndarray,
                     progress: Callable[[int, int], None] | None = None) -> TAPRegressor:
        """Training on already encoded, padded step sequences (see ``encode_batch``)."""
        import torch

        t0 = time.perf_counter()
        self._check_params()
        if not hasattr(self, "n_curves_"):
            self.n_curves_ = 0
        rng = np.random.default_rng(self.seed)
        n = len(y)
        n_cal = int(round(self.calibration_fraction * n)) if n >= 20 else 0
        perm = rng.permutation(n)
        cal, tr = perm[:n_cal], perm[n_cal:]

        mask = np.arange(x_all.shape[1])[None, :] < len_all[:, None]
        steps = x_all[tr][mask[tr]]
        self.x_mean_ = steps.mean(0).astype(np.float32)
        self.x_std_ = (steps.std(0) + 1e-3).astype(np.float32)
        self.device_ = self._device()
        dev = self.device_
        torch.manual_seed(self.seed)
        k, h = self.n_members, self.hidden_size
        net = _Net.build(k, STEP_DIM, h, self.embed_size, self.seed).to(dev)

        xt = torch.from_numpy(((x_all - self.x_mean_) / self.x_std_).astype(np.float32)).to(dev)
        lt = torch.from_numpy(len_all).to(dev)
        a0 = torch.from_numpy((1.0 / ncls_all).astype(np.float32)).to(dev)
        dt = torch.from_numpy(d.astype(np.float32)).to(dev)
        yt = torch.from_numpy(y.astype(np.float32)).to(dev)
        # bootstrap weights per member (Poisson(1)): diversity for the ensemble spread
        boot = torch.from_numpy(rng.poisson(1.0, size=(k, n)).astype(np.float32)).to(dev)
        y_scale = float(max(np.std(y[tr]), 1e-3))
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        bs = min(self.batch_size, len(tr))
        n_batches = max(1, math.ceil(len(tr) / bs))
        epochs = self.epochs or int(min(150, max(8, math.ceil(AUTO_UPDATES / n_batches))))
        self.epochs_ = epochs
        total = epochs * n_batches
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        gen = torch.Generator().manual_seed(self.seed)
        tr_t = torch.from_numpy(tr)
        self.loss_curve_: list[float] = []
        net.train()
        if progress is not None:
            progress(0, epochs)
        for epoch in range(epochs):
            order = tr_t[torch.randperm(len(tr), generator=gen)]
            ep = 0.0
            for b in range(n_batches):
                idx = order[b * bs:(b + 1) * bs].to(dev)
                t_b = int(lt[idx].max())
                pred = net(xt[idx, :t_b], lt[idx], a0[idx], dt[idx])  # (K, B)
                w = boot[:, idx]
                yb = yt[idx]
                err = ((pred - yb[None]) / y_scale) ** 2
                loss = (w * err).sum() / w.sum().clamp_min(1.0)
                if self.rank_weight > 0 and len(idx) > 1:
                    dy = yb[:, None] - yb[None, :]
                    same = (dt[idx][:, None] == dt[idx][None, :]) & (dy.abs() > 1e-3)
                    if bool(same.any()):
                        dp = (pred[:, :, None] - pred[:, None, :]) / (0.1 * y_scale)
                        pl = torch.nn.functional.softplus(-torch.sign(dy)[None] * dp)
                        pw = (w[:, :, None] * w[:, None, :]) * same[None]
                        loss = loss + self.rank_weight * (pl * pw).sum() / pw.sum().clamp_min(1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
                sched.step()
                ep += float(loss.detach())
            self.loss_curve_.append(ep / n_batches)
            if progress is not None:
                progress(epoch + 1, epochs)
        net.eval()
        self.net_ = net
        self.n_features_ = STEP_DIM
        self.encoding_version_ = ENCODING_VERSION
        self.n_train_ = int(len(tr))
        self.n_calibration_ = int(n_cal)
        self.dcn_range_ = (float(d.min()), float(d.max()))
        self.dcn_slope_ = dcn_slope(d[tr], y[tr])
        if n_cal:
            m = self._members_encoded(x_all[cal], len_all[cal], ncls_all[cal], d[cal])
            self.q_, self.s0_ = calibrate(y[cal], m.mean(0), m.std(0), self.coverage)
        else:
            self.q_, self.s0_ = math.inf, 1e-4
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def predict_members(self, archs: Sequence[Architecture],
                        dcn: float | ArrayLike) -> np.ndarray:
        """Each member's predicted accuracy, shape (K, N)."""
        a = check_archs(archs)
        if not a:
            return np.zeros((getattr(self, "n_members", 1), 0))
        return self._members(a, check_vector(dcn, len(a), "dcn"))

    def predict(self, archs: Sequence[Architecture], dcn: float | ArrayLike) -> np.ndarray:
        """Predicted final accuracy in [0, 1] for each network on a dataset of DCN ``dcn``."""
        return self.predict_members(archs, dcn).mean(0)

    def predict_interval(self, archs: Sequence[Architecture],
                         dcn: float | ArrayLike) -> Prediction:
        """Mean, ensemble spread and the split-conformal interval at ``coverage``."""
        m = self.predict_members(archs, dcn)
        return interval(m.mean(0), m.std(0), self.q_, self.s0_, self.coverage, members=m)

    # ------------------------------------------------------------- persistence
    def save(self, path: Any, provenance: dict[str, Any] | None = None) -> None:
        """Write the fitted model (no pickle); see :mod:`predictor.persist`."""
        from predictor.persist import save

        save(self, path, provenance)
