"""The DCN filters: the experiments on datasets of similar DCN, answered from an in-memory
copy of the experiment columns (dictionary codes) or, for a very large table, in DuckDB."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lde.errors import LDEError
from lde.rows import SPLITS, ExperimentSet, check_accuracy, is_number
from lde.selection import select_adaptive
from lde.store.datasets import Datasets
from tapas.core.arch.cache import budget, budgeted, sizeof
from tapas.core.lazy import LazyImport

pa = LazyImport("pyarrow")
pc = LazyImport("pyarrow.compute")

_COLUMNS = budgeted("lde-columns")
"""Each open store's experiments table as codes (:meth:`Store._columns`), by its bytes."""

CACHE_MAX_ROWS = 20_000_000
"""Above this many experiments, filters query DuckDB instead of the in-memory columns."""


@dataclass
class _Columns:
    """The experiments table as dictionary codes (17 bytes per experiment, and the text of
    each distinct id)."""

    ROW_BYTES: ClassVar[int] = 17

    generation: int
    arch_vals: np.ndarray
    arch_codes: np.ndarray
    ds_vals: np.ndarray
    ds_codes: np.ndarray
    accuracy: np.ndarray
    split_vals: np.ndarray
    split_codes: np.ndarray

    def nbytes(self) -> int:
        """The arrays' bytes, the distinct ids' text included."""
        arrays = (self.arch_vals, self.arch_codes, self.ds_vals, self.ds_codes, self.accuracy,
                  self.split_vals, self.split_codes)
        return sum(a.nbytes for a in arrays) + sum(
            sizeof(v) for a in (self.arch_vals, self.ds_vals, self.split_vals) for v in a)



