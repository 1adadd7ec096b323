"""Few-shot adaptation: correct a zero-shot prediction with k networks trained on the target.

A NAS loop often trains a handful of its candidates anyway. With their accuracies on
the target dataset (the *shots*), :class:`FewShotAdapter` learns a ridge correction of
the predictor's output: a level shift plus a weighted use of the predictor's own score
and of how each network family ranked on every other dataset the LDE holds
(``HistoryTable`` z-scores, 0 where absent). The shots decide which other datasets the
target resembles, which one DCN cannot say. The ridge strength is picked by
leave-one-out error over the shots (closed form) with the one-standard-error rule: the
strongest one whose error is within one standard error of the best (Hastie, Tibshirani
and Friedman, *The Elements of Statistical Learning*, 7.10). An infinite strength (the
shift alone, which leaves the ranking as it was) is always a candidate, so a few noisy
shots, whose errors are too uncertain to tell the strengths apart, change little.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from predictor.history import HistoryTable

#: Ridge strengths tried by leave-one-out (``inf``: shift only).
DEFAULT_ALPHAS: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0, float("inf"))


def family_zscores(history: HistoryTable | None, archs: Sequence, exclude: str | None = None
                   ) -> np.ndarray:
    """``[N, G]`` z-scores of each network's family on each dataset of ``history``
    (0 where the family was not trained there); ``exclude`` drops one dataset."""
    if history is None or not history.groups:
        return np.zeros((len(archs), 0))
    rows = history.rows(archs)
    keep = [j for j, g in enumerate(history.groups) if g != exclude]
    z = history.z[np.where(rows >= 0, rows, 0)][:, keep]
    z[rows < 0] = np.nan
    return np.nan_to_num(z, nan=0.0)


class FewShotAdapter(BaseEstimator):
    """Ridge correction of a base predictor from ``k`` labelled candidates.

    ``fit(base, features, y)`` takes the base predictions, per-network features (e.g.
    :func:`family_zscores`) and the true accuracies of the shots; ``predict(base,
    features)`` corrects any candidates. Features are scaled by their spread over the
    candidates passed to ``fit`` as ``reference`` (all candidates, not only the shots,
    so a few shots cannot blow a feature up).
    """

    def __init__(self, alphas: Sequence[float] = DEFAULT_ALPHAS) -> None:
        self.alphas = alphas

    def _design(self, base: np.ndarray, features: np.ndarray) -> np.ndarray:
        x = np.column_stack([np.asarray(base, np.float64), np.asarray(features, np.float64)])
        return (x - self.center_) / self.scale_

    def fit(self, base: np.ndarray, features: np.ndarray, y: np.ndarray,
            reference: tuple[np.ndarray, np.ndarray] | None = None) -> FewShotAdapter:
        base = np.asarray(base, np.float64)
        y = np.asarray(y, np.float64)
        if len(base) < 1 or len(y) != len(base):
            raise ValueError("few-shot adaptation needs at least one shot, with one "
                             "accuracy per base prediction")
        feats = np.asarray(features, np.float64).reshape(len(base), -1)
        if not (np.all(np.isfinite(base)) and np.all(np.isfinite(y))
                and np.all(np.isfinite(feats))):
            raise ValueError("few-shot shots must be finite numbers")
        rb, rf = reference if reference is not None else (base, feats)
        ref = np.column_stack([np.asarray(rb, np.float64),
                               np.asarray(rf, np.float64).reshape(len(rb), -1)])
        self.center_ = ref.mean(0)
        sd = ref.std(0)
        self.scale_ = np.where(sd > 1e-9, sd, 1.0)
        x = self._design(base, feats)
        r = y - base
        fits = [(a, *_ridge_loo(x, r, a)) for a in sorted(self.alphas, reverse=True)]
        sq = [f[3] ** 2 for f in fits]
        best = int(np.argmin([e.mean() for e in sq]))
        se = float(sq[best].std(ddof=1) / math.sqrt(len(r))) if len(r) > 1 else 0.0
        pick = next(i for i, e in enumerate(sq) if e.mean() <= sq[best].mean() + se + 1e-15)
        self.alpha_, self.coef_, self.intercept_, _ = fits[pick]
        self.loo_mse_ = float(sq[pick].mean())
        return self

    def predict(self, base: np.ndarray, features: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "coef_")
        base = np.asarray(base, np.float64)
        x = self._design(base, np.asarray(features, np.float64).reshape(len(base), -1))
        return base + self.intercept_ + x @ self.coef_


def _ridge_loo(x: np.ndarray, r: np.ndarray, alpha: float
               ) -> tuple[np.ndarray, float, np.ndarray]:
    """Ridge with a free intercept; (coef, intercept, each shot's leave-one-out error)."""
    k, p = x.shape
    if not np.isfinite(alpha) or p == 0 or k < 2:
        loo = r - (r.sum() - r) / (k - 1) if k > 1 else np.full(k, np.inf)
        return np.zeros(p), float(r.mean()), loo
    xm, rm = x.mean(0), r.mean()
    xc, rc = x - xm, r - rm
    inv = np.linalg.inv(xc.T @ xc + alpha * np.eye(p))
    w = inv @ xc.T @ rc
    # hat matrix of the centred fit plus the intercept's 1/k
    h = np.einsum("ij,jk,ik->i", xc, inv, xc) + 1.0 / k
    resid = rc - xc @ w
    return w, float(rm - xm @ w), resid / np.maximum(1.0 - h, 1e-6)
