"""The LDE store: one DuckDB file holding datasets, architectures, experiments and predictors.

Bulk paths are vectorised: rows are gathered into an Arrow table, registered with
DuckDB and written with one ``INSERT ... SELECT`` (deduplicated against the table
by an anti-join on the natural key), inside one transaction per batch, so a
failing or killed batch leaves the database as it was.

The natural key of an experiment is ``(arch_id, dataset_id, split, seed, source)``;
ingesting the same record twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lde.archs import ArchRow, arch_row, family_of, nb201_rows
from lde.errors import (
    DatabaseError,
    DatasetConflict,
    IngestError,
    LDEError,
    LockedError,
    OldSchemaError,
    SchemaError,
)
from lde.parquet_io import (
    FORMAT,
    FORMAT_VERSION,
    check_arch_ids,
    copy_models,
    copy_tables,
    read_manifest,
    sql_path,
    stage_experiments,
)
from lde.rows import (
    SPLITS,
    DatasetRow,
    ExperimentRecord,
    ExperimentSet,
    IngestReport,
    Progress,
    check_accuracy,
    dataset_id_for,
    is_number,
)
from lde.schema import SCHEMA_VERSION, current_version, migrate
from lde.selection import select_adaptive
from lde.tables import EXPERIMENT_COLUMNS, arch_table, experiment_table
from tapas.core.arch import ArchError, Architecture, from_nb201, is_nb201_string, parse_cell
from tapas.core.arch.cache import budget, budgeted, network_bytes, sizeof
from tapas.core.config import get_settings, thread_budget
from tapas.core.lazy import LazyImport
from tapas.core.records import check_record, whole
from tapas.core.types import (
    MODEL_FILE_NAME,
    PREDICTOR_ID,
    PredictorIdError,
    PredictorInfo,
    check_predictor_id,
    covering_first,
    is_model_file_name,
    parse_arch,
)

duckdb = LazyImport("duckdb")
pa = LazyImport("pyarrow")
pc = LazyImport("pyarrow.compute")

_ARCHS = budgeted("lde-archs")
"""Networks rebuilt from their canonical JSON, by id (content-addressed, so shared by every
open store), under their share of TAPAS_CACHE_MB (:mod:`tapas.core.arch.cache`)."""
_COLUMNS = budgeted("lde-columns")
"""Each open store's experiments table as codes (:meth:`Store._columns`), by its bytes."""

# ----------------------------------------------------------------------------- helpers
def _holder(message: str) -> str:
    m = re.search(r"held in (.+?) \(PID (\d+)\)", message)
    return f"PID {m.group(2)}, {Path(m.group(1)).name}" if m else ""


def _unregister(con: Any, name: str) -> None:
    """Drop a registered Arrow view; quiet when the transaction is already aborted."""
    with suppress(duckdb.Error):
        con.unregister(name)


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


def identity_differences(row: DatasetRow, fingerprint: str | None, n_classes: int | None,
                         input_shape: Sequence[int] | None, dcn: float | None, *,
                         probing: bool = False) -> list[str]:
    """What registering ``row.name`` for this content would change; empty when it is the
    same dataset. The one rule for a dataset's identity (uploads, ``tapas dcn``,
    ``tapas ingest --dcn``, experiment runs): equal fingerprints are the same data (a
    re-probe may update the DCN); otherwise the name must keep its fingerprint, class
    count, input shape and DCN. ``dcn=None`` keeps the stored DCN, unless ``probing``:
    a DCN is about to be computed for data the row cannot vouch for."""
    if row.fingerprint and fingerprint:
        if row.fingerprint == fingerprint:
            return []
        return [f"stored fingerprint {row.fingerprint[:16]}, these data {fingerprint[:16]}"]
    diffs = []
    if n_classes is not None and int(n_classes) != int(row.n_classes):
        diffs.append(f"stored with {row.n_classes} classes, these have {int(n_classes)}")
    if input_shape is not None and tuple(int(v) for v in input_shape) != tuple(row.input_shape):
        diffs.append(f"stored input shape {'x'.join(map(str, row.input_shape))}, these "
                     f"{'x'.join(str(int(v)) for v in input_shape)}")
    if row.dcn is not None:
        how = (row.dcn_meta or {}).get("method") or "unknown method"
        if dcn is not None and abs(float(dcn) - float(row.dcn)) > 1e-9:
            diffs.append(f"stored DCN {row.dcn:.4f} ({how}), new DCN {float(dcn):.4f}")
        elif dcn is None and probing:
            diffs.append(f"stored DCN {row.dcn:.4f} ({how}) was not computed from these data")
    return diffs


