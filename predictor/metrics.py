"""Ranking and error metrics used by the evaluation and the benchmark."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tapas.core.lazy import LazyImport

stats = LazyImport("scipy.stats")  # over half a second: loaded by the first measure


def kendall(pred: ArrayLike, true: ArrayLike) -> float:
    """Kendall tau-b (ties handled), the ranking measure the targets are stated in."""
    p, t = np.asarray(pred, float), np.asarray(true, float)
    if len(p) < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return 0.0
    return float(stats.kendalltau(p, t).statistic)


def spearman(pred: ArrayLike, true: ArrayLike) -> float:
    p, t = np.asarray(pred, float), np.asarray(true, float)
    if len(p) < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return 0.0
    return float(stats.spearmanr(p, t).statistic)


def mae(pred: ArrayLike, true: ArrayLike) -> float:
    return float(np.mean(np.abs(np.asarray(pred, float) - np.asarray(true, float))))


def top_k_precision(pred: ArrayLike, true: ArrayLike, k: int = 10) -> float:
    """Share of the truly best ``k`` networks among the predicted best ``k``."""
    p, t = np.asarray(pred, float), np.asarray(true, float)
    k = min(k, len(p))
    if k == 0:
        return 0.0
    top_p = set(np.argsort(-p, kind="stable")[:k].tolist())
    top_t = set(np.argsort(-t, kind="stable")[:k].tolist())
    return len(top_p & top_t) / k


def coverage(lower: ArrayLike, upper: ArrayLike, true: ArrayLike) -> float:
    """Share of true values inside ``[lower, upper]``."""
    lo, hi, t = (np.asarray(a, float) for a in (lower, upper, true))
    return float(np.mean((t >= lo) & (t <= hi))) if len(t) else 0.0


def all_metrics(pred: ArrayLike, true: ArrayLike) -> dict[str, float]:
    return {"kendall": kendall(pred, true), "spearman": spearman(pred, true),
            "mae": mae(pred, true), "top10": top_k_precision(pred, true, 10)}
