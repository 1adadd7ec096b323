"""The Train-less Accuracy Predictor: a two-layer stacked LSTM with accuracy feedback.

Model (per network, ``T`` encoded steps ``e_1..e_T`` from :mod:`predictor.encoding`):
step ``t`` sees the pair ``[e_{t-1}, e_t]`` (``e_0`` is an all-zero "input"
step), a *context* vector and the accuracy field ``A_{t-1}``; the stacked LSTM's
head predicts ``A_t``. ``A_0 = 1 / num_classes``; each predicted ``A_t`` is fed
into step ``t + 1``; ``A_T`` is the network's predicted accuracy. Networks of
different lengths share one padded batch: a network's answer is ``A`` at its own
last step (the padding's steps are computed and discarded), so its output does not
depend on what else is in the batch.

The context describes the target dataset and what the LDE knows of the candidate:
the DCN, the class count and input geometry, and the history features of
:mod:`predictor.history`: the candidate family's within-dataset rank on
the other datasets the LDE holds, nearest DCN first, masked when absent.

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
are validated and recorded in the provenance but do not enter the loss. History
features are dropped for a share of the training rows (``history_dropout``) so the
model also scores networks the LDE has never seen. Each member trains on its own
bootstrap weights and initialisation (diversity for the spread) and, when stacking,
without one fold of the training datasets (:mod:`predictor.stacking`); a held-out
calibration split sets the conformal interval.

Beside the LSTM: gradient-boosted trees (:mod:`predictor.trees`, ``tree_weight``) read
a summary of the same step encoding and share each member's output; they rank
families the LDE never saw better than the LSTM alone, and the average better than
either. The LSTM learns each network's standing within its dataset; the dataset's
accuracy level is a separate small model over the datasets the history holds.

Fixed choices: the variants they were chosen over (absolute targets as in TAPAS, no
history features, an unweighted consensus, a level from the DCN alone) were ablations
(docs/research/) and are gone from the code. Their hyper-parameters stay, each with the
one value it can take, because a predictor's identity hashes every hyper-parameter
(``tapas.app.pipeline.predictor_key``) and model files record them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from predictor import persist, stacking
from predictor.domain import OUT_OF_DOMAIN_WIDENING, Domain
from predictor.encoding import ENCODING_VERSION, MAX_STEPS, STEP_DIM, encode_batch
from predictor.ensemble import EnsembleOutput, calibrate, interval
from predictor.history import (
    HISTORY_DIM,
    N_DESCRIPTOR,
    HistoryTable,
    KernelSet,
    consensus,
    fit_kernels,
    geometry_of,
)
from predictor.trees import BoostedTrees, tree_features
from tapas.core.arch import Architecture
from tapas.core.config import get_settings
from tapas.core.device import resolve_device
from tapas.core.lazy import LazyImport

torch = LazyImport("torch")
nn = LazyImport("torch.nn")

__all__ = ["CONTEXT_DIM", "NotFittedError", "TAPRegressor"]

#: ``epochs=None`` aims at ``updates`` gradient steps, within [MIN_EPOCHS, MAX_EPOCHS].
AUTO_UPDATES = 900
MIN_EPOCHS, MAX_EPOCHS = 8, 150
#: Below this many rows no calibration split is held out (the interval is unbounded).
MIN_ROWS_FOR_CALIBRATION = 20
#: Floor of the target scale that normalises the squared error.
MIN_TARGET_SCALE = 1e-3
#: The ranking term's logistic temperature, as a share of the target scale.
RANK_TEMPERATURE = 0.1
#: Pairs closer than this in true accuracy carry no ranking signal.
RANK_MIN_GAP = 1e-3
GRAD_CLIP_NORM = 5.0
#: The accuracy field holds 0.5 + REL_SCALE x (within-dataset z-score), clipped to
#: [REL_CLIP, 1 - REL_CLIP]; the level comes from the level model.
REL_SCALE = 0.15
REL_CLIP = 0.02
#: Points of the percentile -> z map of the history consensus (:func:`consensus_map`).
CONSENSUS_GRID = 101
MIN_LEVEL_STD = 0.005
LEVEL_SOFTENING = 0.05
#: :func:`level_by_descriptor` needs this many datasets of known geometry; with fewer
#: the level comes from the DCN alone (:func:`level_at`).
LEVEL_MIN_DATASETS = 8
#: Hyper-parameters with one value left: recorded in a predictor's identity and files
#: (see the module doc), so they stay parameters; another value is refused.
FIXED_PARAMS: dict[str, object] = {"target": "relative", "use_history": True,
                                   "history_similarity": True, "level_model": "descriptor"}
#: Ridge penalty of the descriptor fit, on standardised descriptors.
LEVEL_RIDGE = 1.0
#: The context: DCN, log2 classes / 7, log2 input size / 5, input channels / 3, history.
N_DATASET_FEATURES = 4
CONTEXT_DIM = N_DATASET_FEATURES + HISTORY_DIM


def check_archs(archs: Sequence[Any], what: str = "archs") -> list[Architecture]:
    """Validate that ``archs`` is a non-empty sequence of :class:`Architecture`."""
    if isinstance(archs, Architecture | str | bytes) or not hasattr(archs, "__len__"):
        raise TypeError(f"{what} must be a sequence of Architecture objects")
    out = list(archs)
    for i, a in enumerate(out):
        if not isinstance(a, Architecture):
            raise TypeError(f"{what}[{i}] is a {type(a).__name__}, not an Architecture "
                            "(convert with tapas.core.spaces.parse_arch)")
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


def check_groups(groups: Sequence[Any] | None, d: np.ndarray) -> np.ndarray:
    """Dataset id per row; without ids, rows of equal DCN are taken as one dataset."""
    if groups is None:
        return np.array([f"dcn={v!r}" for v in d.tolist()], dtype=object)
    g = np.asarray([str(x) for x in groups], dtype=object)
    if len(g) != len(d):
        raise ValueError(f"groups has {len(g)} entries for {len(d)} networks")
    return g


def consensus_map(field: np.ndarray) -> np.ndarray:
    """The training rows' within-dataset z-scores at percentiles 0, 1, ..., 100: a mean
    percentile read through it lands on the z scale (and skew) accuracies really have."""
    return np.quantile((field - 0.5) / REL_SCALE, np.linspace(0.0, 1.0, CONSENSUS_GRID))


def consensus_z(ctx: np.ndarray, zmap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(held, z)``: whether another dataset holds each row's family, and its consensus
    (mean percentile there) as a z-score through ``zmap`` (:func:`consensus_map`)."""
    held, pct = consensus(ctx[:, N_DATASET_FEATURES:])
    z = np.interp(pct, np.linspace(0.0, 1.0, len(zmap)), zmap)
    return held, np.where(held, z, 0.0)


