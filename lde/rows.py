"""The LDE's records and their validation: what the store hands out and takes in.

Plain dataclasses and checks with no database behind them (the store, the ingest formats
and the Parquet exchange share them).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tapas.core.records import SPLITS, ExperimentRecord, fraction

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``: called by long operations (the CLI draws a bar)."""


def dataset_id_for(name: str) -> str:
    """A stable id from a dataset name: the name itself when it is a simple slug."""
    if _ID_RE.match(name):
        return name
    return "d_" + hashlib.sha256(name.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True)
class DatasetRow:
    """One dataset; ``dcn`` is None until it has been characterised."""

    id: str
    name: str
    fingerprint: str | None
    n_samples: int | None
    n_classes: int
    input_shape: tuple[int, ...]
    dcn: float | None
    dcn_meta: dict[str, Any] | None
    source: str


@dataclass
class IngestReport:
    """What one batch did: rows added, skipped as already present, and rejected."""

    added: int = 0
    skipped: int = 0
    rejected: list[tuple[int | str, str]] = field(default_factory=list)
    architectures_added: int = 0
    datasets_added: int = 0
    batch: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"added": self.added, "skipped": self.skipped,
                "rejected": [{"where": w, "reason": r} for w, r in self.rejected],
                "n_rejected": len(self.rejected),
                "architectures_added": self.architectures_added,
                "datasets_added": self.datasets_added, "batch": self.batch,
                "seconds": round(self.seconds, 3)}


@dataclass
class ExperimentSet:
    """Experiments returned by a DCN filter, as numpy columns (one entry per experiment).

    ``tau`` is the radius actually used; ``satisfied`` is False when an adaptive
    filter could not reach its minimums even with every dataset included.
    """

    arch_id: np.ndarray
    dataset_id: np.ndarray
    dcn: np.ndarray
    accuracy: np.ndarray
    num_classes: np.ndarray
    split: np.ndarray
    curves: list[list[float] | None] | None
    tau: float
    target_dcn: float
    satisfied: bool = True

    def __len__(self) -> int:
        return int(self.accuracy.shape[0])

    def arch_ids(self) -> list[str]:
        """Distinct architecture ids, in first-seen order (pass to ``Store.architectures``)."""
        return list(dict.fromkeys(self.arch_id.tolist()))

    def datasets(self) -> list[str]:
        return sorted(set(self.dataset_id.tolist()))

    def mean_over_seeds(self) -> ExperimentSet:
        """One row per (architecture, dataset, split): the mean accuracy of its runs.

        Seeds are stored as separate experiments so their noise can be measured; a model
        learns from the label they agree on, and a pair with four seeds must not weigh four
        times a pair with one. A curve is the mean of the runs' curves of the most common
        length (runs of one recipe share it). Rows keep their first run's order."""
        keys = np.array([f"{a}\x1f{d}\x1f{s}" for a, d, s in
                         zip(self.arch_id.tolist(), self.dataset_id.tolist(),
                             self.split.tolist(), strict=True)], dtype=object)
        _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                              return_counts=True)
        if len(counts) == len(self):
            return self
        order = np.argsort(first)  # groups in first-seen order
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        group = rank[inverse]
        acc = np.bincount(group, weights=self.accuracy) / counts[order]
        rows = first[order]
        curves = None
        if self.curves is not None:
            members: list[list[int]] = [[] for _ in rows]
            for i, g in enumerate(group.tolist()):
                members[g].append(i)
            curves = [_mean_curve([self.curves[i] for i in m]) for m in members]
        return replace(self, arch_id=self.arch_id[rows], dataset_id=self.dataset_id[rows],
                       dcn=self.dcn[rows], accuracy=acc, num_classes=self.num_classes[rows],
                       split=self.split[rows], curves=curves)


def _mean_curve(curves: list[list[float] | None]) -> list[float] | None:
    """The mean of the curves of the most common length (None when no run has one)."""
    have = [c for c in curves if c]
    if not have:
        return None
    n = Counter(len(c) for c in have).most_common(1)[0][0]
    return np.mean([c for c in have if len(c) == n], axis=0).tolist()


def is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


check_accuracy = fraction
"""A finite fraction in [0, 1] (an accuracy or a DCN): the records' one rule."""


__all__ = ["SPLITS", "DatasetRow", "ExperimentRecord", "ExperimentSet", "IngestReport",
           "Progress", "check_accuracy", "dataset_id_for"]
