"""Experiments: validated records and Arrow batches written as one transaction each.

Bulk paths are vectorised: rows are gathered into an Arrow table, registered with
DuckDB and written with one ``INSERT ... SELECT`` (deduplicated against the table
by an anti-join on the natural key), inside one transaction per batch, so a
failing or killed batch leaves the database as it was.

The natural key of an experiment is ``(arch_id, dataset_id, split, seed, source)``;
ingesting the same record twice adds nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from lde.archs import ArchRow, arch_row, nb201_rows
from lde.rows import DatasetRow, ExperimentRecord, IngestReport, Progress
from lde.store.architectures import Architectures
from lde.store.connection import unregister
from lde.store.datasets import Datasets
from lde.tables import EXPERIMENT_COLUMNS, experiment_table
from tapas.core.arch import ArchError, Architecture, is_nb201_string, parse_cell
from tapas.core.lazy import LazyImport
from tapas.core.records import check_record
from tapas.core.spaces import parse_arch

pa = LazyImport("pyarrow")


class Experiments(Datasets, Architectures):
    """The ``experiments`` and ``ingest_batches`` tables (a record names its dataset and
    carries its architecture, so this part stands on both)."""

    def _next_batch(self, con: Any) -> int:
        return int(con.execute("SELECT coalesce(max(batch), 0) + 1 FROM ingest_batches")
                   .fetchall()[0][0])

    def ingest_rows(self, arch_rows: Sequence[ArchRow], experiments: pa.Table | str, *,
                    kind: str, origin: str | None = None, arch_source: str = "user",
                    report: IngestReport | None = None) -> IngestReport:
        """Write architectures and a batch of experiments as one transaction.

        ``experiments``: an Arrow table with :data:`EXPERIMENT_COLUMNS` (see
        :func:`experiment_table`), or the name of a table in this connection with those
        columns and ``seq``; already validated. ``ingested_at`` is kept when present
        (imports), and ``seq`` gives the order. Rows whose natural key is already stored,
        or repeated in the batch, are counted as skipped.
        """
        rep = report or IngestReport()
        t0 = time.perf_counter()
        key = "arch_id, dataset_id, split, seed, source"
        with self.transaction() as con:
            if isinstance(experiments, str):
                src = experiments
                names = [r[0] for r in con.execute(f"DESCRIBE {src}").fetchall()]
                n = int(con.execute(f"SELECT count(*) FROM {src}").fetchall()[0][0])
            else:
                src = "_new_exps"
                n = experiments.num_rows
                experiments = experiments.append_column(
                    "_ord", pa.array(np.arange(n, dtype=np.int64)))
                names = experiments.column_names
                con.register(src, experiments)
            order = "seq" if "seq" in names else "_ord"
            stamp = "x.ingested_at" if "ingested_at" in names else "current_timestamp"
            try:
                rep.architectures_added += self.insert_architectures(arch_rows, arch_source)
                batch = self._next_batch(con)
                base = int(con.execute("SELECT coalesce(max(seq), 0) FROM experiments")
                           .fetchall()[0][0])
                # repeated keys inside the batch are rare: pay for the window only then
                dups = con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {src} GROUP BY {key} "
                                   "HAVING count(*) > 1)").fetchall()[0][0]
                rows = (f"(SELECT * FROM {src} QUALIFY row_number() OVER (PARTITION BY {key} "
                        f"ORDER BY {order}) = 1)" if dups else src)
                added = int(con.execute(
                    f"""INSERT INTO experiments (seq, arch_id, dataset_id, split, seed, source,
                            accuracy, epochs, hparams, curve, ingested_at)
                        SELECT {base} + row_number() OVER (ORDER BY x.{order}), x.arch_id,
                               x.dataset_id, x.split, x.seed, x.source, x.accuracy, x.epochs,
                               x.hparams, x.curve, {stamp}
                        FROM {rows} x
                        ANTI JOIN experiments e ON e.arch_id = x.arch_id
                            AND e.dataset_id = x.dataset_id AND e.split = x.split
                            AND e.seed IS NOT DISTINCT FROM x.seed AND e.source = x.source"""
                ).fetchall()[0][0])
            finally:
                if src == "_new_exps":
                    unregister(con, src)
            con.execute("INSERT INTO ingest_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                        "current_timestamp)",
                        [batch, kind, origin, added, n - added, len(rep.rejected),
                         base + 1 if added else None, base + added if added else None])
        rep.added += added
        rep.skipped += n - added
        rep.batch = batch
        rep.seconds += time.perf_counter() - t0
        return rep

    def add_experiments(self, records: Iterable[ExperimentRecord],
                        progress: Progress | None = None) -> IngestReport:
        """Validate and add records in one transaction; bad ones are rejected by index."""
        rep = IngestReport()
        t0 = time.perf_counter()
        ds_cache: dict[str, DatasetRow | None] = {}
        arch_cache: dict[Any, ArchRow] = {}
        rows: dict[str, ArchRow] = {}
        cols: dict[str, list[Any]] = {k: [] for k in EXPERIMENT_COLUMNS}
        records = list(records)
        for i, rec in enumerate(records):
            try:
                rec = check_record(rec)  # the one rule set of a record's values
                if rec.dataset not in ds_cache:
                    ds_cache[rec.dataset] = self.dataset(rec.dataset)
                ds = ds_cache[rec.dataset]
                if ds is None:
                    raise ValueError(f"unknown dataset {rec.dataset!r}; register it first "
                                     "(or give its DCN when ingesting)")
                row = self._arch_row(rec.arch, ds, arch_cache)
                hp = None if rec.hparams is None else json.dumps(rec.hparams, sort_keys=True)
            except (ArchError, ValueError, TypeError) as e:
                rep.rejected.append((i, str(e)))
                continue
            rows[row.id] = row
            for k, v in (("arch_id", row.id), ("dataset_id", ds.id), ("split", rec.split),
                         ("seed", rec.seed), ("source", rec.source), ("accuracy", rec.accuracy),
                         ("epochs", rec.epochs), ("hparams", hp), ("curve", rec.curve)):
                cols[k].append(v)
            if progress and i % 1000 == 0:
                progress("validate", i, len(records))
        if progress:
            progress("validate", len(records), len(records))
        self.ingest_rows(list(rows.values()), experiment_table(cols), kind="records",
                         report=rep)
        rep.seconds = time.perf_counter() - t0
        return rep

    @staticmethod
    def _arch_row(obj: Any, ds: DatasetRow, cache: dict[Any, ArchRow]) -> ArchRow:
        """Resolve one record's architecture for dataset ``ds`` (memoised per batch)."""
        if isinstance(obj, Architecture):
            key: Any = ("arch", obj.id)
        elif isinstance(obj, str):
            key = (obj, ds.n_classes, ds.input_shape)
        else:
            key = None
        if key is not None and key in cache:
            row = cache[key]
        elif isinstance(obj, str) and is_nb201_string(obj):
            cell = obj.strip()
            parse_cell(cell)
            if ds.input_shape[1] != ds.input_shape[2]:
                raise ValueError(f"NAS-Bench-201 cells need square inputs; dataset {ds.name!r} "
                                 f"has {list(ds.input_shape)}")
            if ds.input_shape[0] == 3:
                row = nb201_rows([cell], [(ds.n_classes, ds.input_shape[1])])[0][0]
            else:
                row = arch_row(parse_arch(cell, ds.n_classes, ds.input_shape))
        else:  # IR, or a DARTS/NAS-Bench-101 cell built for the dataset
            row = arch_row(parse_arch(obj, ds.n_classes, ds.input_shape))
        if key is not None:
            cache[key] = row
        if row.num_classes != ds.n_classes or tuple(row.input_shape) != tuple(ds.input_shape):
            raise ValueError(f"architecture takes {list(row.input_shape)} input with "
                             f"{row.num_classes} classes, but dataset {ds.name!r} has "
                             f"{list(ds.input_shape)} input with {ds.n_classes} classes")
        return row
