"""What the LDE already knows about a candidate: its family's accuracies on other datasets.

A lifelong database's strongest signal for an unseen dataset is how the *same network
family* (:attr:`tapas.core.arch.Architecture.template_id`: the layers on any input size and
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
* the mean percentile over those datasets, weighted by how alike each is to the target
  (the *consensus*; :class:`DatasetKernel`, chosen per LDE and per pool of datasets that
  share families by :func:`fit_kernels`: datasets of the same input geometry rank networks
  alike far more often than datasets of close DCN do, see BENCHMARKS.md);
* the z-score averaged with weights ``1 / (|dDCN| + 0.05)``;
* the number of such datasets (/ 8, capped at 1).

The table is plain numpy (a dense family x dataset matrix with NaN where absent), saved
inside the model file, and can be swapped at prediction time for a fresher one drawn
from the LDE, so knowledge ingested after training reaches predictions without retraining.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tapas.core.arch import Architecture
from tapas.core.lazy import LazyImport

stats = LazyImport("scipy.stats")

HISTORY_DIM = 8
#: Columns of :meth:`HistoryTable.features` that :func:`consensus` reads.
_MASK, _MEAN_PCT = 0, 4
#: Weight softening: a dataset 0.05 DCN away counts half as much as an identical one.
_DCN_SOFTENING = 0.05
_Z_CLIP = 4.0


#: Dataset descriptor for similarity: DCN, log2 pixels per channel, channels, log2 classes.
N_DESCRIPTOR = 4
#: A kernel replaces the plain mean only when it ranks the LDE's own datasets this much
#: better (mean Spearman, leave-one-dataset-out): ties and noise keep the plain mean.
_KERNEL_MIN_GAIN = 0.002
_KERNEL_MIN_FAMILIES = 10


def dataset_geometry(input_shapes: Sequence[Sequence[int]], classes: Sequence[int]
                     ) -> np.ndarray:
    """``[N, 3]`` geometry columns of the descriptor (log2 pixels per channel, channels,
    log2 classes) from ``[channels, height, width]`` shapes and class counts."""
    shp = np.asarray(input_shapes, np.float64).reshape(-1, 3)
    k = np.asarray(classes, np.float64).reshape(-1)
    if len(shp) != len(k):
        raise ValueError(f"{len(shp)} input shapes for {len(k)} class counts")
    return np.column_stack([np.log2(np.maximum(shp[:, 1] * shp[:, 2], 1.0)), shp[:, 0],
                            np.log2(np.maximum(k, 2.0))])


def geometry_of(archs: Sequence[Architecture]) -> np.ndarray:
    """:func:`dataset_geometry` of the dataset each network is built for."""
    return dataset_geometry([a.input_shape for a in archs], [a.num_classes for a in archs])


@dataclass(frozen=True)
class DatasetKernel:
    """How much another dataset's ranking counts for a target dataset:
    ``floor + (1 - floor) * exp(-sum_k |d_k| / scales[k])`` over the descriptor
    differences ``d`` (:data:`N_DESCRIPTOR` components; an infinite scale ignores one, an
    unknown component counts as equal). ``floor`` 1 is the plain mean."""

    scales: tuple[float, ...] = (math.inf,) * N_DESCRIPTOR
    floor: float = 1.0

    @property
    def plain(self) -> bool:
        return self.floor >= 1.0 or all(math.isinf(s) for s in self.scales)

    def weights(self, query: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """``[N, G]`` weights of ``groups`` (``[G, N_DESCRIPTOR]``) for each query row."""
        w = np.ones((len(query), len(groups)))
        if self.plain:
            return w
        e = np.zeros_like(w)
        for k, s in enumerate(self.scales):
            if not math.isinf(s):
                e += np.nan_to_num(np.abs(query[:, k, None] - groups[None, :, k]), nan=0.0) / s
        return self.floor + (1.0 - self.floor) * np.exp(-e)

    def row_weights(self, table: HistoryTable, avail: np.ndarray, query: np.ndarray
                    ) -> np.ndarray:
        """``[N, G]`` weights of ``table``'s datasets for each query row (see
        :meth:`KernelSet.row_weights`, which picks a kernel per row)."""
        return self.weights(query, table.descriptors())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (an ignored component's infinite scale is ``None``)."""
        return {"scales": [None if math.isinf(s) else s for s in self.scales],
                "floor": self.floor}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DatasetKernel:
        scales = tuple(math.inf if s is None else float(s) for s in d["scales"])
        if len(scales) != N_DESCRIPTOR:
            raise ValueError(f"a dataset kernel has {N_DESCRIPTOR} scales, got {len(scales)}")
        return cls(scales, float(d["floor"]))


