"""The Lifelong Database of Experiments (LDE): every training run ever ingested, in DuckDB.

Contract (others code against these names)::

    from lde import Store, ExperimentRecord, LockedError

    with Store() as store:                      # default path: get_settings().database
        did = store.upsert_dataset("digits-noisy", fingerprint, 1797, 10, (1, 8, 8),
                                   dcn=0.71, dcn_meta={"method": "probenet"})
        store.add_architectures(archs)                           # -> number new
        rep = store.add_experiments([ExperimentRecord(arch, "digits-noisy", 0.93)])
        s = store.filter_by_dcn(0.7, 0.05, exclude_datasets=["target"])
        s, tau = store.filter_adaptive(0.7, min_experiments=500, min_datasets=2)
        archs = store.architectures(s.arch_ids())                # id -> Architecture
        snap = store.snapshot_id()
        store.register_predictor(pid, dcn, tau, lo, hi, snap, len(s), metrics, path, prov)
        store.covering_predictors(0.71)

* :class:`Store` -- open/create the DuckDB file (schema created and migrated on
  open); datasets (:meth:`~Store.upsert_dataset`, :meth:`~Store.dataset`,
  :meth:`~Store.dataset_by_fingerprint`, :meth:`~Store.set_dcn`,
  :meth:`~Store.datasets`), architectures (:meth:`~Store.add_architectures`,
  :meth:`~Store.architectures`), experiments (:meth:`~Store.add_experiments`,
  :meth:`~Store.ingest_rows` for Arrow batches), DCN filters
  (:meth:`~Store.filter_by_dcn`, :meth:`~Store.filter_adaptive`), the predictor
  registry (:meth:`~Store.register_predictor`, :meth:`~Store.covering_predictors`,
  :meth:`~Store.predictors`, :meth:`~Store.predictor`), :meth:`~Store.stats`,
  :meth:`~Store.snapshot_id`, Parquet :meth:`~Store.export_parquet` /
  :meth:`~Store.import_parquet` (also how starter data seeds a new database).
* :class:`ExperimentSet` -- numpy columns ``arch_id``, ``dataset_id``, ``dcn``,
  ``accuracy``, ``num_classes``, ``split``; ``curves`` (when asked for); ``tau``
  used; ``arch_ids()`` for :meth:`Store.architectures`.
* Architecture identity is :attr:`tapas.core.arch.Architecture.id` (exact network,
  input shape and classes included); ``family`` groups the same network body
  across datasets (one NAS-Bench-201 cell = one family).
* Errors: :class:`LDEError` (base), :class:`LockedError` (another process holds
  the file: DuckDB allows one writer), :class:`SchemaError`, :class:`IngestError`.
* File formats: :mod:`lde.ingest` (own records, NAS-Bench-201 tables),
  :mod:`lde.parquet_io` (export folders).

``lde`` never imports torch; duckdb and pyarrow are imported when a store opens.
"""

from __future__ import annotations

from lde.errors import (
    DatabaseError,
    DatasetConflict,
    IngestError,
    LDEError,
    LockedError,
    OldSchemaError,
    SchemaError,
)
from lde.schema import SCHEMA_VERSION
from lde.store import (
    DatasetRow,
    ExperimentRecord,
    ExperimentSet,
    IngestReport,
    Store,
    dataset_id_for,
)

__all__ = ["SCHEMA_VERSION", "DatabaseError", "DatasetRow", "ExperimentRecord", "ExperimentSet",
           "DatasetConflict", "IngestError", "IngestReport", "LDEError", "LockedError",
           "OldSchemaError", "SchemaError", "Store", "dataset_id_for"]