class Filters(Datasets):
    """Selections by DCN (datasets are named by id or name, hence :class:`Datasets`).

    They answer from an in-memory copy of the experiment columns when the table has at
    most ``cache_rows`` rows (0: always query DuckDB).
    """

    def __init__(self, path: str | Path | None = None, read_only: bool = False,
                 cache_rows: int = CACHE_MAX_ROWS) -> None:
        self._dcn_cache: tuple[int, list[tuple[str, float, int, int]]] | None = None
        self._cols = _COLUMNS.scoped(self)  # key None: the columns at some generation
        self._cache_rows = int(cache_rows)
        super().__init__(path, read_only)

    def close(self) -> None:
        with self._lock:
            super().close()
            self._cols.drop()

    @staticmethod
    def _split(split: Any) -> str:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        return split

    def _resolve_ids(self, names: Iterable[str]) -> list[str]:
        out = []
        for n in names:
            row = self.dataset(n)
            out.append(row.id if row else str(n))
        return out

    def dcn_table(self, exclude: Sequence[str] = ()) -> list[tuple[str, float, int]]:
        """(id, dcn, label count) of the characterised datasets not excluded: what the DCN
        selection rule reads (:func:`lde.selection.select_adaptive`)."""
        return [(r[0], r[1], r[2]) for r in self._dcn_table(exclude)]

    def _dcn_table(self, exclude: Sequence[str]) -> list[tuple[str, float, int, int]]:
        """(id, dcn, label count, n_classes) of characterised datasets not excluded; a label
        is a network's result on the dataset (one split), however many seeds it was run with.

        Cached until this store writes again (DuckDB allows no other writer meanwhile).
        """
        with self._lock:
            if self._dcn_cache is None or self._dcn_cache[0] != self._generation:
                rows = self._q("""SELECT d.id, d.dcn, coalesce(c.n, 0), d.n_classes
                                  FROM datasets d
                                  LEFT JOIN (SELECT dataset_id, count(*) AS n FROM
                                             (SELECT DISTINCT dataset_id, arch_id, split
                                              FROM experiments)
                                             GROUP BY dataset_id) c ON c.dataset_id = d.id
                                  WHERE d.dcn IS NOT NULL ORDER BY d.id""")
                self._dcn_cache = (self._generation,
                                   [(i, float(d), int(n), int(k)) for i, d, n, k in rows])
            table = self._dcn_cache[1]
        ex = set(self._resolve_ids(exclude)) if exclude else set()
        return [r for r in table if r[0] not in ex]

    @staticmethod
    def _decode(col: Any) -> tuple[np.ndarray, np.ndarray]:
        """A string column as (distinct values, codes): far cheaper than one str per row."""
        enc = pc.dictionary_encode(col)
        enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
        values = np.array(enc.dictionary.to_pylist() + [None], dtype=object)
        codes = enc.indices.fill_null(len(values) - 1).to_numpy(zero_copy_only=False)
        return values, codes.astype(np.int64, copy=False)

    def _columns(self) -> _Columns | None:
        """Experiment columns held in memory as codes, reloaded after this store writes.

        Valid because while this store has the file open no other process can write it.
        None (use SQL) for very large databases.
        """
        with self._lock:
            cols = self._cols.get(None)
            if cols is not None and cols.generation == self._generation:
                return cols
            n = self._q1("SELECT count(*) FROM experiments")[0]
            if n > self._cache_rows or n * _Columns.ROW_BYTES > budget():  # would not stay
                self._cols.drop()
                return None
            t = self._con.sql("SELECT arch_id, dataset_id, accuracy, split FROM experiments "
                              "ORDER BY seq").to_arrow_table()
            arch_vals, arch_codes = self._decode(t.column("arch_id"))
            ds_vals, ds_codes = self._decode(t.column("dataset_id"))
            split_vals, split_codes = self._decode(t.column("split"))
            cols = _Columns(
                self._generation, arch_vals, arch_codes.astype(np.int32), ds_vals,
                ds_codes.astype(np.int32), t.column("accuracy").to_numpy().astype(np.float64),
                split_vals, split_codes.astype(np.int8))
            self._cols.put(None, cols, cols.nbytes())
            return cols

    def _select(self, table: list[tuple[str, float, int, int]], split: str | None,
                with_curves: bool, tau: float, target: float,
                satisfied: bool = True) -> ExperimentSet:
        if split is not None:
            self._split(split)
        info = {r[0]: r for r in table}
        cols = None if with_curves else self._columns()
        if cols is not None:
            # in memory: a boolean lookup per dataset code, then one gather per column
            want = np.array([v in info for v in cols.ds_vals], dtype=bool)
            mask = want[cols.ds_codes]
            if split is not None:
                mask &= cols.split_vals[cols.split_codes] == split
            idx = np.flatnonzero(mask)
            ds_codes = cols.ds_codes[idx]
            dcn_of = np.array([info[v][1] if v in info else np.nan for v in cols.ds_vals])
            k_of = np.array([info[v][3] if v in info else 0 for v in cols.ds_vals], np.int64)
            return ExperimentSet(
                arch_id=cols.arch_vals[cols.arch_codes[idx]], dataset_id=cols.ds_vals[ds_codes],
                dcn=dcn_of[ds_codes], num_classes=k_of[ds_codes], accuracy=cols.accuracy[idx],
                split=cols.split_vals[cols.split_codes[idx]], curves=None, tau=float(tau),
                target_dcn=float(target), satisfied=satisfied)
        return self._select_sql(table, split, with_curves, tau, target, satisfied)

    def _select_sql(self, table: list[tuple[str, float, int, int]], split: str | None,
                    with_curves: bool, tau: float, target: float,
                    satisfied: bool = True) -> ExperimentSet:
        ids = [r[0] for r in table]
        cols = "arch_id, dataset_id, accuracy, split" + (", curve" if with_curves else "")
        where = "dataset_id IN (" + ", ".join("?" * len(ids)) + ")" if ids else "FALSE"
        params: list[Any] = list(ids)
        if split is not None:
            where += " AND split = ?"
            params.append(split)
        with self._lock:
            t = self._con.sql(f"SELECT {cols} FROM experiments WHERE {where} ORDER BY seq",
                              params=params or None).to_arrow_table()
        arch_vals, arch_codes = self._decode(t.column("arch_id"))
        ds_vals, ds_codes = self._decode(t.column("dataset_id"))
        split_vals, split_codes = self._decode(t.column("split"))
        info = {r[0]: r for r in table}
        dcn_of = np.array([info[v][1] if v in info else np.nan for v in ds_vals], np.float64)
        k_of = np.array([info[v][3] if v in info else 0 for v in ds_vals], np.int64)
        return ExperimentSet(
            arch_id=arch_vals[arch_codes], dataset_id=ds_vals[ds_codes],
            dcn=dcn_of[ds_codes], num_classes=k_of[ds_codes],
            accuracy=t.column("accuracy").to_numpy().astype(np.float64, copy=False),
            split=split_vals[split_codes],
            curves=t.column("curve").to_pylist() if with_curves else None,
            tau=float(tau), target_dcn=float(target), satisfied=satisfied)

    def filter_by_dcn(self, dcn: float, tau: float = 0.05, exclude_datasets: Sequence[str] = (),
                      split: str | None = None, with_curves: bool = False) -> ExperimentSet:
        """Experiments on datasets with ``|DCN - dcn| <= tau`` (``split=None``: every split).

        ``exclude_datasets`` (ids or names) leaves datasets out, e.g. a held-out target.
        """
        dcn = check_accuracy(dcn, "dcn")
        if not is_number(tau) or not 0 <= float(tau) <= 1:
            raise LDEError(f"tau must be a number in [0, 1], got {tau!r}")
        table = [r for r in self._dcn_table(exclude_datasets)
                 if abs(r[1] - dcn) <= float(tau) + 1e-12]
        return self._select(table, split, with_curves, float(tau), dcn)

    def filter_adaptive(self, dcn: float, min_experiments: int = 500, min_datasets: int = 2,
                        tau: float = 0.05, exclude_datasets: Sequence[str] = (),
                        split: str | None = None, with_curves: bool = False
                        ) -> tuple[ExperimentSet, float]:
        """Like :meth:`filter_by_dcn`, widening tau to the nearest datasets until at least
        ``min_experiments`` labels (networks measured, each counted once whatever its
        number of seeds; :meth:`ExperimentSet.mean_over_seeds`) from ``min_datasets``
        datasets remain.

        Returns the set and the tau used. When even all datasets fall short, all are used
        and ``set.satisfied`` is False.
        """
        dcn = check_accuracy(dcn, "dcn")
        table = self._dcn_table(exclude_datasets)
        ids, used, ok = select_adaptive([(r[0], r[1], r[2]) for r in table], dcn,
                                        min_experiments, min_datasets, float(tau))
        keep = set(ids)
        chosen = [r for r in table if r[0] in keep]
        s = self._select(chosen, split, with_curves, used, dcn, ok)
        return s, used

    def family_accuracies(self, exclude_datasets: Sequence[str] = ()
                          ) -> dict[str, np.ndarray]:
        """Every experiment on a characterised dataset as numpy columns ``family``,
        ``dataset_id``, ``dcn``, ``accuracy``, ``input_shape`` (``[N, 3]``) and
        ``n_classes`` of its dataset (what the predictor's history features read:
        :class:`predictor.history.HistoryTable`), leaving ``exclude_datasets`` out."""
        ex = sorted(set(self._resolve_ids(exclude_datasets))) if exclude_datasets else []
        where = ("AND e.dataset_id NOT IN (" + ", ".join("?" * len(ex)) + ")") if ex else ""
        with self._lock:
            t = self._con.sql(f"""SELECT a.family, e.dataset_id, d.dcn, e.accuracy,
                                         d.input_shape, d.n_classes
                                  FROM experiments e
                                  JOIN datasets d ON d.id = e.dataset_id
                                  JOIN architectures a ON a.id = e.arch_id
                                  WHERE d.dcn IS NOT NULL {where}
                                  ORDER BY e.seq""", params=ex or None).to_arrow_table()
        fam_vals, fam_codes = self._decode(t.column("family"))
        ds_vals, ds_codes = self._decode(t.column("dataset_id"))
        return {"family": fam_vals[fam_codes], "dataset_id": ds_vals[ds_codes],
                "dcn": t.column("dcn").to_numpy().astype(np.float64),
                "accuracy": t.column("accuracy").to_numpy().astype(np.float64),
                "input_shape": np.asarray(t.column("input_shape").combine_chunks().flatten()
                                          .to_numpy(), np.int64).reshape(-1, 3),
                "n_classes": t.column("n_classes").to_numpy().astype(np.int64)}
