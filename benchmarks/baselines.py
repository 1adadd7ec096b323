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

import abc
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from predictor.encoding import summary_features
from predictor.history import HistoryTable
from predictor.tap import check_archs, check_fit_inputs, check_vector
from tapas.core.arch import Architecture


class _Base(BaseEstimator, abc.ABC):
    def _inputs(self, archs: Sequence[Architecture],
                dcn: float | ArrayLike) -> tuple[list[Architecture], np.ndarray]:
        check_is_fitted(self, "n_train_")
        a = check_archs(archs)
        return a, check_vector(dcn, len(a), "dcn")

    def predict(self, archs: Sequence[Architecture], dcn: float | ArrayLike) -> np.ndarray:
        """Predicted accuracies of ``archs`` on a dataset of ``dcn`` (one, or one each)."""
        a, d = self._inputs(archs, dcn)
        return self._predict(a, d) if a else np.zeros(0)

    @abc.abstractmethod
    def _predict(self, archs: list[Architecture], d: np.ndarray) -> np.ndarray:
        """Predictions for a non-empty, checked batch."""


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

    def _predict(self, archs: list[Architecture], d: np.ndarray) -> np.ndarray:
        return self._x(archs, d) @ self.coef_


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

    def _predict(self, archs: list[Architecture], d: np.ndarray) -> np.ndarray:
        return np.clip(self.model_.predict(self._x(archs, d)), 0.0, 1.0)


class _HistoryBaseline(_Base):
    """Baselines that look a network's family up in the history (see ``history``)."""

    def fit(self, archs: Sequence[Architecture], dcns: float | ArrayLike,
            accuracies: ArrayLike, curves: object = None, groups: Sequence[Any] | None = None,
            history: HistoryTable | None = None) -> _HistoryBaseline:
        a, d, y = check_fit_inputs(archs, dcns, accuracies)
        if history is None:
            g = [repr(float(v)) for v in d] if groups is None else [str(x) for x in groups]
            history = HistoryTable.of(a, g, d, y)
        self.history_ = history
        self.levels_ = {float(v): np.sort(y[d == v]) for v in np.unique(d)}
        self.n_train_ = len(y)
        return self

    def _lookup(self, archs: list[Architecture], table: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
        """``(values [N, G], known [N, G])`` of ``table`` (a history matrix) per network."""
        rows = self.history_.rows(archs)
        if table is None:
            return np.full((len(archs), 0), np.nan), np.zeros((len(archs), 0), dtype=bool)
        vals = table[np.maximum(rows, 0)]
        return vals, np.isfinite(vals) & (rows >= 0)[:, None]

    def _nearest_level(self, dcn: float) -> np.ndarray:
        """Sorted accuracies of the training dataset nearest to ``dcn``."""
        levels = np.array(sorted(self.levels_))
        return self.levels_[float(levels[np.argmin(np.abs(levels - dcn))])]


class NearestDatasetBaseline(_HistoryBaseline):
    """Copies the accuracy the same network reached on the nearest dataset that holds it
    (from ``history`` when given: everything the LDE knows, else the training rows)."""

    def _predict(self, a: list[Architecture], d: np.ndarray) -> np.ndarray:
        acc, ok = self._lookup(a, self.history_.acc)
        dist = np.where(ok, np.abs(self.history_.group_dcn[None, :] - d[:, None]), np.inf)
        out = np.empty(len(a))
        for i in range(len(a)):
            if ok[i].any():
                out[i] = acc[i, int(np.argmin(dist[i]))]
            else:  # never seen: the mean accuracy of the nearest training dataset
                out[i] = float(self._nearest_level(d[i]).mean())
        return out


class MeanRankOtherBaseline(_HistoryBaseline):
    """Ranks a network by its mean within-dataset percentile over the datasets that hold
    its family (``history`` when given, else the training rows): NAS-Bench-201's "mean
    rank of the other datasets", read as an accuracy through the nearest training
    dataset's accuracy quantiles."""

    def _predict(self, a: list[Architecture], d: np.ndarray) -> np.ndarray:
        pct, ok = self._lookup(a, self.history_.pct)
        n = ok.sum(1)
        # never-seen families rank in the middle
        mean_pct = np.where(n > 0, np.where(ok, pct, 0.0).sum(1) / np.maximum(n, 1), 0.5)
        return np.array([float(np.quantile(self._nearest_level(dd), p))
                         for p, dd in zip(mean_pct, d, strict=True)])


BASELINES: dict[str, type[_Base]] = {
    "params": ParamsBaseline,
    "flops": FlopsBaseline,
    "gbr": GBRBaseline,
    "nearest": NearestDatasetBaseline,
    "mean_rank_other": MeanRankOtherBaseline,
}
