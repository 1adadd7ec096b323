"""What every part of the pipeline shares: its settings, its LDE and the predictors it
holds in memory; opening the LDE (and, on first use, seeding it) and closing it."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from lde import OldSchemaError, Store
from lde.default_data import seed_default
from lde.selection import MIN_EXPERIMENTS
from tapas.app.pipeline.identity import DEFAULT_PREDICTOR_PARAMS, register_shipped, selection
from tapas.core.arch.cache import budget_set, budgeted, set_budget
from tapas.core.config import get_settings
from tapas.core.device import apply_threads
from tapas.core.types import PredictorInfo

_PREDICTORS = budgeted("predictors")
"""Predictors each pipeline holds in memory (pinned ones, e.g. the service's default, stay
outside the pool), by their estimated memory
(:meth:`~tapas.app.pipeline.memory.MemoryMixin._model_bytes`)."""
_REQUESTS = budgeted("train-requests")
"""Train requests answered, for the fast path (same request at the same snapshot)."""
_EXCLUDED = budgeted("excluded-ids")
"""Dataset ids of the names a request excludes."""


def apply_cache_setting() -> None:
    """The pool's budget from ``TAPAS_CACHE_MB`` unless this process set one already: the
    CLI and scripts honour it as the service does."""
    if not budget_set():
        set_budget(int(get_settings().cache_mb * 2**20))


def _starter_state(store: Store) -> str | None:
    rows = store.sql("SELECT value FROM meta WHERE key = 'starter'").column(0).to_pylist()
    return rows[0] if rows else None


class PipelineBase:
    """The state the parts of :class:`~tapas.app.pipeline.Pipeline` share, and its
    lifecycle (the parameters are documented there)."""

    def __init__(self, database: str | Path | None = None, *, store: Store | None = None,
                 model_dir: str | Path | None = None, read_only: bool = False,
                 predictor_params: dict[str, Any] | None = None,
                 min_experiments: int | None = None, max_loaded: int | None = None,
                 seed: bool = True, upgrade: bool = False, shipped: bool = True) -> None:
        apply_threads()  # the thread budget, once per process (a no-op after the CLI's)
        apply_cache_setting()  # TAPAS_CACHE_MB, unless this process set a budget itself
        if max_loaded is not None:
            warnings.warn("Pipeline(max_loaded=...) is ignored: loaded predictors share the "
                          "one cache budget, TAPAS_CACHE_MB", DeprecationWarning, stacklevel=2)
        self._database = None if database is None else Path(database).expanduser()
        self._store = store
        self._own_store = store is None
        self._model_dir = None if model_dir is None else Path(model_dir).expanduser()
        self.read_only = read_only
        self.seed = seed
        self.upgrade = upgrade
        self.shipped = shipped
        self.predictor_params = {**DEFAULT_PREDICTOR_PARAMS, **(predictor_params or {})}
        self.min_experiments = MIN_EXPERIMENTS if min_experiments is None else int(
            min_experiments)
        self._open_lock = threading.Lock()
        self._train_lock = threading.Lock()
        self._mem_lock = threading.Lock()
        # pid -> (model, info, load order): the pinned held for good, the rest in the pool
        self._pinned: dict[str, tuple[Any, PredictorInfo, int]] = {}
        self._loaded = _PREDICTORS.scoped(self)
        self._seq = 0
        self._resolved = _REQUESTS.scoped(self)
        self._excluded = _EXCLUDED.scoped(self)

    @property
    def database(self) -> Path:
        if self._store is not None:
            return Path(self._store.path)
        if self._database is not None:
            return self._database

        return get_settings().database

    @property
    def model_dir(self) -> Path:
        if self._model_dir is not None:
            return self._model_dir

        return get_settings().models

    @property
    def store(self) -> Store:
        """The open LDE (opened, and on first use created and seeded, when first needed;
        ``lde.LDEError`` when it cannot be, e.g. another process holds it)."""
        if self._store is None:
            with self._open_lock:
                if self._store is None:
                    self._store = self._open()
        return self._store

    def _open(self) -> Store:
        """Open the LDE (read-only when asked; with ``upgrade``, finishing what a reader
        cannot first, see :meth:`_open_writable`)."""
        if not self.read_only:
            return self._open_writable()
        try:
            store = Store(self.database, read_only=True)
        except OldSchemaError:
            if not self.upgrade:
                raise
        else:
            if not (self.upgrade and self.seed and _starter_state(store) == "pending"):
                return store
            store.close()
        self._open_writable().close()
        return Store(self.database, read_only=True)

    def _open_writable(self) -> Store:
        """Open the LDE for writing. Seeding a new database is recorded in it: the file is
        built aside with a ``starter = pending`` mark and renamed into place, then the
        shipped data and ``starter = done`` commit in one transaction. A start killed at
        any point leaves either no database or a pending mark, and the next writable open
        seeds (again) until it has committed. The shipped predictors are registered in the
        same transaction (:func:`~tapas.app.pipeline.identity.register_shipped`; their
        files are unpacked when first used)."""
        db = self.database
        if not db.exists() and self.seed:
            db.parent.mkdir(parents=True, exist_ok=True)
            aside = db.with_name(db.name + ".new")
            for f in (aside, aside.with_name(aside.name + ".wal")):
                f.unlink(missing_ok=True)
            with Store(aside) as fresh, fresh.transaction() as con:
                con.execute("INSERT OR REPLACE INTO meta VALUES ('starter', 'pending')")
            aside.replace(db)
        store = Store(db)
        if self.seed and _starter_state(store) == "pending":
            try:
                with store.transaction() as con:
                    seed_default(store)
                    if self.shipped:
                        register_shipped(store, self.min_experiments, self.predictor_params)
                    con.execute("INSERT OR REPLACE INTO meta VALUES ('starter', 'done')")
            except BaseException:
                store.close()
                raise
        return store

    def _selection(self, store: Store, dcn: float, exclude_datasets: Sequence[str] = (),
                   with_curves: bool = False) -> tuple[Any, float, str | None]:
        """:func:`~tapas.app.pipeline.identity.selection` under this pipeline's settings."""
        return selection(store, dcn, self.min_experiments, self.predictor_params,
                         exclude_datasets, with_curves)

    def open(self) -> Self:
        """Open the database now (so a locked or unusable file fails here, cleanly)."""
        _ = self.store
        return self

    def close(self) -> None:
        """Close the database if this pipeline opened it; forget loaded predictors."""
        self.unload()
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None

    def unload(self) -> None:
        """Forget the predictors held in memory (pinned ones included); the next request
        loads from the registry, as after a restart."""
        with self._mem_lock:
            self._pinned.clear()
        for cache in (self._loaded, self._resolved, self._excluded):
            cache.drop()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Pipeline({str(self.database)!r}, model_dir={str(self.model_dir)!r})"