def consensus_slope(ctx: np.ndarray, field: np.ndarray, zmap: np.ndarray) -> float:
    """Least-squares slope (no intercept) of a row's within-dataset z-score on its
    family's consensus z, over the rows whose family another dataset holds (0.0 when
    none): how far the other datasets' ranks carry over."""
    held, zc = consensus_z(ctx, zmap)
    if not held.any():
        return 0.0
    z = (field[held] - 0.5) / REL_SCALE
    den = float(zc[held] @ zc[held])
    return float(zc[held] @ z / den) if den > 1e-12 else 0.0


def dataset_levels(d: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``[G, 3]`` rows of (DCN, mean accuracy, accuracy std) per training dataset."""
    out = []
    for g in dict.fromkeys(groups.tolist()):
        m = groups == g
        out.append((float(d[m][0]), float(y[m].mean()), float(max(y[m].std(), MIN_LEVEL_STD))))
    return np.asarray(out, dtype=np.float64)


def level_at(levels: np.ndarray, dcn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of accuracies expected on datasets of DCN ``dcn``: a weighted
    linear fit over the training datasets, nearest DCNs weighing most (weights
    ``1 / (|dDCN| + LEVEL_SOFTENING)^2``); one training dataset: its level moved
    one-for-one with the DCN (what a DCN *is*), its spread kept."""
    dcn = np.asarray(dcn, np.float64)
    mu, sd = np.empty(len(dcn)), np.empty(len(dcn))
    dg, mg, sg = levels[:, 0], levels[:, 1], levels[:, 2]
    for v in np.unique(dcn):
        at = dcn == v
        if len(np.unique(dg)) < 2:
            mu[at], sd[at] = mg[0] + (v - dg[0]), sg[0]
            continue
        w = 1.0 / (np.abs(dg - v) + LEVEL_SOFTENING) ** 2
        x = np.column_stack([np.ones_like(dg), dg - v])
        sw = np.sqrt(w)[:, None]
        mu[at] = np.linalg.lstsq(x * sw, mg * sw[:, 0], rcond=None)[0][0]
        sd[at] = np.linalg.lstsq(x * sw, sg * sw[:, 0], rcond=None)[0][0]
    return np.clip(mu, 0.0, 1.0), np.maximum(sd, MIN_LEVEL_STD)


def history_levels(history: HistoryTable) -> np.ndarray:
    """``[G, 2 + N_DESCRIPTOR]``: each history dataset's mean and spread of accuracy over
    the families it holds, and its descriptor (DCN, geometry)."""
    acc = history.acc
    return np.column_stack([np.nanmean(acc, 0),
                            np.maximum(np.nanstd(acc, 0), MIN_LEVEL_STD), history.descriptors()])


def level_by_descriptor(table: np.ndarray, query: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean and spread of accuracies on datasets of descriptor ``query [N, N_DESCRIPTOR]``:
    a ridge-linear fit over ``table`` (:func:`history_levels`) on the standardised
    descriptor, so datasets of other input sizes, channels and class counts inform the
    level too. None with fewer than ``LEVEL_MIN_DATASETS`` datasets of known geometry."""
    known = np.isfinite(table[:, 2:]).all(1)
    if known.sum() < LEVEL_MIN_DATASETS or not np.isfinite(query).all():
        return None
    x, y = table[known, 2:], table[known, :2]
    keep = x.std(0) > 1e-9
    m, s = x[:, keep].mean(0), x[:, keep].std(0)
    a = np.column_stack([np.ones(len(x)), (x[:, keep] - m) / s])
    pen = LEVEL_RIDGE * np.eye(a.shape[1])
    pen[0, 0] = 0.0
    coef = np.linalg.solve(a.T @ a + pen, a.T @ y)
    q = np.column_stack([np.ones(len(query)), (query[:, keep] - m) / s]) @ coef
    return np.clip(q[:, 0], 0.0, 1.0), np.maximum(q[:, 1], MIN_LEVEL_STD)


def dataset_features(archs: Sequence[Architecture], dcn: np.ndarray) -> np.ndarray:
    """``[N, N_DATASET_FEATURES]``: the DCN and the target's geometry, read off each network."""
    out = np.empty((len(archs), N_DATASET_FEATURES))
    out[:, 0] = dcn
    for i, a in enumerate(archs):
        c, h, _ = a.input_shape
        out[i, 1:] = (math.log2(max(a.num_classes, 2)) / 7.0, math.log2(max(h, 1)) / 5.0,
                      c / 3.0)
    return out


def net_shapes(k: int, f: int, c: int, h: int, e: int) -> dict[str, tuple[int, ...]]:
    """Every parameter :func:`build_net` makes, by name, with its shape: what a model file
    must hold for these hyper-parameters, checked before any module is built."""
    return {"w_e": (f, e), "b_e": (e,), "w_in": (2 * e + c, k * 4 * h), "w_a": (k, 1, 4 * h),
            "w_hh": (k, h, 4 * h), "b1": (k * 4 * h,), "w2": (k, 2 * h, 4 * h),
            "b2": (k, 1, 4 * h), "w_o": (k, h, 1), "b_o": (k, 1, 1), "w_c": (k, c, 1)}


def build_net(k: int, f: int, c: int, h: int, e: int, seed: int) -> Any:
    """The torch module: K stacked-LSTM members with accuracy feedback, one batch."""
    class TAPNet(nn.Module):
        """A shared linear embedding (F -> E) of each encoded step feeds every member;
        each member's first LSTM layer sees ``[emb(e_{t-1}), emb(e_t), context, A_{t-1}]``,
        and the context also reaches the head linearly (the history features are close
        to the answer; the LSTM learns the correction the architecture implies).
        """

        def __init__(self) -> None:
            super().__init__()
            g = torch.Generator().manual_seed(seed)

            def u(*shape: int, fan: int) -> nn.Parameter:
                b = 1.0 / math.sqrt(fan)
                return nn.Parameter((torch.rand(*shape, generator=g) * 2 - 1) * b)

            self.w_e = u(f, e, fan=f)                   # shared step embedding
            self.b_e = nn.Parameter(torch.zeros(e))
            self.w_in = u(2 * e + c, k * 4 * h, fan=h)  # [prev, cur, context] -> gates
            self.w_a = u(k, 1, 4 * h, fan=h)            # feedback A_{t-1} -> gates
            self.w_hh = u(k, h, 4 * h, fan=h)
            self.b1 = nn.Parameter(torch.zeros(k * 4 * h))
            self.w2 = u(k, 2 * h, 4 * h, fan=h)         # [h1, h2] -> gates (layer 2)
            self.b2 = nn.Parameter(torch.zeros(k, 1, 4 * h))
            self.w_o = u(k, h, 1, fan=h)
            self.b_o = nn.Parameter(torch.zeros(k, 1, 1))
            self.w_c = nn.Parameter(torch.zeros(k, c, 1))  # context -> head, linear path
            with torch.no_grad():  # forget-gate bias 1: the usual LSTM start
                self.b1.view(k, 4 * h)[:, h:2 * h] = 1.0
                self.b2[..., h:2 * h] = 1.0
            self.h, self.k = h, k

        def forward(self, x: torch.Tensor, lengths: torch.Tensor, a0: torch.Tensor,
                    ctx: torch.Tensor) -> torch.Tensor:
            n, t_max, f_ = x.shape
            kk, h = self.k, self.h
            ne = self.w_e.shape[1]
            # shared step embedding, time-major: (T, N, E)
            xt = x.transpose(0, 1).reshape(t_max * n, f_)
            emb = torch.tanh(torch.addmm(self.b_e, xt, self.w_e)).reshape(t_max, n, ne)
            prev = torch.cat([emb.new_zeros(1, n, ne), emb[:-1]], 0)
            nc = ctx.shape[1]
            pairs = torch.cat([prev, emb, ctx[None].expand(t_max, n, nc)], 2)
            # the feedback-free part of layer 1 for all steps and members: one GEMM
            proj = torch.addmm(self.b1, pairs.reshape(t_max * n, 2 * ne + nc), self.w_in)
            # unbind: one gradient stack in backward instead of a full-size zero fill
            # per step (slicing proj[t] would allocate and fill T times)
            projs = proj.reshape(t_max, n, kk, 4 * h).transpose(1, 2).unbind(0)
            a = a0[None, :].expand(kk, n)
            head_bias = self.b_o + torch.matmul(ctx[None], self.w_c)  # (K, N, 1)
            h1 = c1 = h2 = c2 = x.new_zeros(kk, n, h)
            w2_h1, w2_h2 = self.w2[:, :h], self.w2[:, h:]
            steps = []
            for t in range(t_max):
                g1 = torch.baddbmm(torch.addcmul(projs[t], a[..., None], self.w_a),
                                   h1, self.w_hh)
                i1, f1, z1, o1 = torch.sigmoid(g1).chunk(4, 2)
                c1 = torch.addcmul(f1 * c1, i1, 2 * z1 - 1)
                h1 = o1 * torch.tanh(c1)
                g2 = torch.baddbmm(torch.baddbmm(self.b2, h1, w2_h1), h2, w2_h2)
                i2, f2, z2, o2 = torch.sigmoid(g2).chunk(4, 2)
                c2 = torch.addcmul(f2 * c2, i2, 2 * z2 - 1)
                h2 = o2 * torch.tanh(c2)
                a = torch.sigmoid(torch.baddbmm(head_bias, h2, self.w_o)[..., 0])
                steps.append(a)
            # a network's answer is A at its last step; later steps only feed themselves
            last = (lengths - 1).clamp(0, t_max - 1)
            return torch.stack(steps).gather(0, last[None, None, :].expand(1, kk, n))[0]

    return TAPNet()


class _Parts(NamedTuple):
    """What a prediction is mixed from (:meth:`TAPRegressor._mix`)."""

    lstm: np.ndarray
    """(K, N) each member's LSTM output on the accuracy-field scale."""
    trees: np.ndarray | None
    """(N,) the trees' output on the same scale; None without trees."""
    mu: np.ndarray
    """(N,) the dataset's expected accuracy level."""
    sd: np.ndarray
    """(N,) its spread of accuracies."""
    ctx: np.ndarray
    """(N, CONTEXT_DIM) the context rows (history features included)."""


class TAPRegressor(BaseEstimator):
    """Train-less accuracy predictor (stacked LSTM ensemble) in scikit-learn's style.

    Parameters
    ----------
    hidden_size : LSTM width of each member.
    embed_size : width of the shared linear embedding of each encoded step.
    epochs, lr, batch_size, weight_decay : optimisation (Adam, cosine-decayed lr).
        ``epochs=None`` picks the number of epochs that gives about ``updates``
        gradient steps (between 8 and 150 epochs): small training sets need many
        epochs, large ones few, and training time stays bounded.
    updates : the gradient steps ``epochs=None`` aims at. They set the training time:
        each step runs the LSTM over the batch's longest network.
    length_buckets : when the training rows mix short networks (at most
        ``max_steps // 2`` encoded steps) with long ones, batch each kind among itself, so
        a batch of short networks does not pay for the longest one in the data; the
        ranking term loses only pairs of a short and a long network of one dataset.
    n_members : ensemble size K (mean and spread).
    coverage : nominal coverage of the split-conformal interval.
    calibration_fraction : share of the training rows held out for calibration.
    rank_weight : weight of the pairwise ranking term next to the squared error.
    target, use_history, history_similarity, level_model : fixed at ``"relative"``,
        ``True``, ``True`` and ``"descriptor"`` (see the module doc): the LSTM learns each
        network's standing *within* its dataset (z-score) beside the candidate family's
        ranks on other datasets (:mod:`predictor.history`), and the dataset's level is
        :func:`level_by_descriptor`, the DCN fit (:func:`level_at`) with fewer than
        ``LEVEL_MIN_DATASETS`` datasets of known geometry.
    history_dropout : share of training rows whose history is hidden. Half: the blend
        below carries the history for families the LDE holds, so the LSTM's own job is
        mostly the families it does not (scenario N in BENCHMARKS.md).
    history_weight : the weight of the *history consensus* in a
        network's predicted standing within the target dataset, for networks whose
        family another dataset holds: the standing is
        ``(1 - w) x LSTM + w x slope x consensus``, the consensus being the family's mean
        percentile on the other datasets read as a z-score (:func:`consensus_map`)
        and ``slope`` fitted on the training rows, each read against the other datasets
        only, so it measures how far ranks transfer. The LSTM alone learns that trust from
        in-dataset rows and leans on the architecture more than an unseen dataset
        rewards; the default 0.8 is the ablation's choice (BENCHMARKS.md). Families no
        other dataset holds get the LSTM alone.
    tree_weight : the share of gradient-boosted trees (:mod:`predictor.trees`, on a
        summary of the same step encoding and the dataset features, trained on the same
        targets) in each member's output, the LSTM keeping the rest. The two err
        differently on families the LDE does not hold; 0 is the LSTM alone, and the
        default 0.5 is the ablation's choice (BENCHMARKS.md).
    stack : choose the trees' share per query instead of fixing it at ``tree_weight``
        (:mod:`predictor.stacking`): each member skips one fold of the training datasets
        and scores it as unseen, a tree model per fold does the same, and a query takes
        the share that ranked best on the training datasets nearest its DCN.
        ``tree_weight`` stays the choice with fewer than two training datasets, and
        unless another share gains ``stacking.MIN_GAIN``.
    max_steps : encoding length cap (see :mod:`predictor.encoding`).
    seed : everything random derives from it; same seed, same data -> same model.
    device : ``auto|cpu|cuda``; None (default) follows the settings (``TAPAS_DEVICE``,
        itself ``auto``: CUDA when present). Where a model runs never changes what it is.
    """

    def __init__(self, hidden_size: int = 32, embed_size: int = 24, epochs: int | None = None,
                 updates: int = AUTO_UPDATES, length_buckets: bool = True, lr: float = 3e-3,
                 batch_size: int = 128, weight_decay: float = 1e-5, n_members: int = 4,
                 coverage: float = 0.9, calibration_fraction: float = 0.15,
                 rank_weight: float = 0.5, target: str = "relative", use_history: bool = True,
                 history_dropout: float = 0.5, history_weight: float = 0.8,
                 history_similarity: bool = True, level_model: str = "descriptor",
                 tree_weight: float = 0.5, stack: bool = True,
                 max_steps: int = MAX_STEPS, seed: int = 0,
                 device: str | None = None) -> None:
        self.hidden_size = hidden_size
        self.embed_size = embed_size
        self.epochs = epochs
        self.updates = updates
        self.length_buckets = length_buckets
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.n_members = n_members
        self.coverage = coverage
        self.calibration_fraction = calibration_fraction
        self.rank_weight = rank_weight
        self.target = target
        self.use_history = use_history
        self.history_dropout = history_dropout
        self.history_weight = history_weight
        self.history_similarity = history_similarity
        self.level_model = level_model
        self.tree_weight = tree_weight
        self.stack = stack
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
        if not (isinstance(self.updates, int) and self.updates >= 1):
            raise ValueError(f"updates must be a positive int, got {self.updates!r}")
        if not isinstance(self.length_buckets, bool):
            raise ValueError(f"length_buckets must be True or False, got {self.length_buckets!r}")
        if not (isinstance(self.n_members, int) and 1 <= self.n_members <= 64):
            raise ValueError(f"n_members must be an int in [1, 64], got {self.n_members!r}")
        if not 0.0 < self.coverage < 1.0:
            raise ValueError(f"coverage must lie in (0, 1), got {self.coverage!r}")
        if not 0.0 < self.calibration_fraction < 0.9:
            raise ValueError("calibration_fraction must lie in (0, 0.9), got "
                             f"{self.calibration_fraction!r}")
        for name, only in FIXED_PARAMS.items():
            if getattr(self, name) != only:
                raise ValueError(f"{name} can only be {only!r} (the alternative was an "
                                 f"ablation, removed), got {getattr(self, name)!r}")
        if not 0.0 <= self.history_dropout < 1.0:
            raise ValueError(f"history_dropout must lie in [0, 1), got {self.history_dropout!r}")
        if not 0.0 <= self.history_weight <= 1.0:
            raise ValueError(f"history_weight must lie in [0, 1], got {self.history_weight!r}")
        if not 0.0 <= self.tree_weight <= 1.0:
            raise ValueError(f"tree_weight must lie in [0, 1], got {self.tree_weight!r}")
        if not isinstance(self.stack, bool):
            raise ValueError(f"stack must be True or False, got {self.stack!r}")
        if not (self.lr > 0 and self.batch_size >= 1 and self.weight_decay >= 0
                and self.rank_weight >= 0 and 1 <= self.max_steps <= 256):
            raise ValueError("lr, batch_size, weight_decay, rank_weight or max_steps is out "
                             "of range")

    def _device(self) -> Any:
        return resolve_device(self.device or get_settings().device)

    def _context(self, archs: Sequence[Architecture], dcn: np.ndarray, geom: np.ndarray,
                 history: HistoryTable | None, exclude: np.ndarray | None = None
                 ) -> np.ndarray:
        """Context rows for ``archs`` on datasets of DCN ``dcn`` and geometry ``geom``
        (:func:`geometry_of`)."""
        ctx = np.zeros((len(archs), CONTEXT_DIM))
        ctx[:, :N_DATASET_FEATURES] = dataset_features(archs, dcn)
        if history is not None:
            ctx[:, N_DATASET_FEATURES:] = history.features(
                history.rows(archs), dcn, exclude, None if self.kernel_.plain else geom,
                self.kernel_)
        return ctx

    def _net_encoded(self, x: np.ndarray, lengths: np.ndarray, ncls: np.ndarray,
                     ctx: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Every member's LSTM output (K, N) on the accuracy-field scale."""
        dev = self.device_
        # outside the DCN range seen in training the LSTM would extrapolate blindly;
        # evaluate it at the nearest seen DCN (the level follows the unclipped DCN)
        lo, hi = self.dcn_range_
        ctx = ctx.copy()
        ctx[:, 0] = np.clip(ctx[:, 0], lo, hi)
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
                    torch.from_numpy(ctx[s:s + chunk].astype(np.float32)).to(dev)).cpu())
        return torch.cat(outs, 1).numpy().astype(np.float64)

    def _grid(self) -> list[float]:
        """The candidate tree shares, ``tree_weight`` first."""
        return stacking.shares(self.tree_weight)

    def shares(self, dcn: float | ArrayLike, exclude_group: str | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """The trees' and the history consensus's shares for queries at ``dcn``: the
        stacking's tree share (:mod:`predictor.stacking`; else ``tree_weight``) and
        ``history_weight``. ``exclude_group`` leaves that training dataset's scores out."""
        d = np.atleast_1d(np.asarray(dcn, np.float64))
        wh = np.full(len(d), float(self.history_weight))
        if self.stack_scores_ is None:
            return np.full(len(d), float(self.tree_weight)), wh
        names = self.stack_groups_
        excl = names.index(exclude_group) if exclude_group in names else None
        return stacking.choose(self.stack_scores_, self.stack_dcn_, d, self._grid(), excl), wh

    def _parts(self, x: np.ndarray, lengths: np.ndarray, ncls: np.ndarray, ctx: np.ndarray,
               geom: np.ndarray, chunk: int = 8192, levels: np.ndarray | None = None,
               level_table: np.ndarray | None = None) -> _Parts:
        """What the predictions of networks on datasets of geometry ``geom``
        (:func:`geometry_of`) are mixed from; ``levels`` and ``level_table`` override the
        dataset levels the relative output is read against (``levels_``, ``level_table_``)."""
        dcn = ctx[:, 0]
        trees = (None if self.trees_ is None else
                 self.trees_.predict(tree_features(x, lengths, ctx[:, :N_DATASET_FEATURES])))
        table = self.level_table_ if level_table is None else level_table
        by_desc = (None if table is None
                   else level_by_descriptor(table, np.column_stack([dcn, geom])))
        mu, sd = by_desc or level_at(self.levels_ if levels is None else levels, dcn)
        return _Parts(self._net_encoded(x, lengths, ncls, ctx, chunk), trees, mu, sd, ctx)

    def _mix(self, p: _Parts, wt: np.ndarray, wh: np.ndarray) -> np.ndarray:
        """Every member's predicted accuracy (K, N): the trees at share ``wt`` beside the
        LSTM, the history consensus at share ``wh`` for families another dataset holds."""
        m = p.lstm if p.trees is None else (1.0 - wt) * p.lstm + wt * p.trees[None, :]
        z = (m - 0.5) / REL_SCALE
        if self.consensus_slope_ and (wh > 0).any():
            held, zc = consensus_z(p.ctx, self.consensus_map_)
            w = wh * held
            z = (1.0 - w) * z + w * self.consensus_slope_ * zc
        return np.clip(p.mu[None, :] + p.sd[None, :] * z, 0.0, 1.0)

    def _members_encoded(self, x: np.ndarray, lengths: np.ndarray, ncls: np.ndarray,
                         ctx: np.ndarray, geom: np.ndarray, chunk: int = 8192,
                         levels: np.ndarray | None = None,
                         level_table: np.ndarray | None = None,
                         exclude_group: str | None = None) -> np.ndarray:
        """Every member's predicted accuracy (K, N) at the shares :meth:`shares` chooses
        (``exclude_group`` passed on); the rest as :meth:`_parts`."""
        p = self._parts(x, lengths, ncls, ctx, geom, chunk, levels, level_table)
        return self._mix(p, *self.shares(ctx[:, 0], exclude_group))

    def _inputs(self, archs: Sequence[Architecture], dcn: float | ArrayLike,
                history: HistoryTable | None) -> tuple[np.ndarray, ...] | None:
        """``(x, lengths, ncls, ctx, geom)`` of ``archs`` on datasets of DCN ``dcn``
        (None for no networks)."""
        check_is_fitted(self, "net_")
        a = check_archs(archs)
        if not a:
            return None
        d = check_vector(dcn, len(a), "dcn")
        geom = geometry_of(a)
        ctx = self._context(a, d, geom, history if history is not None else self.history_)
        return (*encode_batch(a, self.max_steps), ctx, geom)

    # --------------------------------------------------------------------- API
    def fit(self, archs: Sequence[Architecture], dcns: float | ArrayLike,
            accuracies: ArrayLike, curves: Sequence[Sequence[float] | None] | None = None,
            groups: Sequence[Any] | None = None, history: HistoryTable | None = None,
            progress: Callable[[int, int], None] | None = None,
            checkpoint: Callable[[str], None] | None = None) -> TAPRegressor:
        """Train the ensemble on ``(architecture, dataset DCN) -> final accuracy`` rows.

        ``groups`` names each row's dataset (default: rows of equal DCN share one);
        ``history`` is what the LDE knows beyond these rows (default: the rows
        themselves). A row's own dataset never enters its own history features.
        ``progress(epoch, epochs)`` is called before the first epoch and after each one
        (a fit parameter, not a hyper-parameter: it does not change the model);
        ``checkpoint(phase)`` between the phases before the first epoch (a caller stops
        the fit by raising there).
        """
        def check(phase: str) -> None:
            if checkpoint is not None:
                checkpoint(phase)

        self._check_params()
        archs_l, d, y = check_fit_inputs(archs, dcns, accuracies)
        g = check_groups(groups, d)
        n_curves = 0
        if curves is not None:
            if len(curves) != len(archs_l):
                raise ValueError(f"curves has {len(curves)} entries for {len(archs_l)} networks")
            for i, c in enumerate(curves):
                if c is not None:
                    check_vector(c, len(c), f"curves[{i}]")
                    n_curves += 1
        if history is None:
            history = HistoryTable.of(archs_l, g, d, y)
        exclude = np.array([history.group_index(x) for x in g.tolist()], dtype=np.int64)
        check("fitting the history kernels")
        self.kernel_ = fit_kernels(history, seed=self.seed)
        check("measuring the networks")
        geom = geometry_of(archs_l)
        check("history features")
        ctx = self._context(archs_l, d, geom, history, exclude)
        check("encoding the networks")
        x_all, len_all, ncls_all = encode_batch(archs_l, self.max_steps)
        check("training")
        self.level_table_ = history_levels(history) if history.acc is not None else None
        self._fit_encoded(x_all, len_all, ncls_all, ctx, geom, y, g,
                          history.groups, progress)
        self.n_curves_ = n_curves
        self.history_ = history
        self.domain_ = Domain.of(archs_l, d)
        return self

    def _fit_encoded(self, x_all: np.ndarray, len_all: np.ndarray, ncls_all: np.ndarray,
                     ctx_all: np.ndarray, geom_all: np.ndarray, y: np.ndarray,
                     groups: np.ndarray, level_groups: Sequence[str],
                     progress: Callable[[int, int], None] | None = None) -> None:
        """Training on already encoded, padded step sequences (see ``encode_batch``);
        ``level_groups`` names the rows of ``level_table_``."""
        t0 = time.perf_counter()
        rng = np.random.default_rng(self.seed)
        n = len(y)
        n_cal = (int(round(self.calibration_fraction * n))
                 if n >= MIN_ROWS_FOR_CALIBRATION else 0)
        perm = rng.permutation(n)
        cal, tr = perm[:n_cal], perm[n_cal:]
        d = ctx_all[:, 0]

        mask = np.arange(x_all.shape[1])[None, :] < len_all[:, None]
        steps = x_all[tr][mask[tr]]
        self.x_mean_ = steps.mean(0).astype(np.float32)
        self.x_std_ = (steps.std(0) + 1e-3).astype(np.float32)
        self.device_ = self._device()
        dev = self.device_
        torch.manual_seed(self.seed)
        k, h = self.n_members, self.hidden_size
        net = build_net(k, STEP_DIM, CONTEXT_DIM, h, self.embed_size, self.seed).to(dev)

        xt = torch.from_numpy(((x_all - self.x_mean_) / self.x_std_).astype(np.float32)).to(dev)
        lt = torch.from_numpy(len_all).to(dev)
        a0 = torch.from_numpy((1.0 / ncls_all).astype(np.float32)).to(dev)
        ct = torch.from_numpy(ctx_all.astype(np.float32)).to(dev)
        _, gcode = np.unique(groups.astype(str), return_inverse=True)
        gt = torch.from_numpy(gcode.astype(np.int64)).to(dev)
        self.levels_ = dataset_levels(d[tr], y[tr], groups[tr])
        lv = {g: row for g, row in zip(dict.fromkeys(groups[tr].tolist()), self.levels_,
                                       strict=True)}
        mu = np.array([lv[g][1] if g in lv else y.mean() for g in groups.tolist()])
        sd = np.array([lv[g][2] if g in lv else y.std() + MIN_LEVEL_STD
                       for g in groups.tolist()])
        field = np.clip(0.5 + REL_SCALE * (y - mu) / sd, REL_CLIP, 1 - REL_CLIP)
        yt = torch.from_numpy(field.astype(np.float32)).to(dev)
        # bootstrap weights per member (Poisson(1)): diversity for the ensemble spread
        boot_w = rng.poisson(1.0, size=(k, n)).astype(np.float32)
        folds = (stacking.dataset_folds(list(dict.fromkeys(groups[tr].tolist())), k, self.seed)
                 if self.stack and k >= 2 else {})
        for g, f in folds.items():  # member f scores fold f's datasets as unseen
            boot_w[f, groups == g] = 0.0
        boot = torch.from_numpy(boot_w).to(dev)
        y_scale = float(max(np.std(field[tr]), MIN_TARGET_SCALE))
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        bs = min(self.batch_size, len(tr))
        # a batch costs its longest network's steps: short networks batch among themselves
        # when long ones are present (``length_buckets``)
        long_tr = torch.from_numpy(len_all[tr] > self.max_steps // 2)
        n_long = int(long_tr.sum())
        split = self.length_buckets and 0 < n_long < len(tr)
        n_batches = (math.ceil(n_long / bs) + math.ceil((len(tr) - n_long) / bs) if split
                     else max(1, math.ceil(len(tr) / bs)))
        epochs = self.epochs or int(min(MAX_EPOCHS,
                                        max(MIN_EPOCHS, math.ceil(self.updates / n_batches))))
        self.epochs_ = epochs
        total = epochs * n_batches
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        gen = torch.Generator().manual_seed(self.seed)
        tr_t = torch.from_numpy(tr)
        drop_hist = self.history_dropout > 0
        self.loss_curve_: list[float] = []
        net.train()
        if progress is not None:
            progress(0, epochs)
        for epoch in range(epochs):
            perm = torch.randperm(len(tr), generator=gen)
            if split:
                parts = (perm[~long_tr[perm]], perm[long_tr[perm]])
                chunks = [p[i:i + bs] for p in parts for i in range(0, len(p), bs)]
                batches = [chunks[j] for j in torch.randperm(len(chunks), generator=gen)]
            else:
                batches = [perm[b * bs:(b + 1) * bs] for b in range(n_batches)]
            ep = 0.0
            for batch in batches:
                idx = tr_t[batch].to(dev)
                t_b = int(lt[idx].max())
                cb = ct[idx]
                if drop_hist:
                    keep = (torch.rand(len(idx), 1, generator=gen) >= self.history_dropout)
                    cb = torch.cat([cb[:, :N_DATASET_FEATURES],
                                    cb[:, N_DATASET_FEATURES:] * keep.to(dev)], 1)
                pred = net(xt[idx, :t_b], lt[idx], a0[idx], cb)  # (K, B)
                w = boot[:, idx]
                yb = yt[idx]
                err = ((pred - yb[None]) / y_scale) ** 2
                loss = (w * err).sum() / w.sum().clamp_min(1.0)
                if self.rank_weight > 0 and len(idx) > 1:
                    dy = yb[:, None] - yb[None, :]
                    gb = gt[idx]
                    same = (gb[:, None] == gb[None, :]) & (dy.abs() > RANK_MIN_GAP)
                    if bool(same.any()):
                        dp = (pred[:, :, None] - pred[:, None, :]) / (RANK_TEMPERATURE * y_scale)
                        pl = torch.nn.functional.softplus(-torch.sign(dy)[None] * dp)
                        pw = (w[:, :, None] * w[:, None, :]) * same[None]
                        loss = loss + self.rank_weight * (pl * pw).sum() / pw.sum().clamp_min(1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP_NORM)
                opt.step()
                sched.step()
                ep += float(loss.detach())
            self.loss_curve_.append(ep / n_batches)
            if progress is not None:
                progress(epoch + 1, epochs)
        net.eval()
        self.net_ = net
        self.trees_ = (BoostedTrees.fit(tree_features(x_all[tr], len_all[tr],
                                                      ctx_all[tr, :N_DATASET_FEATURES]),
                                        field[tr], self.seed)
                       if self.tree_weight > 0 or folds else None)
        self.n_features_ = STEP_DIM
        self.encoding_version_ = ENCODING_VERSION
        self.n_train_ = int(len(tr))
        self.n_calibration_ = int(n_cal)
        self.dcn_range_ = (float(d.min()), float(d.max()))
        self.consensus_map_ = consensus_map(field[tr])
        self.consensus_slope_ = consensus_slope(ctx_all[tr], field[tr], self.consensus_map_)
        self._fit_stack(x_all, len_all, ncls_all, ctx_all, y, field, groups, tr, folds)
        if n_cal:
            m = self._calibration_members(x_all[cal], len_all[cal], ncls_all[cal],
                                          ctx_all[cal], geom_all[cal], groups[cal], groups[tr],
                                          level_groups)
            self.q_, self.s0_ = calibrate(y[cal], m.mean(0), m.std(0), self.coverage)
        else:
            self.q_, self.s0_ = math.inf, 1e-4
        self.fit_seconds_ = time.perf_counter() - t0

    def _fit_stack(self, x: np.ndarray, lengths: np.ndarray, ncls: np.ndarray,
                   ctx: np.ndarray, y: np.ndarray, field: np.ndarray, groups: np.ndarray,
                   tr: np.ndarray, folds: dict[str, int]) -> None:
        """Score the candidate tree shares on each training dataset as unseen: member
        ``f``'s LSTM and trees fitted without fold ``f`` on fold ``f``'s datasets
        (``stack_scores_ [datasets, shares]``; None without folds)."""
        self.stack_groups_: list[str] = []
        self.stack_dcn_ = self.stack_scores_ = None
        if not folds:
            return
        rng = np.random.default_rng([self.seed, 40])
        # the tree share decides families no dataset holds: the LSTM as it scores them,
        # its history inputs hidden
        unheld = ctx.copy()
        unheld[:, N_DATASET_FEATURES:] = 0.0
        shares = self._grid()
        dcns, scores = [], []
        for f in sorted(set(folds.values())):
            names = [g for g, k in folds.items() if k == f]
            fit_rows = tr[~np.isin(groups[tr], names)]
            if len(fit_rows) < 2:
                continue
            trees = BoostedTrees.fit(tree_features(x[fit_rows], lengths[fit_rows],
                                                   ctx[fit_rows, :N_DATASET_FEATURES]),
                                     field[fit_rows], self.seed)
            for g in names:
                rows = np.flatnonzero(groups == g)
                if len(rows) > stacking.MAX_ROWS_PER_DATASET:
                    rows = np.sort(rng.choice(rows, stacking.MAX_ROWS_PER_DATASET,
                                              replace=False))
                lstm = self._net_encoded(x[rows], lengths[rows], ncls[rows], unheld[rows])[f]
                t = trees.predict(tree_features(x[rows], lengths[rows],
                                                ctx[rows, :N_DATASET_FEATURES]))
                self.stack_groups_.append(g)
                dcns.append(float(ctx[rows[0], 0]))
                scores.append(stacking.part_scores(shares, y[rows], lstm, t))
        if scores:
            self.stack_dcn_ = np.asarray(dcns, np.float64)
            self.stack_scores_ = np.asarray(scores, np.float64)

    def _calibration_members(self, x: np.ndarray, lengths: np.ndarray, ncls: np.ndarray,
                             ctx: np.ndarray, geom: np.ndarray, groups: np.ndarray,
                             train_groups: np.ndarray, level_groups: Sequence[str]
                             ) -> np.ndarray:
        """Calibration predictions as for a dataset the predictor never saw.

        Users query datasets that are not in the training set, whose accuracy level the
        predictor must guess from the DCN. With at least two
        training datasets, each calibration row is therefore read against the levels
        fitted *without its own dataset* (leave-one-dataset-out), so the conformal
        quantile includes the level error an unseen dataset brings.
        """
        names = list(dict.fromkeys(train_groups.tolist()))
        if len(names) < 2:
            return self._members_encoded(x, lengths, ncls, ctx, geom)
        out = np.empty((self.n_members, len(x)))
        for g in dict.fromkeys(groups.tolist()):
            rows = np.flatnonzero(groups == g)
            keep = [i for i, n in enumerate(names) if n != g]
            table = (None if self.level_table_ is None else self.level_table_[
                [i for i, n in enumerate(level_groups) if n != g]])
            out[:, rows] = self._members_encoded(x[rows], lengths[rows], ncls[rows],
                                                 ctx[rows], geom[rows],
                                                 levels=self.levels_[keep], level_table=table,
                                                 exclude_group=g)
        return out

    def predict_members(self, archs: Sequence[Architecture], dcn: float | ArrayLike,
                        history: HistoryTable | None = None) -> np.ndarray:
        """Each member's predicted accuracy, shape (K, N).

        ``history`` replaces the table saved at training time (e.g. a fresher one from
        the LDE); it must not hold the target dataset's own results for these networks.
        """
        inputs = self._inputs(archs, dcn, history)
        if inputs is None:
            return np.zeros((self.n_members, 0))
        return self._members_encoded(*inputs)

    def predict_parts(self, archs: Sequence[Architecture], dcn: float | ArrayLike,
                      history: HistoryTable | None = None) -> dict[str, np.ndarray]:
        """The prediction of each part alone and of fixed mixes, beside the model's own:
        ``lstm``, ``trees`` (with trees), ``fixed`` (``tree_weight`` and
        ``history_weight``) and ``stack`` (what :meth:`predict` gives). The network, the
        trees and the levels run once; only the mix differs."""
        inputs = self._inputs(archs, dcn, history)
        names = ["lstm", "fixed", "stack"] + (["trees"] if self.trees_ is not None else [])
        if inputs is None:
            return {k: np.zeros(0) for k in names}
        p = self._parts(*inputs)
        n = p.lstm.shape[1]
        mixes = {"lstm": (0.0, 0.0), "fixed": (self.tree_weight, self.history_weight),
                 "trees": (1.0, 0.0)}
        out = {}
        for k in names:
            wt, wh = (self.shares(p.ctx[:, 0]) if k == "stack"
                      else (np.full(n, mixes[k][0]), np.full(n, mixes[k][1])))
            out[k] = self._mix(p, wt, wh).mean(0)
        return out

    def predict(self, archs: Sequence[Architecture], dcn: float | ArrayLike,
                history: HistoryTable | None = None) -> np.ndarray:
        """Predicted final accuracy in [0, 1] for each network on a dataset of DCN ``dcn``."""
        return self.predict_members(archs, dcn, history).mean(0)

    def predict_interval(self, archs: Sequence[Architecture], dcn: float | ArrayLike,
                         history: HistoryTable | None = None) -> EnsembleOutput:
        """Mean, ensemble spread and the split-conformal interval at ``coverage``, with
        ``in_domain`` per network; intervals widen outside the training domain."""
        a = check_archs(archs)
        m = self.predict_members(a, dcn, history)
        domain = getattr(self, "domain_", None)
        if domain is None:  # a model saved before domains were recorded: no claim either way
            inside, why = np.ones(len(a), dtype=bool), [()] * len(a)
        else:
            inside, why = domain.check(a, check_vector(dcn, len(a), "dcn"))
        widen = np.where(inside, 1.0, OUT_OF_DOMAIN_WIDENING)
        p = interval(m.mean(0), m.std(0), self.q_, self.s0_, self.coverage, widen,
                     members=m)
        return replace(p, in_domain=inside, reasons=tuple(why))

    # ------------------------------------------------------------- persistence
    def save(self, path: Any, provenance: dict[str, Any] | None = None) -> None:
        """Write the fitted model (no pickle); see :mod:`predictor.persist`."""
        check_is_fitted(self, "net_")
        arrays = {f"net.{k}": v.detach().cpu().numpy().astype(np.float32)
                  for k, v in self.net_.state_dict().items()}
        arrays["x_mean"] = np.asarray(self.x_mean_, np.float32)
        arrays["x_std"] = np.asarray(self.x_std_, np.float32)
        arrays["levels"] = np.asarray(self.levels_, np.float64)
        if self.level_table_ is not None:
            arrays["level_table"] = np.asarray(self.level_table_, np.float64)
        for k, v in self.history_.to_arrays().items():
            arrays[f"history.{k}"] = np.asarray(v, np.float64)
        if self.trees_ is not None:
            arrays.update({f"trees.{k}": v for k, v in self.trees_.to_arrays().items()})
        if self.stack_scores_ is not None:
            arrays["stack.dcn"] = np.asarray(self.stack_dcn_, np.float64)
            arrays["stack.scores"] = np.asarray(self.stack_scores_, np.float64)
        state = {"q": None if not math.isfinite(self.q_) else self.q_, "s0": self.s0_,
                 "n_train": self.n_train_, "n_calibration": self.n_calibration_,
                 "n_curves": self.n_curves_, "dcn_range": list(self.dcn_range_),
                 "consensus_slope": self.consensus_slope_,
                 "consensus_map": self.consensus_map_.tolist(),
                 "kernel": self.kernel_.to_dict(), "fit_seconds": self.fit_seconds_,
                 "domain": (None if getattr(self, "domain_", None) is None
                            else self.domain_.to_dict()),
                 "history_families": self.history_.families,
                 "stack_groups": list(self.stack_groups_),
                 "history_groups": self.history_.groups}
        persist.write(path, params=self.get_params(), state=state, arrays=arrays,
                      provenance=provenance)

    @classmethod
    def load(cls, path: Any, device: str | None = None) -> TAPRegressor:
        """A model written by :meth:`save` (verified; never unpickled). It runs on
        ``device`` (default: the settings' policy), not where it was trained: a model
        trained on a GPU loads on a machine without one.

        Every array the file holds must be one this model's hyper-parameters imply, with
        its exact shape, and the weights finite: checked before any torch module is
        built, so a file cannot make loading allocate more than it holds."""
        header, arrays = persist.read(path)
        params = {**header["params"], "device": device}
        try:
            model = cls(**params)
            model._check_params()
            _check_arrays(model, arrays)
            st = header["state"]
            model.x_mean_ = arrays["x_mean"]
            model.x_std_ = arrays["x_std"]
            model.levels_ = arrays["levels"].astype(np.float64)
            model.level_table_ = arrays.get("level_table")
            model.q_ = math.inf if st["q"] is None else float(st["q"])
            model.s0_ = float(st["s0"])
            model.n_train_ = int(st["n_train"])
            model.n_calibration_ = int(st["n_calibration"])
            model.n_curves_ = int(st["n_curves"])
            model.dcn_range_ = tuple(float(v) for v in st["dcn_range"])
            if len(model.dcn_range_) != 2:
                raise ValueError(f"dcn_range has {len(model.dcn_range_)} entries, not 2")
            model.consensus_slope_ = float(st["consensus_slope"])
            model.consensus_map_ = np.asarray(st["consensus_map"], np.float64)
            model.kernel_ = KernelSet.from_dict(st["kernel"])
            model.fit_seconds_ = float(st["fit_seconds"])
            # files written before domains were recorded have none: treated as in domain
            model.domain_ = (None if st.get("domain") is None
                             else Domain.from_dict(st["domain"]))
            model.history_ = HistoryTable.from_arrays(
                st["history_families"], st["history_groups"], arrays["history.group_dcn"],
                arrays["history.pct"], arrays["history.z"], arrays["history.group_geom"])
            if (model.level_table_ is not None
                    and len(model.level_table_) != len(model.history_.groups)):
                raise ValueError(f"level_table has {len(model.level_table_)} rows for "
                                 f"{len(model.history_.groups)} history datasets")
            model.trees_ = (BoostedTrees.from_arrays({k[6:]: v for k, v in arrays.items()
                                                      if k.startswith("trees.")})
                            if "trees.value" in arrays else None)
            model.stack_groups_ = [str(g) for g in st.get("stack_groups", [])]
            model.stack_dcn_ = arrays.get("stack.dcn")
            model.stack_scores_ = arrays.get("stack.scores")
            if model.stack_scores_ is not None and len(model.stack_groups_) != len(
                    model.stack_dcn_):
                raise ValueError(f"stack_groups names {len(model.stack_groups_)} datasets "
                                 f"for {len(model.stack_dcn_)} stacking rows")
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise persist.ModelFileError(f"{path}: incomplete or inconsistent model state "
                                         f"({type(e).__name__}: {str(e)[:300]})") from None
        model.n_features_ = STEP_DIM
        model.encoding_version_ = ENCODING_VERSION
        model.provenance_ = header["provenance"]
        model.device_ = model._device()
        net = build_net(model.n_members, STEP_DIM, CONTEXT_DIM, model.hidden_size,
                        model.embed_size, 0)
        sd = {k[4:]: torch.from_numpy(v.copy()) for k, v in arrays.items()
              if k.startswith("net.")}
        try:
            net.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise persist.ModelFileError(f"{path}: weights do not fit the model they claim: "
                                         f"{str(e).splitlines()[0]}") from None
        net.eval()
        model.net_ = net.to(model.device_)
        return model


#: Arrays beside the network's a model file holds (``trees.*`` only with trees).
_HISTORY_ARRAYS = ("history.group_dcn", "history.group_geom", "history.pct", "history.z")
_TREE_ARRAYS = ("trees.baseline", "trees.feature", "trees.threshold", "trees.value")
_STACK_ARRAYS = ("stack.dcn", "stack.scores")


def _check_arrays(model: TAPRegressor, arrays: dict[str, np.ndarray]) -> None:
    """ValueError unless ``arrays`` are exactly the ones ``model``'s hyper-parameters
    imply: the network's parameters with their shapes (:func:`net_shapes`) and finite, the
    step normalisation, the levels, the history and (with trees) the trees, and nothing
    else. Run before :func:`build_net`, so a file declaring a huge model is refused
    without allocating it."""
    want = {f"net.{k}": v for k, v in net_shapes(
        model.n_members, STEP_DIM, CONTEXT_DIM, model.hidden_size, model.embed_size).items()}
    want.update({"x_mean": (STEP_DIM,), "x_std": (STEP_DIM,)})
    stacked = "stack.scores" in arrays
    required = {*want, "levels", *_HISTORY_ARRAYS,
                *(_TREE_ARRAYS if model.tree_weight > 0 or stacked else ()),
                *(_STACK_ARRAYS if stacked else ())}
    allowed = {*required, "level_table", *_TREE_ARRAYS, *(_STACK_ARRAYS if model.stack else ())}
    missing = sorted(required - set(arrays))
    extra = sorted(set(arrays) - allowed)
    if missing or extra:
        raise ValueError("the arrays do not match the model's hyper-parameters: "
                         + "; ".join(([f"missing {', '.join(missing[:5])}"] if missing else [])
                                     + ([f"unexpected {', '.join(extra[:5])}"] if extra else [])))
    for name, shape in want.items():
        a = arrays[name]
        if a.shape != shape:
            raise ValueError(f"array {name} has shape {list(a.shape)}; hidden_size "
                             f"{model.hidden_size}, embed_size {model.embed_size} and "
                             f"n_members {model.n_members} imply {list(shape)}")
        if a.dtype != np.float32 or not np.isfinite(a).all():
            raise ValueError(f"array {name} must hold finite float32 weights")
    if not (arrays["x_std"] > 0).all():
        raise ValueError("array x_std must be positive")
    lv = arrays["levels"]
    if lv.ndim != 2 or lv.shape[1] != 3 or len(lv) < 1:
        raise ValueError(f"array levels has shape {list(lv.shape)}; [datasets, 3] expected")
    if stacked:
        sd, sc = arrays["stack.dcn"], arrays["stack.scores"]
        n_cols = len(model._grid())
        if (sd.ndim != 1 or sc.shape != (len(sd), n_cols) or not np.isfinite(sd).all()
                or not np.isfinite(sc).all()):
            raise ValueError(f"stacking arrays have shapes {list(sd.shape)} and "
                             f"{list(sc.shape)}; [datasets] and [datasets, {n_cols}] of "
                             "finite scores expected")
    lt = arrays.get("level_table")
    if lt is not None and (lt.ndim != 2 or lt.shape[1] != 2 + N_DESCRIPTOR):
        raise ValueError(f"array level_table has shape {list(lt.shape)}; "
                         f"[datasets, {2 + N_DESCRIPTOR}] expected")


def load(path: Any, device: str | None = None) -> TAPRegressor:
    """A saved predictor (see :meth:`TAPRegressor.load`)."""
    return TAPRegressor.load(path, device)
