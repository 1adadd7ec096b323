"""What the LDE already knows about a candidate: its family's accuracies on other datasets.

A lifelong database's strongest signal for an unseen dataset is how the *same network
family* (:attr:`tapas.arch.Architecture.template_id`: the layers on any input size and
class count) ranked on the datasets it has already been trained on. Copying the nearest
dataset's ranking scores 0.85-0.88 Kendall tau on NAS-Bench-201; TAP reads the same
evidence as features and combines it with the architecture.

Accuracies do not transfer across datasets (CIFAR-100 sits 20 points below CIFAR-10),
rankings do. So each stored accuracy is turned into two level-free numbers *within its
own dataset*: the percentile of the family among that dataset's networks and its z-score.
For a query (family, target DCN) the features are, over the datasets that hold the family
(the target dataset itself excluded, so a row never sees its own label):

* ``mask``: 1 when any dataset holds the family, else every feature is 0;
* percentile and z-score on the dataset of nearest DCN, and that distance;
* the plain mean percentile over those datasets (the *consensus*: weighting it by DCN
  distance ranked worse on both starter suites and no better on NB201, see BENCHMARKS.md);
* the z-score averaged with weights ``1 / (|dDCN| + 0.05)``;
* the number of such datasets (/ 8, capped at 1).

The table is plain numpy (a dense family x dataset matrix with NaN where absent), saved
inside the model file, and can be swapped at prediction time for a fresher one drawn
from the LDE, so knowledge ingested after training reaches predictions without retraining.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tapas.arch import Architecture

HISTORY_DIM = 8
#: Columns of :meth:`HistoryTable.features` that :func:`consensus` reads.
_MASK, _MEAN_PCT = 0, 4
#: Weight softening: a dataset 0.05 DCN away counts half as much as an identical one.
_DCN_SOFTENING = 0.05
_Z_CLIP = 4.0


def consensus(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(held, pct)`` from ``[N, HISTORY_DIM]`` features: whether any other dataset holds
    the family, and its mean percentile there (0.5 where not held)."""
    held = features[:, _MASK] > 0
    return held, np.where(held, features[:, _MEAN_PCT], 0.5)


def family_key(arch: Architecture) -> str:
    """A network's family (``template_id``), cached on the immutable object."""
    cached = arch.__dict__.get("_tap_family")
    if cached is None:
        cached = arch.template_id
        arch.__dict__["_tap_family"] = cached
    return cached


