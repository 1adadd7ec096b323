"""Baselines with TAP's fit/predict interface, for honest comparison.

* :class:`ParamsBaseline`, :class:`FlopsBaseline`: rank by size. A least-squares
  map of ``[log size, DCN, log size x DCN]`` turns the ranking into accuracies
  (ranking within one dataset is exactly the ranking by size).
* :class:`GBRBaseline`: scikit-learn's ``HistGradientBoostingRegressor`` on whole-
  network summary features (:func:`predictor.encoding.summary_features`) + DCN.
* :class:`NearestDatasetBaseline`: "copy the nearest dataset's accuracy for the same
  architecture": among the datasets that hold the same network family (everything the
  LDE knows when ``history`` is given, else the training rows), take the one whose DCN
  is nearest to the target's. The family key
  ignores the input size and the classifier's width, so the 16x16/120-class
  ImageNet16-120 network and the CIFAR networks of one NAS-Bench-201 cell match.
  Networks seen on no training dataset get the mean accuracy of the nearest dataset.
* :class:`MeanRankOtherBaseline`: the network's mean percentile over the training
  datasets that hold it (the "mean rank of the other datasets" reference).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from predictor.encoding import summary_features
from predictor.history import HistoryTable, family_key
from predictor.tap import check_archs, check_fit_inputs, check_vector
from tapas.arch import Architecture


class _Base(BaseEstimator):
    def _inputs(self, archs: Sequence[Architecture],
                dcn: float | ArrayLike) -> tuple[list[Architecture], np.ndarray]:
        check_is_fitted(self, "n_train_")
        a = check_archs(archs)
        return a, check_vector(dcn, len(a), "dcn")


class _SizeBaseline(_Base):
    attr = "params"

    def _x(self, archs: list[Architecture], d: np.ndarray) -> np.ndarray:
        s = np.array([math.log10(1.0 + getattr(a, self.attr)) for a in archs])
        return np.column_stack([np.ones_like(s), s, d, s * d])

    def fit(self, archs: Sequence[Architecture], dcns: float | ArrayLike,
            accuracies: ArrayLike, curves: object = None) -> _SizeBaseline:
        a, d, y = check_fit_inputs(archs, dcns, accuracies)
        self.coef_, *_ = np.linalg.lstsq(self._x(a, d), y, rcond=None)
        if self.coef_[1] + self.coef_[3] * float(np.mean(d)) < 0:  # keep "bigger is better"
            self.coef_ = np.array([float(np.mean(y)), 1e-3, 0.0, 0.0])
        self.n_train_ = len(y)
        return self

    def predict(self, archs: Sequence[Architecture], dcn: float | ArrayLike) -> np.ndarray:
        a, d = self._inputs(archs, dcn)
        if not a:
            return np.zeros(0)
        return self._x(a, d) @ self.coef_


class ParamsBaseline(_SizeBaseline):
    """Predicts by parameter count (more parameters, higher accuracy)."""

    attr = "params"


class FlopsBaseline(_SizeBaseline):
    """Predicts by FLOPs (more compute, higher accuracy)."""

    attr = "flops"


class GBRBaseline(_Base):
    """Gradient-boosted trees on whole-network summary features plus the DCN."""

    def __init__(self, max_iter: int = 400, learning_rate: float = 0.05, seed: int = 0) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.seed = seed

    @staticmethod
    def _x(archs: list[Architecture], d: np.ndarray) -> np.ndarray:
        return np.column_stack([np.stack([summary_features(a) for a in archs]), d])

    def fit(self, archs: Sequence[Architecture], dcns: float | ArrayLike,
            accuracies: ArrayLike, curves: object = None) -> GBRBaseline:
        from sklearn.ensemble import HistGradientBoostingRegressor

        a, d, y = check_fit_inputs(archs, dcns, accuracies)
        self.model_ = HistGradientBoostingRegressor(
            max_iter=self.max_iter, learning_rate=self.learning_rate, random_state=self.seed,
            early_stopping=False).fit(self._x(a, d), y)
        self.n_train_ = len(y)
        return self

    def predict(self, archs: Sequence[Architecture], dcn: float | ArrayLike) -> np.ndarray:
        a, d = self._inputs(archs, dcn)
        if not a:
            return np.zeros(0)
        return np.clip(self.model_.predict(self._x(a, d)), 0.0, 1.0)


class NearestDatasetBaseline(_Base):
    """Copies the accuracy the same network reached on the nearest dataset that holds it
    (from ``history`` when given: everything the LDE knows, else the training rows)."""

    def fit(self, archs: Sequence[Architecture], dcns: float | ArrayLike,
            accuracies: ArrayLike, curves: object = None, groups: Sequence[Any] | None = None,
            history: HistoryTable | None = None) -> NearestDatasetBaseline:
        a, d, y = check_fit_inputs(archs, dcns, accuracies)
        self.history_ = history or _history_of(a, d, y, groups)
        self.dataset_means_ = {float(dd): float(np.mean(y[d == dd])) for dd in np.unique(d)}
        self.n_train_ = len(y)
        return self

    def predict(self, archs: Sequence[Architecture], dcn: float | ArrayLike) -> np.ndarray:
        a, d = self._inputs(archs, dcn)
        h = self.history_
        rows = h.rows(a)
        acc = h.acc[np.maximum(rows, 0)] if h.acc is not None else np.full((len(a), 0), np.nan)
        ok = np.isfinite(acc) & (rows >= 0)[:, None]
        dist = np.where(ok, np.abs(h.group_dcn[None, :] - d[:, None]), np.inf)
        means = np.array(sorted(self.dataset_means_))
        out = np.empty(len(a))
        for i in range(len(a)):
            if ok[i].any():
                out[i] = acc[i, int(np.argmin(dist[i]))]
            else:  # never seen: the mean accuracy of the nearest training dataset
                out[i] = self.dataset_means_[float(means[np.argmin(np.abs(means - d[i]))])]
        return out


def _history_of(a: list[Architecture], d: np.ndarray, y: np.ndarray,
                groups: Sequence[Any] | None) -> HistoryTable:
    g = [repr(float(v)) for v in d] if groups is None else [str(x) for x in groups]
    return HistoryTable([family_key(x) for x in a], g, d, y)


class MeanRankOtherBaseline(_Base):
    """Ranks a network by its mean within-dataset percentile over the datasets that hold
    its family (``history`` when given, else the training rows): NAS-Bench-201's "mean
    rank of the other datasets", read as an accuracy through the nearest training
    dataset's accuracy quantiles."""

    def fit(self, archs: Sequence[Architecture], dcns: float | ArrayLike,
            accuracies: ArrayLike, curves: object = None, groups: Sequence[Any] | None = None,
            history: HistoryTable | None = None) -> MeanRankOtherBaseline:
        a, d, y = check_fit_inputs(archs, dcns, accuracies)
        self.history_ = history or _history_of(a, d, y, groups)
        self.levels_ = {float(v): np.sort(y[d == v]) for v in np.unique(d)}
        self.n_train_ = len(y)
        return self

    def predict(self, archs: Sequence[Architecture], dcn: float | ArrayLike) -> np.ndarray:
        a, d = self._inputs(archs, dcn)
        h = self.history_
        rows = h.rows(a)
        pct = h.pct[np.maximum(rows, 0)]
        ok = np.isfinite(pct) & (rows >= 0)[:, None]
        n = ok.sum(1)
        # never-seen families rank in the middle
        mean_pct = np.where(n > 0, np.where(ok, pct, 0.0).sum(1) / np.maximum(n, 1), 0.5)
        out = np.empty(len(a))
        levels = np.array(sorted(self.levels_))
        for i, (p, dd) in enumerate(zip(mean_pct, d, strict=True)):
            ys = self.levels_[float(levels[np.argmin(np.abs(levels - dd))])]
            out[i] = float(np.quantile(ys, p))
        return out


BASELINES: dict[str, type[_Base]] = {
    "params": ParamsBaseline,
    "flops": FlopsBaseline,
    "gbr": GBRBaseline,
    "nearest": NearestDatasetBaseline,
    "mean_rank_other": MeanRankOtherBaseline,
}
