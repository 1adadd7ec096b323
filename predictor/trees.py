"""Gradient-boosted trees beside the LSTM, kept as plain arrays.

scikit-learn's ``HistGradientBoostingRegressor`` grows the trees; each tree is then
laid out as a *complete* binary tree of depth ``MAX_DEPTH`` (a leaf above that depth
becomes a node that always goes left and repeats the leaf below it), so evaluation is
``MAX_DEPTH`` vectorised steps over every tree at once, and a model file holds three
arrays instead of a pickle. :func:`tree_features` summarises a network from the
LSTM's own step encoding, so trees and LSTM read the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tapas.core.lazy import LazyImport

ensemble = LazyImport("sklearn.ensemble")

#: Depth of every tree (2**MAX_DEPTH leaves at most).
MAX_DEPTH = 6
N_TREES = 200
LEARNING_RATE = 0.1
#: Rows evaluated at once (bounds the [rows, trees] working arrays).
CHUNK = 2048


def tree_features(x: np.ndarray, lengths: np.ndarray, dataset: np.ndarray) -> np.ndarray:
    """``[N, 2 * STEP_DIM + 1 + D]``: the sum of a network's encoded steps, its last step,
    its length, and the dataset features ``dataset [N, D]``."""
    n, t, _ = x.shape
    valid = np.arange(t)[None, :] < lengths[:, None]
    total = np.einsum("nt,ntf->nf", valid.astype(np.float32), x)
    last = x[np.arange(n), np.maximum(lengths, 1) - 1]
    return np.column_stack([total, last, lengths, dataset]).astype(np.float64)


@dataclass
class BoostedTrees:
    """A fitted tree ensemble: ``baseline + sum of each tree's leaf value``."""

    feature: np.ndarray
    """[T, 2**D - 1] feature index of each internal node (breadth-first)."""
    threshold: np.ndarray
    """[T, 2**D - 1] go right when the feature exceeds it."""
    value: np.ndarray
    """[T, 2**D] leaf values (learning rate included)."""
    baseline: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, seed: int = 0) -> BoostedTrees:
        model = ensemble.HistGradientBoostingRegressor(
            max_iter=N_TREES, learning_rate=LEARNING_RATE, max_depth=MAX_DEPTH,
            max_leaf_nodes=2 ** MAX_DEPTH, early_stopping=False, random_state=seed).fit(x, y)
        # scikit-learn's fitted trees (private attributes; tests/predictor/test_trees.py
        # checks that the arrays built from them predict exactly what scikit-learn does)
        trees = [p.nodes for (p,) in model._predictors]
        n_int = 2 ** MAX_DEPTH - 1
        feature = np.zeros((len(trees), n_int), np.int32)
        threshold = np.full((len(trees), n_int), np.inf)
        value = np.zeros((len(trees), 2 ** MAX_DEPTH))
        for t, nodes in enumerate(trees):
            stack = [(0, 0)]  # (sklearn node, breadth-first position)
            while stack:
                i, pos = stack.pop()
                if pos >= n_int:  # a leaf at full depth
                    value[t, pos - n_int] = nodes["value"][i]
                elif nodes["is_leaf"][i]:  # always left, the leaf repeated below
                    stack += [(i, 2 * pos + 1), (i, 2 * pos + 2)]
                else:
                    feature[t, pos] = nodes["feature_idx"][i]
                    threshold[t, pos] = nodes["num_threshold"][i]
                    stack += [(int(nodes["left"][i]), 2 * pos + 1),
                              (int(nodes["right"][i]), 2 * pos + 2)]
        return cls(feature, threshold, value, float(np.ravel(model._baseline_prediction)[0]))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for the rows of ``x`` (finite features, as :func:`tree_features`)."""
        x = np.ascontiguousarray(x, np.float64)
        n_trees, n_int = self.feature.shape
        if x.ndim != 2 or (n_trees and int(self.feature.max()) >= x.shape[1]):
            raise ValueError(f"trees split on feature {int(self.feature.max())}; the input "
                             f"has shape {x.shape}")
        tree = np.arange(n_trees)
        out = np.empty(len(x))
        for s in range(0, len(x), CHUNK):
            xb = x[s:s + CHUNK]
            row = (np.arange(len(xb)) * x.shape[1])[:, None]
            pos = np.zeros((len(xb), n_trees), np.intp)
            for _ in range(MAX_DEPTH):  # flat indices into [T, nodes]: np.take is fastest
                node = tree * n_int + pos
                right = np.take(xb, row + np.take(self.feature, node)) > np.take(
                    self.threshold, node)
                pos = 2 * pos + 1 + right
            out[s:s + CHUNK] = np.take(self.value, tree * (n_int + 1) + pos - n_int).sum(1)
        return out + self.baseline

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"feature": self.feature.astype(np.int64), "threshold": self.threshold,
                "value": self.value, "baseline": np.array([self.baseline])}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> BoostedTrees:
        feature = np.asarray(arrays["feature"], np.int32)
        threshold = np.asarray(arrays["threshold"], np.float64)
        value = np.asarray(arrays["value"], np.float64)
        n = len(feature)
        if (feature.shape != (n, 2 ** MAX_DEPTH - 1) or threshold.shape != feature.shape
                or value.shape != (n, 2 ** MAX_DEPTH) or (n and feature.min() < 0)):
            raise ValueError(f"tree arrays {feature.shape} / {threshold.shape} / {value.shape} "
                             f"do not hold depth-{MAX_DEPTH} trees")
        return cls(feature, threshold, value, float(arrays["baseline"][0]))