PLAIN = DatasetKernel()
#: The kernels :func:`fit_kernel` chooses from (besides the plain mean, which wins ties).
KERNEL_GRID: tuple[DatasetKernel, ...] = tuple(
    DatasetKernel((s_dcn, s_px, s_ch, s_cls), floor)
    for s_dcn, s_px, s_ch, s_cls, floor in itertools.product(
        (0.3, math.inf), (0.3, 1.0, 3.0, math.inf), (1.0, math.inf), (0.3, 1.0, math.inf),
        (0.05, 0.2)))


def fit_kernel(table: HistoryTable, grid: Sequence[DatasetKernel] = KERNEL_GRID,
               max_families: int = 400, seed: int = 0) -> DatasetKernel:
    """The kernel whose consensus best ranks each of the table's datasets from the
    others (leave-one-dataset-out, mean Spearman over datasets, at most ``max_families``
    families each); the plain mean unless another beats it by ``_KERNEL_MIN_GAIN``."""
    n_groups = len(table.groups)
    if n_groups < 3:
        return PLAIN
    grid = (PLAIN, *(k for k in grid if k != PLAIN))  # the reference every kernel must beat
    desc = table.descriptors()
    weights = np.stack([k.weights(desc, desc) for k in grid])       # (K, G, G)
    rng = np.random.default_rng(seed)
    held = np.isfinite(table.pct)
    total = np.zeros(len(grid))
    scored = 0
    for j in range(n_groups):
        elsewhere = held.copy()
        elsewhere[:, j] = False
        rows = np.flatnonzero(held[:, j] & elsewhere.any(1))
        if len(rows) < _KERNEL_MIN_FAMILIES:
            continue
        if len(rows) > max_families:
            rows = np.sort(rng.choice(rows, max_families, replace=False))
        ok = elsewhere[rows].astype(np.float64)
        w = weights[:, j, :].T                                       # (G, K)
        cons = (np.where(ok > 0, table.pct[rows], 0.0) @ w) / (ok @ w)
        total += _spearman_columns(cons, table.pct[rows, j])
        scored += 1
    if scored == 0:
        return PLAIN
    best = int(np.argmax(total))
    return grid[best] if (total[best] - total[0]) / scored >= _KERNEL_MIN_GAIN else PLAIN


def dataset_pools(table: HistoryTable, min_shared: int = _KERNEL_MIN_FAMILIES
                  ) -> list[list[int]]:
    """The table's datasets in *pools*: linked when they share at least ``min_shared``
    families, pooled when linked through any chain (connected components). Pools are
    search spaces the LDE has trained on several datasets, e.g. NAS-Bench-201's cells or
    the starter's chain families, and each relates dataset differences to rankings in its
    own way."""
    held = np.isfinite(table.pct).astype(np.float64)
    link = (held.T @ held) >= min_shared
    pools: list[list[int]] = []
    seen = np.zeros(len(table.groups), bool)
    for start in range(len(table.groups)):
        if seen[start]:
            continue
        seen[start] = True
        pool, stack = [], [start]
        while stack:
            j = stack.pop()
            pool.append(j)
            for k in np.flatnonzero(link[j] & ~seen):
                seen[k] = True
                stack.append(int(k))
        pools.append(sorted(pool))
    return pools