# ------------------------------------------------------------------------------- store
class Store:
    """An open LDE. ``Store(path=None, read_only=False)``; use as a context manager.

    Raises :class:`~lde.errors.LockedError` when another process holds the file.
    One ``Store`` may be shared by threads (calls are serialised). DCN filters answer
    from an in-memory copy of the experiment columns when the table has at most
    ``cache_rows`` rows (0: always query DuckDB).
    """

    def __init__(self, path: str | Path | None = None, read_only: bool = False,
                 cache_rows: int = CACHE_MAX_ROWS) -> None:
        if path is None:
            path = get_settings().database
        self.path = Path(path).expanduser()
        self.read_only = read_only
        self._lock = threading.RLock()
        self._depth = 0
        self._generation = 0  # bumped by every write transaction (invalidates caches)
        self._dcn_cache: tuple[int, list[tuple[str, float, int, int]]] | None = None
        self._cols = _COLUMNS.scoped(self)  # key None: the columns at some generation
        self._cache_rows = int(cache_rows)
        if read_only and not self.path.exists():
            raise LDEError(f"no experiment database at {self.path} (ingest something first)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as e:
            if "lock" in str(e).lower():
                raise LockedError(str(self.path), _holder(str(e))) from None
            raise LDEError(f"cannot open the experiment database {self.path}: {e}") from None
        except duckdb.Error as e:
            raise SchemaError(f"{self.path} is not a usable DuckDB database: {e}") from None

        with suppress(duckdb.Error):
            self._con.execute("SET enable_progress_bar = false")
            # the process's thread budget (TAPAS_THREADS), not every core of the machine
            self._con.execute(f"SET threads = {int(thread_budget())}")
        try:
            self._init_schema()
        except BaseException:
            self._con.close()
            raise

    # ------------------------------------------------------------- lifecycle
    def _init_schema(self) -> None:
        v = current_version(self._con)
        if v is None:
            raise SchemaError(f"{self.path} is a DuckDB file but not a tapas experiment database")
        if v > SCHEMA_VERSION:
            raise SchemaError(f"{self.path} has schema version {v}, newer than this tapas "
                              f"understands ({SCHEMA_VERSION}); upgrade tapas")
        if v < SCHEMA_VERSION:
            if self.read_only:
                raise OldSchemaError(f"{self.path} has schema version {v}; open it once for "
                                     f"writing (e.g. `tapas lde stats`) to migrate it to "
                                     f"{SCHEMA_VERSION}")
            migrate(self._con, v)

    @property
    def schema_version(self) -> int:
        return int(self._q1("SELECT value FROM meta WHERE key = 'schema_version'")[0])

    def close(self) -> None:
        with self._lock:
            self._con.close()
            self._cols.drop()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, read_only={self.read_only})"

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """All writes inside commit together or not at all (nestable)."""
        with self._lock:
            if self.read_only:
                raise LDEError(f"{self.path} is open read-only")
            if self._depth:
                self._depth += 1
                try:
                    yield self._con
                finally:
                    self._depth -= 1
                return

            self._con.execute("BEGIN TRANSACTION")
            self._depth = 1
            try:
                yield self._con
            except BaseException as e:
                self._depth = 0
                self._generation += 1
                self._con.execute("ROLLBACK")
                if isinstance(e, duckdb.Error):
                    raise DatabaseError(f"database error in {self.path} (nothing was "
                                        f"written): {e}") from e
                raise
            self._depth = 0
            self._generation += 1
            try:
                self._con.execute("COMMIT")
            except duckdb.Error as e:
                raise DatabaseError(f"database error in {self.path} (nothing was written): "
                                    f"{e}") from e

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """DuckDB's errors as :class:`~lde.errors.DatabaseError` (callers import no duckdb)."""
        try:
            yield
        except duckdb.Error as e:
            raise DatabaseError(f"database error in {self.path}: {e}") from e

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """The DuckDB connection, held exclusively for a bulk read (e.g. an export); its
        errors come out as :class:`~lde.errors.DatabaseError`."""
        with self._lock, self._errors():
            yield self._con

    def _q(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self._lock, self._errors():
            return self._con.execute(sql, params or []).fetchall()

    def _q1(self, sql: str, params: Sequence[Any] | None = None) -> tuple:
        rows = self._q(sql, params)
        return rows[0] if rows else ()

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run a read query and return Arrow (for notebooks and ad-hoc analysis)."""
        with self._lock, self._errors():
            return self._con.sql(query, params=params or None).to_arrow_table()

    # -------------------------------------------------------------- datasets
    def check_dataset(self, name: str, fingerprint: str | None, n_classes: int | None,
                      input_shape: Sequence[int] | None, dcn: float | None = None, *,
                      probing: bool = False) -> DatasetRow | None:
        """The stored dataset ``name`` (None when the name is free); raise
        :class:`~lde.errors.DatasetConflict` when this content may not take it
        (:func:`identity_differences`). Callers check before slow work; :meth:`upsert_dataset`
        checks again when it writes."""
        did = dataset_id_for(name)
        row = self.dataset(did)
        if row is not None and row.id == did:
            diffs = identity_differences(row, fingerprint, n_classes, input_shape, dcn,
                                         probing=probing)
            if diffs:
                raise DatasetConflict(name, diffs)
            return row
        return None

    def upsert_dataset(self, name: str, fingerprint: str | None, n_samples: int | None,
                       n_classes: int, input_shape: Sequence[int], dcn: float | None = None,
                       dcn_meta: dict[str, Any] | None = None, source: str = "user") -> str:
        """Add a dataset, or update one by name when it is the same dataset; returns its id.
        ``dcn=None`` keeps a stored DCN. Other content under a stored name raises
        :class:`~lde.errors.DatasetConflict` (:func:`identity_differences`), never a silent
        overwrite; :meth:`replace_dcn` is the explicit way to replace a DCN."""
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise LDEError(f"dataset name must be a non-empty string of at most 200 "
                           f"characters, got {name!r}")
        k = whole(n_classes, "n_classes", 2)
        if k is None:
            raise LDEError("n_classes is required")
        shape = [int(x) for x in input_shape]
        if len(shape) != 3 or min(shape) < 1:
            raise LDEError(f"input_shape must be [channels, height, width], got {input_shape!r}")
        if dcn is not None:
            dcn = check_accuracy(dcn, "dcn")
        ns = None if isinstance(n_samples, float) and math.isnan(n_samples) else whole(
            n_samples, "n_samples")  # a missing count read from Parquet is NaN
        did = dataset_id_for(name)
        meta = json.dumps(dcn_meta, sort_keys=True) if dcn_meta is not None else None
        with self.transaction() as con:
            self.check_dataset(name, fingerprint, k, shape, dcn)
            con.execute(
                """INSERT INTO datasets (id, name, fingerprint, n_samples, n_classes, input_shape,
                       dcn, dcn_meta, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET
                       fingerprint = coalesce(excluded.fingerprint, fingerprint),
                       n_samples = coalesce(excluded.n_samples, n_samples),
                       n_classes = excluded.n_classes, input_shape = excluded.input_shape,
                       dcn = coalesce(excluded.dcn, dcn),
                       dcn_meta = CASE WHEN excluded.dcn IS NULL THEN dcn_meta
                                       ELSE excluded.dcn_meta END,
                       source = excluded.source, updated_at = now()""",
                [did, name, fingerprint, ns, k, shape, dcn, meta, source])
        return did

    def discard_dataset(self, dataset_id: str) -> None:
        """Remove a dataset no experiment refers to (one an ingest registered but stored no
        record for: a rejected batch stores nothing); ``LDEError`` when it has experiments."""
        with self.transaction() as con:
            n = con.execute("SELECT count(*) FROM experiments WHERE dataset_id = ?",
                            [dataset_id]).fetchone()[0]
            if n:
                raise LDEError(f"dataset {dataset_id!r} has {n} experiments; not removed")
            con.execute("DELETE FROM datasets WHERE id = ?", [dataset_id])

    def set_dcn(self, dataset_id: str, dcn: float, meta: dict[str, Any] | None = None) -> None:
        """Store a dataset's DCN and how it was computed (changes the snapshot id)."""
        row = self.dataset(dataset_id)
        if row is None:
            raise LDEError(f"unknown dataset {dataset_id!r}")
        d = check_accuracy(dcn, "dcn")
        with self.transaction() as con:
            con.execute("UPDATE datasets SET dcn = ?, dcn_meta = ?, updated_at = current_timestamp "
                        "WHERE id = ?", [d, json.dumps(meta or {}, sort_keys=True), row.id])

    def replace_dcn(self, dataset_id: str, dcn: float, meta: dict[str, Any]) -> DatasetRow:
        """Replace a dataset's DCN and ``dcn_meta`` in one transaction, keeping what it
        replaces in ``dcn_meta["replaced"]`` (``dcn``, ``method`` and the previous
        ``meta``). The row (id, name, shape, classes, source) and its experiments stay as
        they are; the write changes the snapshot id and every cached DCN table. Returns
        the updated row."""
        d = check_accuracy(dcn, "dcn")
        with self.transaction() as con:
            rows = con.execute(f"SELECT {self._DS_COLS} FROM datasets WHERE id = ?",
                               [dataset_id]).fetchall()
            if not rows:
                raise LDEError(f"unknown dataset {dataset_id!r}")
            old = self._ds(rows[0])
            prev = old.dcn_meta or {}
            new = {**meta, "replaced": {"dcn": old.dcn, "method": prev.get("method"),
                                        "meta": prev or None}}
            con.execute("UPDATE datasets SET dcn = ?, dcn_meta = ?, updated_at = now() "
                        "WHERE id = ?", [d, json.dumps(new, sort_keys=True), old.id])
        row = self.dataset(old.id)
        assert row is not None
        return row

    _DS_COLS = "id, name, fingerprint, n_samples, n_classes, input_shape, dcn, dcn_meta, source"

    @staticmethod
    def _ds(r: tuple) -> DatasetRow:
        return DatasetRow(r[0], r[1], r[2], r[3], int(r[4]), tuple(r[5]), r[6],
                          json.loads(r[7]) if r[7] else None, r[8])

    def dataset(self, id_or_name: str) -> DatasetRow | None:
        rows = self._q(f"SELECT {self._DS_COLS} FROM datasets WHERE id = ? OR name = ? "
                       "ORDER BY (id = ?) DESC LIMIT 1", [id_or_name, id_or_name, id_or_name])
        return self._ds(rows[0]) if rows else None

    def dataset_by_fingerprint(self, fingerprint: str) -> DatasetRow | None:
        rows = self._q(f"SELECT {self._DS_COLS} FROM datasets WHERE fingerprint = ? "
                       "ORDER BY updated_at DESC LIMIT 1", [fingerprint])
        return self._ds(rows[0]) if rows else None

    def datasets(self) -> list[DatasetRow]:
        return [self._ds(r) for r in self._q(f"SELECT {self._DS_COLS} FROM datasets ORDER BY name")]

    # --------------------------------------------------------- architectures
    def insert_architectures(self, rows: Sequence[ArchRow], source: str) -> int:
        """Add architecture rows not yet stored (one transaction); how many were new."""
        if not rows:
            return 0
        with self.transaction() as con:
            con.register("_new_archs", arch_table(rows, source))
            try:
                before = con.execute("SELECT count(*) FROM architectures").fetchall()[0][0]
                con.execute(
                    """INSERT INTO architectures (id, canonical_json, params, flops, n_layers,
                           num_classes, input_shape, source, added_at, family, nb201_cell)
                       SELECT n.id, n.canonical_json, n.params, n.flops, n.n_layers,
                              n.num_classes, n.input_shape, n.source, current_timestamp,
                              n.family, n.nb201_cell
                       FROM (SELECT * FROM _new_archs
                             QUALIFY row_number() OVER (PARTITION BY id) = 1) n
                       ANTI JOIN architectures a ON a.id = n.id""")
                after = con.execute("SELECT count(*) FROM architectures").fetchall()[0][0]
            finally:
                _unregister(con, "_new_archs")
        return int(after - before)

    def add_architectures(self, archs: Iterable[Architecture], source: str = "user") -> int:
        """Store architectures (already present ones are skipped); returns how many were new."""
        return self.insert_architectures([arch_row(a) for a in archs], source)

    def architectures(self, ids: Iterable[str]) -> dict[str, Architecture]:
        """Rebuild :class:`~tapas.core.arch.Architecture` objects by id (unknown ids are absent).

        NAS-Bench-201 networks come from :func:`tapas.core.arch.from_nb201` (cached process-wide);
        others from their canonical JSON (cached process-wide, under TAPAS_CACHE_MB).
        """
        want = list(dict.fromkeys(str(i) for i in ids))
        out: dict[str, Architecture] = {}
        for i in want:
            hit = _ARCHS.get(i)
            if hit is not None:
                out[i] = hit
        todo = [i for i in want if i not in out]
        if not todo:
            return out
        with self._lock:
            self._con.register("_ids", pa.table({"id": pa.array(todo, pa.string())}))
            try:
                rows = self._con.execute(
                    """SELECT a.id, a.canonical_json, a.nb201_cell, a.num_classes, a.input_shape
                       FROM architectures a SEMI JOIN _ids USING (id)""").fetchall()
            finally:
                _unregister(self._con, "_ids")
        for aid, cj, cell, k, shape in rows:
            if cell is not None:
                arch = from_nb201(cell, int(k), int(shape[1]), in_channels=int(shape[0]))
            else:
                arch = Architecture.from_canonical(json.loads(cj))
            if arch.id != aid:
                raise LDEError(f"architecture {aid} does not match its stored description "
                               f"(rebuilt as {arch.id}); the database is inconsistent")
            if cell is None:
                _ARCHS.put(aid, arch, network_bytes(len(arch.layers), len(aid)))
            out[aid] = arch
        return out

    # ----------------------------------------------------------- experiments
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
                    _unregister(con, src)
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
    def _split(split: Any) -> str:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        return split

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

    # --------------------------------------------------------------- queries
    def snapshot_id(self) -> str:
        """Identifies the content the filters see (experiments and DCNs); changes on writes."""
        n, hi = self._q1("SELECT count(*), coalesce(max(seq), 0) FROM experiments")
        ds = self._q1("SELECT coalesce(string_agg(id || '=' || coalesce(CAST(dcn AS VARCHAR), '-')"
                      ", ',' ORDER BY id), '') FROM datasets")[0]
        return hashlib.sha256(f"v{SCHEMA_VERSION}|{n}|{hi}|{ds}".encode()).hexdigest()[:16]

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

    # ------------------------------------------------------------ predictors
    def register_predictor(self, id: str, dcn: float, tau: float, dcn_lo: float, dcn_hi: float,
                           snapshot: str, n_train: int, metrics: dict[str, Any], artifact: str,
                           provenance: dict[str, Any]) -> None:
        """Record a trained predictor (replacing one of the same id). ``id`` must be a
        predictor id and ``artifact`` a plain file name in the model directory: neither is
        ever a path (an older database's absolute artifacts are still read, never written)."""
        try:
            check_predictor_id(id)
        except PredictorIdError as e:
            raise LDEError(str(e)) from None
        if not is_model_file_name(artifact):
            raise LDEError(f"predictor {id}: model file {str(artifact)[:80]!r} is not a plain "
                           "file name in the model directory")
        if not dcn_lo <= dcn <= dcn_hi:
            raise LDEError(f"predictor range [{dcn_lo}, {dcn_hi}] must contain its dcn {dcn}")
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO predictors (id, dcn, tau, dcn_lo, dcn_hi, "
                        "snapshot, n_train, metrics, artifact, provenance) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [id, float(dcn), float(tau), float(dcn_lo), float(dcn_hi), snapshot,
                         int(n_train), json.dumps(metrics, sort_keys=True, default=str),
                         str(artifact), json.dumps(provenance, sort_keys=True, default=str)])

    _P_COLS = ("id, dcn, tau, dcn_lo, dcn_hi, snapshot, n_train, metrics, artifact, provenance, "
               "created_at")

    @staticmethod
    def _pred(r: tuple) -> PredictorInfo:
        prov = json.loads(r[9])
        created = r[10].isoformat() if hasattr(r[10], "isoformat") else r[10]
        return PredictorInfo(r[0], float(r[1]), float(r[2]), float(r[3]), float(r[4]), r[5],
                             int(r[6]), tuple(prov.get("datasets") or ()), json.loads(r[7]),
                             r[8], None, created, prov)

    def covering_predictors(self, dcn: float, snapshot: str | None = None
                            ) -> list[PredictorInfo]:
        """Registered predictors whose [dcn_lo, dcn_hi] covers ``dcn`` (trained at
        ``snapshot``, if given), in the order they answer
        (:func:`tapas.core.types.covering_first`: nearest DCN, then newest)."""
        where, params = ("WHERE snapshot = ?", [snapshot]) if snapshot is not None else ("", [])
        rows = self._q(f"SELECT {self._P_COLS} FROM predictors {where}", params)
        return covering_first((self._pred(r) for r in rows), dcn)

    def predictors(self) -> list[PredictorInfo]:
        """Every registered predictor, oldest first."""
        return [self._pred(r) for r in
                self._q(f"SELECT {self._P_COLS} FROM predictors ORDER BY created_at, id")]

    def predictor(self, id: str) -> PredictorInfo | None:
        rows = self._q(f"SELECT {self._P_COLS} FROM predictors WHERE id = ?", [id])
        return self._pred(rows[0]) if rows else None

    def delete_predictor(self, id: str) -> bool:
        with self.transaction() as con:
            n = con.execute("SELECT count(*) FROM predictors WHERE id = ?", [id]).fetchall()[0][0]
            con.execute("DELETE FROM predictors WHERE id = ?", [id])
        return bool(n)

    # ----------------------------------------------------------------- stats
    def counts(self) -> dict[str, int]:
        r = self._q1("""SELECT (SELECT count(*) FROM datasets),
                               (SELECT count(*) FROM architectures),
                               (SELECT count(DISTINCT family) FROM architectures),
                               (SELECT count(*) FROM experiments),
                               (SELECT count(*) FROM predictors)""")
        return dict(zip(("datasets", "architectures", "families", "experiments", "predictors"),
                        (int(x) for x in r), strict=True))

    def stats(self) -> dict[str, Any]:
        """Totals, the DCN range, the datasets per input shape, and one summary per dataset
        (DCN, experiment counts by split, accuracy)."""
        per = self._q("""SELECT d.id, d.name, d.dcn, d.n_classes, d.input_shape, d.source,
                                count(e.seq), count(DISTINCT e.arch_id),
                                count(e.seq) FILTER (WHERE e.split = 'test'),
                                count(e.seq) FILTER (WHERE e.split = 'valid'),
                                count(e.seq) FILTER (WHERE e.split = 'train'),
                                avg(e.accuracy), max(e.accuracy)
                         FROM datasets d LEFT JOIN experiments e ON e.dataset_id = d.id
                         GROUP BY ALL ORDER BY d.dcn NULLS LAST, d.name""")
        keys = ("id", "name", "dcn", "n_classes", "input_shape", "source", "experiments",
                "architectures", "test", "valid", "train", "mean_accuracy", "max_accuracy")
        datasets = [dict(zip(keys, r, strict=True)) for r in per]
        shapes: dict[str, int] = {}
        for d in datasets:
            d["input_shape"] = list(d["input_shape"])
            key = "x".join(map(str, d["input_shape"]))
            shapes[key] = shapes.get(key, 0) + 1
        dcns = [d["dcn"] for d in datasets if d["dcn"] is not None]
        return {"path": str(self.path), "schema_version": self.schema_version,
                "snapshot": self.snapshot_id(), **self.counts(),
                "dcn_min": min(dcns, default=None), "dcn_max": max(dcns, default=None),
                "input_shapes": dict(sorted(shapes.items())), "per_dataset": datasets}

    # ------------------------------------------------------------ parquet io
    def export_parquet(self, directory: str | Path, progress: Progress | None = None,
                       overwrite: bool = False, model_dir: str | Path | None = None
                       ) -> dict[str, Any]:
        """Write the whole LDE to ``directory`` (created; must be empty unless
        ``overwrite``) as partitioned Parquet (the format: :mod:`lde.parquet_io`).

        Predictors are exported by model file name (never an absolute path of this
        machine); with ``model_dir`` (where relative names resolve) their files are copied
        into ``models/``, so the export carries everything its registry names.
        """
        directory = Path(directory)
        if directory.exists() and any(directory.iterdir()):
            if not overwrite:
                raise IngestError(f"{directory} exists and is not empty; choose a new folder")
            shutil.rmtree(directory)
        tmp = directory.with_name(directory.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        steps = ["datasets", "architectures", "predictors", "experiments"]
        try:
            with self.connection() as con:
                paths = copy_tables(con, tmp, steps, progress)
                counts = self.counts()
                manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                            "schema_version": SCHEMA_VERSION, "snapshot": self.snapshot_id(),
                            "counts": counts, "source_path": str(self.path),
                            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            manifest["models"] = copy_models(paths, model_dir, tmp / "models") if model_dir else 0
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            if directory.exists():
                directory.rmdir()
            tmp.rename(directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if progress:
            progress("export", len(steps), len(steps))
        return {"path": str(directory), **manifest}

    def import_parquet(self, directory: str | Path, progress: Progress | None = None,
                       verify: bool = False, max_listed: int = 1000) -> IngestReport:
        """Merge an export (or shipped data) at ``directory`` into this LDE, idempotently, in
        one transaction (the format: :mod:`lde.parquet_io`).

        ``verify`` re-expands every NAS-Bench-201 architecture (about 0.5 ms each) instead
        of a sample; at most ``max_listed`` rejected experiments are listed one by one.
        """
        directory = Path(directory)
        read_manifest(directory)
        rep = IngestReport()
        t0 = time.perf_counter()
        files = {t: directory / f"{t}.parquet" for t in ("datasets", "architectures", "predictors")}
        for f in files.values():
            if not f.is_file():
                raise IngestError(f"{directory} is missing {f.name}")
        has_exps = any((directory / "experiments").glob("*/*.parquet"))

        def step(i: int) -> None:
            if progress:
                progress("import", i, 5)

        step(0)
        with self.transaction() as con:
            # datasets: new ones inserted; a missing DCN filled in from the export
            con.execute(f"CREATE OR REPLACE TEMP VIEW _imp_ds AS SELECT * FROM "
                        f"read_parquet({sql_path(files['datasets'])})")
            before = con.execute("SELECT count(*) FROM datasets").fetchall()[0][0]
            con.execute("""INSERT INTO datasets SELECT i.* FROM _imp_ds i
                           ANTI JOIN datasets d ON d.id = i.id""")
            con.execute("""UPDATE datasets SET dcn = i.dcn, dcn_meta = i.dcn_meta
                           FROM _imp_ds i WHERE datasets.id = i.id AND datasets.dcn IS NULL
                             AND i.dcn IS NOT NULL""")
            rep.datasets_added = int(con.execute("SELECT count(*) FROM datasets").fetchall()[0][0]
                                     - before)
            step(1)
            # architectures not yet stored, checked against their descriptions
            new = con.execute(
                f"""SELECT i.file_row_number + 1, i.id, i.canonical_json, i.nb201_cell,
                           i.num_classes, i.input_shape, i.family, i.params, i.flops, i.n_layers,
                           i.source, i.added_at
                    FROM read_parquet({sql_path(files['architectures'])}, file_row_number = true) i
                    ANTI JOIN architectures a ON a.id = i.id""").fetchall()
            bad = check_arch_ids([r[:6] for r in new], rep, verify)
            good = [r for r in new if r[1] not in bad]
            if good:
                # family is recomputed from the canonical JSON (exports made before the
                # family was defined as Architecture.template_id carry an older hash)
                rows = [ArchRow(r[1], family_of(json.loads(r[2])) if r[2] is not None else r[6],
                                r[2], r[7], r[8], r[9], r[4], tuple(r[5]), r[3]) for r in good]
                self.insert_architectures(rows, "import")
                # keep the exported source and time of each architecture
                con.register("_imp_arch_meta", pa.table({
                    "id": [r[1] for r in good], "source": [r[10] for r in good],
                    "added_at": pa.array([r[11] for r in good], pa.timestamp("us"))}))
                con.execute("""UPDATE architectures SET source = m.source, added_at = m.added_at
                               FROM _imp_arch_meta m WHERE architectures.id = m.id""")
                con.unregister("_imp_arch_meta")
            rep.architectures_added = len(good)
            step(2)
            if has_exps:
                stage_experiments(con, directory, bad, rep, max_listed)
                step(3)
                self.ingest_rows([], "_imp_ok", kind="import", origin=str(directory), report=rep)
                con.execute("DROP VIEW _imp_ok")
                con.execute("DROP TABLE _imp_exp")
            step(4)
            # predictors: an id or model file name that could be a path is refused (a
            # crafted export must not make a later delete or load reach outside the model dir)
            ok = (f"regexp_full_match(CAST(id AS VARCHAR), '{PREDICTOR_ID.pattern}') AND "
                  f"regexp_full_match(CAST(artifact AS VARCHAR), '{MODEL_FILE_NAME.pattern}')")
            for pid, art in con.execute(
                    f"SELECT id, artifact FROM read_parquet({sql_path(files['predictors'])}) "
                    f"WHERE NOT coalesce({ok}, false) LIMIT 20").fetchall():
                rep.rejected.append((
                    "predictors.parquet", f"predictor {str(pid)[:80]!r} with model file "
                    f"{str(art)[:80]!r}: not a predictor id and plain file name; skipped"))
            con.execute(f"""INSERT INTO predictors SELECT i.* FROM
                            (SELECT * FROM read_parquet({sql_path(files['predictors'])})
                             WHERE coalesce({ok}, false)) i
                            ANTI JOIN predictors p ON p.id = i.id""")
            con.execute("DROP VIEW _imp_ds")
        step(5)
        rep.seconds = time.perf_counter() - t0
        return rep

    def seed_shipped(self, directory: Path, present: bool, what: str) -> IngestReport | None:
        """Merge an export shipped inside the package (idempotent); None, with
        a warning naming ``what``, when this installation left it out."""
        if not present:
            warnings.warn(f"{what} not found in {directory}; the database starts without it",
                          RuntimeWarning, stacklevel=3)
            return None
        return self.import_parquet(directory)


__all__ = ["SPLITS", "DatasetRow", "ExperimentRecord", "ExperimentSet", "IngestReport",
           "PredictorInfo", "Store", "check_accuracy", "dataset_id_for", "experiment_table",
           "family_of"]
