"""Which selected experiments a predictor trains on: a seeded, dataset-balanced sample.

One rule, used by the pipeline in production and by the evaluation scenarios (so the
benchmark measures what users get). The predictor learns rankings within datasets,
and more rows of one dataset add little, so no dataset may outweigh the others: each
contributes at most an equal share of the row budget (``max_rows / n_datasets``),
drawn at random (seeded) when it holds more. The unused share of small datasets is not
handed to large ones: a NAS-Bench-201 table of 15,625 cells next to a few hundred-row
datasets would otherwise make up most of the sample, and most of the training time.
"""

from __future__ import annotations

import numpy as np

#: The row budget of one predictor (its training time is set by its gradient steps).
MAX_TRAIN_ROWS = 10_000


def balanced_rows(groups: np.ndarray, max_rows: int | None = MAX_TRAIN_ROWS,
                  seed: int = 0) -> np.ndarray:
    """Sorted indices into ``groups`` (each row's dataset) of the rows to train on: all
    of them when ``max_rows`` is None, else at most ``max_rows // n_datasets`` per
    dataset (at least one)."""
    groups = np.asarray(groups)
    rows = np.arange(len(groups))
    if max_rows is None or len(rows) == 0:
        return rows
    names, code = np.unique(groups.astype(str), return_inverse=True)
    share = max(1, int(max_rows) // len(names))
    rng = np.random.default_rng(seed)
    keep = []
    for g in range(len(names)):
        idx = rows[code == g]
        keep.append(idx if len(idx) <= share else rng.choice(idx, share, replace=False))
    return np.sort(np.concatenate(keep))


__all__ = ["MAX_TRAIN_ROWS", "balanced_rows"]