@dataclass(frozen=True)
class KernelSet:
    """One :class:`DatasetKernel` per pool of datasets (:func:`dataset_pools`), named by
    its datasets' ids; a family takes the kernel of the pool that holds most of its
    accuracies, and ``default`` (fitted on every dataset) where no pool holds it, e.g. a
    family only a fresher table knows."""

    pools: tuple[tuple[tuple[str, ...], DatasetKernel], ...] = ()
    default: DatasetKernel = PLAIN

    @property
    def plain(self) -> bool:
        return self.default.plain and all(k.plain for _, k in self.pools)

    def row_weights(self, table: HistoryTable, avail: np.ndarray, query: np.ndarray
                    ) -> np.ndarray:
        """``[N, G]`` weights of ``table``'s datasets for query rows whose families the
        datasets hold where ``avail`` (``[N, G]``) is true."""
        desc = table.descriptors()
        column = {g: j for j, g in enumerate(table.groups)}
        counts = np.zeros((len(avail), len(self.pools) + 1))
        for i, (names, _) in enumerate(self.pools):
            cols = [column[g] for g in names if g in column]
            counts[:, i + 1] = avail[:, cols].sum(1)
        choice = np.argmax(counts, 1)       # column 0 stays 0: the default only on no hold
        w = np.ones(avail.shape)
        for i, kernel in enumerate((self.default, *(k for _, k in self.pools))):
            sel = choice == i
            if sel.any() and not kernel.plain:
                w[sel] = kernel.weights(query[sel], desc)
        return w

    def to_dict(self) -> dict[str, Any]:
        return {"default": self.default.to_dict(),
                "pools": [{"groups": list(g), "kernel": k.to_dict()} for g, k in self.pools]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KernelSet:
        return cls(tuple((tuple(str(x) for x in p["groups"]), DatasetKernel.from_dict(p["kernel"]))
                         for p in d["pools"]), DatasetKernel.from_dict(d["default"]))


def fit_kernels(table: HistoryTable, seed: int = 0) -> KernelSet:
    """A kernel per pool (:func:`fit_kernel` on the pool's datasets alone) beside one
    fitted on them all. Pooling matters where the pools disagree: on the starter suite
    the 18 datasets of the first chain space rank alike by input size, and a kernel fitted
    over all 25 imposed that on the second space's 7, where it does not hold (BENCHMARKS.md)."""
    pools = tuple((tuple(table.groups[j] for j in pool), fit_kernel(table.select(pool), seed=seed))
                  for pool in dataset_pools(table) if len(pool) > 1)
    return KernelSet(pools, fit_kernel(table, seed=seed))


def _spearman_columns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman correlation of each column of ``x`` with ``y``."""
    rx = stats.rankdata(x, axis=0)
    ry = stats.rankdata(y)
    rx -= rx.mean(0)
    ry -= ry.mean()
    den = np.sqrt((rx ** 2).sum(0) * (ry ** 2).sum())
    return np.where(den > 0, (rx * ry[:, None]).sum(0) / np.where(den > 0, den, 1.0), 0.0)


def consensus(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(held, pct)`` from ``[N, HISTORY_DIM]`` features: whether any other dataset holds
    the family, and its (kernel-weighted) mean percentile there (0.5 where not held)."""
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
    geometry : ``[N, 3]`` :func:`dataset_geometry` of each experiment's dataset (unknown
        when absent: the consensus then weighs datasets by DCN alone).
    """

    def __init__(self, families: Sequence[str], groups: Sequence[str], dcns: Sequence[float],
                 accuracies: Sequence[float], geometry: np.ndarray | None = None) -> None:
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
        self.group_geom = np.full((ng, N_DESCRIPTOR - 1), np.nan)
        geo = None if geometry is None else np.asarray(geometry, np.float64)
        if geo is not None and geo.shape != (len(fam), N_DESCRIPTOR - 1):
            raise ValueError(f"geometry must have shape ({len(fam)}, {N_DESCRIPTOR - 1}), "
                             f"got {geo.shape}")
        for j in range(ng):
            first = int(np.flatnonzero(gj == j)[0])
            self.group_dcn[j] = float(d[first])
            if geo is not None:
                self.group_geom[j] = geo[first]
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
    def of(cls, archs: Sequence[Architecture], groups: Sequence[str], dcns: Sequence[float],
           accuracies: Sequence[float]) -> HistoryTable:
        """The table of trained networks: each one's family and its dataset's geometry
        are read off the network."""
        return cls([family_key(a) for a in archs], groups, dcns, accuracies,
                   geometry_of(archs))

    @classmethod
    def from_arrays(cls, families: Sequence[str], groups: Sequence[str], group_dcn: np.ndarray,
                    pct: np.ndarray, z: np.ndarray, group_geom: np.ndarray,
                    acc: np.ndarray | None = None) -> HistoryTable:
        """Rebuild a table from its saved state (see :meth:`to_arrays`)."""
        self = cls.__new__(cls)
        self.families = list(families)
        self.groups = list(groups)
        self._index = {f: i for i, f in enumerate(self.families)}
        self.group_dcn = np.asarray(group_dcn, np.float64)
        self.group_geom = np.asarray(group_geom, np.float64)
        self.pct = np.asarray(pct, np.float64)
        self.z = np.asarray(z, np.float64)
        self.acc = None if acc is None else np.asarray(acc, np.float64)
        shape = (len(self.families), len(self.groups))
        if (self.pct.shape != shape or self.z.shape != shape or len(self.group_dcn) != shape[1]
                or self.group_geom.shape != (shape[1], N_DESCRIPTOR - 1)):
            raise ValueError("history arrays do not match their families and groups")
        return self

    def to_arrays(self) -> dict[str, np.ndarray]:
        """What a model file keeps (raw accuracies stay out: the features never read them)."""
        return {"group_dcn": self.group_dcn, "group_geom": self.group_geom, "pct": self.pct,
                "z": self.z}

    def select(self, columns: Sequence[int]) -> HistoryTable:
        """The table restricted to the datasets at ``columns`` (every family kept)."""
        c = list(columns)
        return HistoryTable.from_arrays(
            self.families, [self.groups[j] for j in c], self.group_dcn[c], self.pct[:, c],
            self.z[:, c], self.group_geom[c], None if self.acc is None else self.acc[:, c])

    def descriptors(self) -> np.ndarray:
        """``[G, N_DESCRIPTOR]``: each dataset's DCN and geometry (NaN where unknown)."""
        return np.column_stack([self.group_dcn, self.group_geom])

    def __len__(self) -> int:
        return int(np.isfinite(self.pct).sum())

    def rows(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Row index of each network's family in the table (-1: never seen)."""
        get = self._index.get
        return np.fromiter((get(family_key(a), -1) for a in archs), np.int64, len(archs))

    def features(self, rows: np.ndarray, dcn: np.ndarray,
                 exclude: np.ndarray | None = None, geometry: np.ndarray | None = None,
                 kernel: DatasetKernel | KernelSet = PLAIN) -> np.ndarray:
        """``[N, HISTORY_DIM]`` features for family rows at target DCNs.

        ``exclude`` gives, per query, the group index of the dataset the query is *on*
        (-1 for none): its entry is left out so a row never sees its own label.
        ``geometry`` (``[N, 3]``, :func:`dataset_geometry`) and ``kernel`` weigh the
        consensus column by how alike each dataset is to the query's.
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
        if kernel.plain:
            out[:, 4] = pct0.sum(1) / np.maximum(avail.sum(1), 1)
        else:
            geo = (np.full((n, N_DESCRIPTOR - 1), np.nan) if geometry is None
                   else np.asarray(geometry, np.float64))
            query = np.column_stack([np.asarray(dcn, np.float64), geo])
            kw = np.where(avail, kernel.row_weights(self, avail, query), 0.0)
            out[:, 4] = (kw * pct0).sum(1) / np.maximum(kw.sum(1), 1e-300)
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