class HistoryTable:
    """Per-dataset percentiles and z-scores of network families (see the module doc).

    Parameters
    ----------
    families, groups : family key and dataset id of each experiment.
    dcns : the dataset's DCN for each experiment.
    accuracies : final accuracy of each experiment (repeats of one family on one dataset,
        e.g. two seeds, are averaged).
    """

    def __init__(self, families: Sequence[str], groups: Sequence[str], dcns: Sequence[float],
                 accuracies: Sequence[float]) -> None:
        fam = np.asarray(families, dtype=object)
        grp = np.asarray(groups, dtype=object)
        d = np.asarray(dcns, dtype=np.float64)
        y = np.asarray(accuracies, dtype=np.float64)
        if not (len(fam) == len(grp) == len(d) == len(y)):
            raise ValueError("families, groups, dcns and accuracies must have equal lengths")
        self.families = list(dict.fromkeys(fam.tolist()))
        self.groups = list(dict.fromkeys(grp.tolist()))
        self._index = {f: i for i, f in enumerate(self.families)}
        gi = {g: j for j, g in enumerate(self.groups)}
        fi = np.fromiter((self._index[f] for f in fam), np.int64, len(fam))
        gj = np.fromiter((gi[g] for g in grp), np.int64, len(grp))
        nf, ng = len(self.families), len(self.groups)
        total = np.zeros((nf, ng))
        count = np.zeros((nf, ng))
        np.add.at(total, (fi, gj), y)
        np.add.at(count, (fi, gj), 1.0)
        acc = np.where(count > 0, total / np.maximum(count, 1.0), np.nan)
        self.acc = acc
        self.group_dcn = np.zeros(ng)
        for j in range(ng):
            self.group_dcn[j] = float(d[gj == j][0])
        self.pct = np.full((nf, ng), np.nan)
        self.z = np.full((nf, ng), np.nan)
        for j in range(ng):
            col = acc[:, j]
            ok = np.flatnonzero(np.isfinite(col))
            if len(ok) == 0:
                continue
            v = col[ok]
            # average rank of ties, scaled to [0, 1]
            order = np.argsort(v, kind="stable")
            ranks = np.empty(len(v))
            ranks[order] = np.arange(len(v), dtype=np.float64)
            _, inv, cnt = np.unique(v, return_inverse=True, return_counts=True)
            sums = np.zeros(len(cnt))
            np.add.at(sums, inv, ranks)
            ranks = (sums / cnt)[inv]
            self.pct[ok, j] = ranks / max(len(v) - 1, 1)
            sd = float(v.std())
            self.z[ok, j] = np.clip((v - v.mean()) / (sd if sd > 1e-9 else 1.0), -_Z_CLIP, _Z_CLIP)

    @classmethod
    def from_arrays(cls, families: Sequence[str], groups: Sequence[str], group_dcn: np.ndarray,
                    pct: np.ndarray, z: np.ndarray, acc: np.ndarray | None = None
                    ) -> HistoryTable:
        """Rebuild a table from its saved state (see :meth:`to_arrays`)."""
        self = cls.__new__(cls)
        self.families = list(families)
        self.groups = list(groups)
        self._index = {f: i for i, f in enumerate(self.families)}
        self.group_dcn = np.asarray(group_dcn, np.float64)
        self.pct = np.asarray(pct, np.float64)
        self.z = np.asarray(z, np.float64)
        self.acc = None if acc is None else np.asarray(acc, np.float64)
        shape = (len(self.families), len(self.groups))
        if self.pct.shape != shape or self.z.shape != shape or len(self.group_dcn) != shape[1]:
            raise ValueError("history arrays do not match their families and groups")
        return self

    def to_arrays(self) -> dict[str, np.ndarray]:
        """What a model file keeps (raw accuracies stay out: the features never read them)."""
        return {"group_dcn": self.group_dcn, "pct": self.pct, "z": self.z}

    def __len__(self) -> int:
        return int(np.isfinite(self.pct).sum())

    def rows(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Row index of each network's family in the table (-1: never seen)."""
        get = self._index.get
        return np.fromiter((get(family_key(a), -1) for a in archs), np.int64, len(archs))

    def features(self, rows: np.ndarray, dcn: np.ndarray,
                 exclude: np.ndarray | None = None) -> np.ndarray:
        """``[N, HISTORY_DIM]`` features for family rows at target DCNs.

        ``exclude`` gives, per query, the group index of the dataset the query is *on*
        (-1 for none): its entry is left out so a row never sees its own label.
        """
        n = len(rows)
        out = np.zeros((n, HISTORY_DIM), dtype=np.float64)
        if n == 0 or not self.groups:
            return out
        known = rows >= 0
        r = np.where(known, rows, 0)
        pct = self.pct[r]                              # (N, G)
        z = self.z[r]
        avail = np.isfinite(pct) & known[:, None]
        if exclude is not None:
            g = np.arange(len(self.groups))[None, :]
            avail &= g != np.asarray(exclude)[:, None]
        dist = np.abs(self.group_dcn[None, :] - np.asarray(dcn, np.float64)[:, None])
        any_ = avail.any(1)
        dist_m = np.where(avail, dist, np.inf)
        near = np.argmin(dist_m, 1)
        idx = np.arange(n)
        w = np.where(avail, 1.0 / (dist + _DCN_SOFTENING), 0.0)
        wsum = np.maximum(w.sum(1), 1e-12)
        pct0 = np.where(avail, pct, 0.0)
        z0 = np.where(avail, z, 0.0)
        out[:, 0] = any_
        out[:, 1] = np.where(any_, pct0[idx, near], 0.0)
        out[:, 2] = np.where(any_, z0[idx, near] / _Z_CLIP, 0.0)
        out[:, 3] = np.where(any_, dist_m[idx, near], 0.0)
        out[:, 4] = pct0.sum(1) / np.maximum(avail.sum(1), 1)
        out[:, 5] = (w * z0).sum(1) / wsum / _Z_CLIP
        out[:, 6] = np.minimum(avail.sum(1) / 8.0, 1.0)
        out[:, 7] = np.where(any_, (w * np.abs(z0 - z0[idx, near][:, None])).sum(1) / wsum, 0.0)
        return out

    def group_index(self, group: str | None) -> int:
        """Column of a dataset id (-1 when the table does not hold it)."""
        try:
            return self.groups.index(group) if group is not None else -1
        except ValueError:
            return -1
