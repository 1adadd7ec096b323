"""Stacking: the LSTM's and the trees' shares, chosen by leave-one-dataset-out scores.

TAP's standing of a network within its dataset mixes three parts: the LSTM, the
gradient-boosted trees (share ``w_tree``) and, for families another dataset holds, the
history consensus (share ``history_weight``). Which of the LSTM and the trees carries to
a new dataset differs between suites and between regions of the DCN, so ``w_tree`` is not
fixed. At fit time every training dataset is scored as if it were unseen: each ensemble
member and a tree model of its own skip one fold of datasets (:func:`dataset_folds`),
and ``(1 - w_tree) * lstm + w_tree * trees`` is ranked against the dataset's labels for
each candidate share, the LSTM reading no history (as for a family nobody holds, the
networks ``w_tree`` decides). A query takes the share whose Kendall tau, averaged over
the training datasets nearest its DCN (:func:`choose`), is highest; the default stays
unless another share beats it by :data:`MIN_GAIN`.

The consensus share stays fixed: chosen the same way per query, it lost 0.0025 of mean
Kendall tau on the starter suite and 0.10 on one dataset (docs/research/stacking.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from predictor.metrics import kendall

#: Candidate shares of the trees beside the LSTM.
TREE_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Rows of one dataset scored at most (a seeded sample): Kendall tau is O(n log n) per
#: candidate.
MAX_ROWS_PER_DATASET = 1000
#: Dataset weights ``1 / (|dDCN| + SOFTENING)^2``: the nearest datasets dominate.
SOFTENING = 0.05
#: A share replaces the default only when its weighted mean tau is higher by this much:
#: a few datasets' scores are noisy, and the default is the ablations' choice.
MIN_GAIN = 0.01


def shares(default: float, candidates: Sequence[float] = TREE_SHARES) -> list[float]:
    """The candidate shares, ``default`` first (it wins ties and near-ties)."""
    return [float(default), *(float(v) for v in candidates if v != default)]


def dataset_folds(names: Sequence[str], n_folds: int, seed: int) -> dict[str, int]:
    """``{dataset: fold}``: each dataset in one of ``min(n_folds, len(names))`` folds
    (seeded); empty with fewer than two datasets (nothing to leave out)."""
    if len(names) < 2:
        return {}
    order = np.random.default_rng([seed, 39]).permutation(len(names))
    return {names[int(j)]: i % n_folds for i, j in enumerate(order)}


def part_scores(tree_shares: Sequence[float], y: np.ndarray, lstm: np.ndarray,
                trees: np.ndarray) -> np.ndarray:
    """Kendall tau of ``(1 - w) * lstm + w * trees`` (out-of-dataset standings) against
    one dataset's labels ``y``, for each share ``w``."""
    return np.array([kendall((1.0 - w) * lstm + w * trees, y) for w in tree_shares])


def choose(scores: np.ndarray, dcns: np.ndarray, query: np.ndarray,
           tree_shares: Sequence[float], exclude: int | None = None) -> np.ndarray:
    """Per query DCN, the tree share with the best mean of ``scores [D, shares]`` (one
    row per training dataset, DCNs ``dcns``), the nearest datasets weighing most;
    ``exclude`` drops one dataset (its own rows, in calibration)."""
    query = np.asarray(query, np.float64)
    keep = np.ones(len(dcns), bool)
    if exclude is not None:
        keep[exclude] = False
    out = np.full(len(query), float(tree_shares[0]))
    if not keep.any():
        return out
    for v in np.unique(query):
        w = 1.0 / (np.abs(dcns[keep] - v) + SOFTENING) ** 2
        mean = (w @ scores[keep]) / w.sum()
        best = int(np.argmax(mean))
        out[query == v] = tree_shares[best if mean[best] >= mean[0] + MIN_GAIN else 0]
    return out
