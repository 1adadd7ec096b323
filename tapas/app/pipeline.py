"""The application layer: dataset -> DCN -> LDE filter -> trained TAP -> predictions.

:class:`Pipeline` is the one object the service, the CLI and the in-process scorer
call. It owns the open LDE (``lde.Store``) and the model directory, and it alone
decides which predictor answers a request:

* :meth:`Pipeline.train` trains a predictor for a target DCN, or reuses one: a
  predictor is identified by the content of the experiments its DCN filter selects
  (:func:`selection_key`), its hyper-parameters and the datasets it must leave out
  (:func:`predictor_key`), so a second request whose filter selects the same
  experiments gets the same model back, whatever unrelated data the LDE gained.
* :meth:`Pipeline.select` answers a prediction request without training: the
  registered predictor the request names by id (pinned: the same answers whatever is
  trained later), else a predictor held in memory whose DCN range covers the target
  (trained for the nearest DCN, newest first), else one from the registry, else
  :class:`~tapas.core.errors.NoPredictor` (train one first, or pass ``train=True``).

A new database starts with the predictors shipped with tapas registered
(:mod:`lde.shipped_predictors`, built by ``python -m tapas.app.release`` on the same shipped
data): :meth:`Pipeline.train` finds them by the same key, so on a fresh install the
first predictor for a DCN of the release grid is a lookup, and :meth:`Pipeline.select`
finds one covering any DCN. Their files are unpacked into the model directory when first
used.

The registry stores each model file's name relative to the model directory
(:func:`model_path`), so a database and its model folder move together; predictors are
listed, shown, exported, imported and deleted through the pipeline too. A predictor id
(:func:`~tapas.core.types.check_predictor_id`) and a model file name are names, never paths:
every id from a user or a file is checked before it is looked up or names a file.

Everything heavy (torch, duckdb) is imported when first used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import predictor as tap
import probenet
from lde import IngestReport, OldSchemaError, Store
from lde.default_data import seed_default
from lde.errors import DatasetConflict, LDEError
from lde.ingest import ingest_path, record_from_row
from lde.parquet_io import import_models
from lde.selection import MIN_DATASETS, MIN_EXPERIMENTS, TAU
from lde.shipped_predictors import ShippedError, entries, unpack
from predictor import HistoryTable
from predictor.history import dataset_geometry
from predictor.persist import MAX_FILE_BYTES, ModelFileError, content_digest, read_header
from predictor.sampling import MAX_TRAIN_ROWS, balanced_rows
from probenet import Dataset, DCNResult
from probenet.datasets import BUILTINS as BUILTIN_DATASETS
from probenet.datasets import DataLimits, DatasetError, DatasetTooLarge
from probenet.dcn import probe_settings, reuse_or_probe, store_name, stored_result
from tapas import __version__
from tapas.core.arch.cache import budget_set, budgeted, set_budget, sizeof
from tapas.core.config import get_settings
from tapas.core.device import apply_threads
from tapas.core.errors import Conflict, DatasetNotFound, NoExperiments, PredictorNotFound
from tapas.core.types import (
    Answer,
    DatasetInfo,
    NoPredictorError,
    Prediction,
    PredictorIdError,
    PredictorInfo,
    Query,
    Target,
    check_predictor_id,
    covering_first,
    is_model_file_name,
    parse_archs,
    resolve_target,
)

if TYPE_CHECKING:  # its import loads scikit-learn (1.5 s); train and load import it
    from predictor import TAPRegressor

log = logging.getLogger("tapas.app.pipeline")

#: Hyper-parameters of the predictors the pipeline trains (the estimator's defaults
#: unless overridden per pipeline).
DEFAULT_PREDICTOR_PARAMS: dict[str, Any] = {}
_PREDICTORS = budgeted("predictors")
"""Predictors each pipeline holds in memory (pinned ones, e.g. the service's default, stay
outside the pool), by their estimated memory (:func:`_model_bytes`)."""
_REQUESTS = budgeted("train-requests")
"""Train requests answered, for the fast path (same request at the same snapshot)."""
_EXCLUDED = budgeted("excluded-ids")
"""Dataset ids of the names a request excludes."""
MODEL_BYTES_PER_FILE_BYTE = 2
"""A loaded predictor's memory per byte of its model file (an 8.5 MB file: +15.9 MB of
resident memory once loaded, its arrays plus the torch networks built from them)."""


def apply_cache_setting() -> None:
    """The pool's budget from ``TAPAS_CACHE_MB`` unless this process set one already: the
    CLI and scripts honour it as the service does."""
    if not budget_set():
        set_budget(int(get_settings().cache_mb * 2**20))


def predictor_key(selection: str, datasets: Sequence[str], params: dict[str, Any],
                  excluded: Sequence[str] = ()) -> str:
    """The identity of a predictor: the content of its DCN selection
    (:func:`selection_key`), the datasets it selected, its hyper-parameters, the datasets
    its history had to leave out (a predictor that has seen a dataset never answers a
    request that excludes it) and the code version. The one place this rule lives."""
    params = {k: v for k, v in params.items() if k != "device"}  # where it runs, not what
    key = json.dumps({"selection": selection, "datasets": sorted(datasets), "params": params,
                      "excluded": sorted(excluded), "version": __version__},
                     sort_keys=True, default=str)
    return "p_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def selection_key(exps: Any) -> str:
    """Content hash of a DCN selection (which experiments, their accuracies and DCNs): a
    predictor is reused while its selection is unchanged, whatever else the LDE gains."""
    order = np.lexsort((exps.arch_id.astype(str), exps.dataset_id.astype(str)))
    h = hashlib.sha256()
    for col in (exps.dataset_id[order], exps.arch_id[order]):
        h.update("\x1f".join(col.astype(str).tolist()).encode())
    h.update(np.round(exps.accuracy[order], 9).tobytes())
    h.update(np.round(exps.dcn[order], 9).tobytes())
    return h.hexdigest()[:16]


def lde_history(store: Store, exclude_datasets: Sequence[str] = ()) -> Any:
    """What the LDE knows of each network family on every characterised dataset except
    ``exclude_datasets`` (the predictor's history features, :mod:`predictor.history`)."""
    cols = store.family_accuracies(exclude_datasets)
    return HistoryTable(cols["family"], cols["dataset_id"], cols["dcn"], cols["accuracy"],
                        dataset_geometry(cols["input_shape"], cols["n_classes"]))


def load_dataset(spec: str | Path, limits: Any = None) -> Dataset:
    """A dataset from a built-in spec, an ``.npz`` file or an image folder (``limits``:
    a ``probenet.DataLimits``, default from the settings)."""
    return probenet.load_dataset(spec, limits)


def load_predictor(path: str | Path) -> TAPRegressor:
    """A saved predictor (verified; never unpickled)."""
    return tap.load(path)


def verify_predictor(path: str | Path) -> None:
    """Raise ``ModelFileError`` (or ``OSError``) unless the file passes its checksum."""
    read_header(path)


def _starter_state(store: Store) -> str | None:
    rows = store.sql("SELECT value FROM meta WHERE key = 'starter'").column(0).to_pylist()
    return rows[0] if rows else None


def model_path(artifact: str, model_dir: str | Path) -> Path:
    """Where a registered predictor's file lies. New registrations store the file name
    relative to the model directory, so a database and its model folder move together
    (another machine, an export); absolute paths of older databases are read as they are
    (never deleted). A relative name that is not a plain file name (``../x``, ``a/b``)
    would reach outside the model directory: ``ModelFileError``."""
    p = Path(artifact)
    if p.is_absolute():
        return p
    if not is_model_file_name(artifact):
        raise ModelFileError(f"the registry names model file {str(artifact)[:80]!r}, which is "
                             "not a plain file name in the model directory; refusing it")
    return Path(model_dir) / p


class PredictorExistsError(Conflict, ValueError):
    """An import of a predictor id the registry already holds with other weights."""

    code = "predictor_exists"


def _model_file(artifact: str, model_dir: str | Path) -> Path | None:
    """:func:`model_path`, or None for a registry entry naming a file outside the model
    directory (treated as missing)."""
    try:
        return model_path(artifact, model_dir)
    except ModelFileError:
        return None


def is_shipped(info: PredictorInfo) -> bool:
    """Whether a registry entry is a predictor shipped with tapas (registered when the
    database was seeded, :meth:`Pipeline._register_shipped`)."""
    return (info.provenance or {}).get("origin") == "shipped"


def _copy_bounded(src: Path, out: Any, limit: int) -> None:
    """Copy ``src`` into the open file ``out``; ``ModelFileError`` past ``limit`` bytes
    (checked as it is read: the file may grow) or when it cannot be read."""
    try:
        if not src.is_file():
            raise ModelFileError(f"{src}: no such file")
        with src.open("rb") as f:
            n = 0
            while chunk := f.read(1 << 20):
                n += len(chunk)
                if n > limit:
                    raise ModelFileError(f"{src} is over the {limit:,} bytes a tapas "
                                         "predictor file may hold")
                out.write(chunk)
    except OSError as e:
        raise ModelFileError(f"cannot read model file {src}: {e.strerror}") from None


def _registry_entry(src: Path, provenance: Any) -> dict[str, Any]:
    """The registry entry an exported file carries, checked field by field
    (``ModelFileError`` naming the field): the id is a predictor id, the numbers are
    finite numbers, the metrics and provenance are objects."""
    import math

    reg = provenance.get("registry") if isinstance(provenance, dict) else None
    if not isinstance(reg, dict) or "id" not in reg:
        raise ModelFileError(f"{src}: a model file without a registry entry; write one with "
                             "tapas predictor export ID FILE")
    try:
        pid = check_predictor_id(reg["id"], "registry id")
    except PredictorIdError as e:
        raise ModelFileError(f"{src}: {e}") from None
    out: dict[str, Any] = {"id": pid}
    for key in ("dcn", "tau", "dcn_lo", "dcn_hi"):
        v = reg.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ModelFileError(f"{src}: registry field {key!r} must be a finite number, "
                                 f"got {str(v)[:40]!r}")
        out[key] = float(v)
    n = reg.get("n_train")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ModelFileError(f"{src}: registry field 'n_train' must be a non-negative "
                             f"integer, got {str(n)[:40]!r}")
    out["n_train"] = n
    if not isinstance(reg.get("snapshot"), str):
        raise ModelFileError(f"{src}: registry field 'snapshot' must be a string")
    out["snapshot"] = reg["snapshot"]
    for key in ("metrics", "provenance"):
        v = reg.get(key) or {}
        if not isinstance(v, dict):
            raise ModelFileError(f"{src}: registry field {key!r} must be an object")
        out[key] = v
    return out


class Pipeline:
    """The application: an LDE, a model directory and the predictors trained from them.

    Parameters
    ----------
    database : LDE file (default: the settings' database). A database created by
        opening it (not ``read_only``) is seeded with the shipped data (unless ``seed``
        is False): the starter experiments and NAS-Bench-201 results
        (:func:`lde.default_data.seed_default`).
    store : an already open ``lde.Store`` to use instead (not closed by :meth:`close`).
    model_dir : where new model files go (default: the settings' model directory).
    read_only : open the database read-only (no training, no ingest).
    predictor_params : hyper-parameters of the predictors trained here.
    min_experiments : the DCN filter widens tau until this many experiments remain.
    max_loaded : deprecated and ignored: the predictors held in memory share the process's
        one cache budget (``TAPAS_CACHE_MB``, :mod:`tapas.core.arch.cache`) by their size.
    seed : seed a newly created database with the shipped data.
    shipped : register the predictors shipped with tapas in a newly seeded database (those
        whose id this pipeline computes itself there, :meth:`_register_shipped`), so the
        first :meth:`train` for a DCN of the shipped grid is a lookup. The release command
        that builds them turns it off.
    upgrade : with ``read_only``, a database that needs one write first (an older schema
        to migrate, a first seeding cut short) is opened for writing once to finish it,
        then read; a reader never sees half-seeded data.

    Thread-safe: one training runs at a time; concurrent callers reuse its result.
    """

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

    # ------------------------------------------------------------------ lifecycle
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
        same transaction (their files are unpacked when first used)."""
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
                        self._register_shipped(store)
                    con.execute("INSERT OR REPLACE INTO meta VALUES ('starter', 'done')")
            except BaseException:
                store.close()
                raise
        return store

    def _register_shipped(self, store: Store) -> int:
        """Register the predictors shipped with tapas (:mod:`lde.shipped_predictors`) whose
        id is the one :meth:`train` computes here for their DCN: on a database seeded with
        the shipped data alone, under this version and these hyper-parameters, that is
        all of them; after a change of version, data or hyper-parameters none match and
        none is registered (a stale one is never used). Returns how many."""
        n = 0
        for e in entries():
            exps, tau, pid = self._selection(store, e["dcn"])
            if pid != e["id"]:
                log.info("shipped predictor %s is not the one this database and version "
                         "train for DCN %.4f (%s): not registered; python -m tapas.app.release "
                         "rebuilds them", e["id"], e["dcn"], pid)
                continue
            try:
                store.register_predictor(pid, e["dcn"], float(tau), e["dcn_lo"], e["dcn_hi"],
                                         e["snapshot"], len(exps), e["metrics"], e["file"],
                                         {**e["provenance"], "origin": "shipped"})
            except LDEError as err:
                log.warning("shipped predictor %s not registered: %s", pid, err)
                continue
            n += 1
        return n

    def _selection(self, store: Store, dcn: float, exclude_datasets: Sequence[str] = (),
                   with_curves: bool = False) -> tuple[Any, float, str | None]:
        """The experiments the DCN filter selects for ``dcn``, the tau it used and the id of
        the predictor trained on them (:func:`predictor_key`; None when none is selected):
        the one rule :meth:`train` and :meth:`_register_shipped` share."""
        exps, tau = store.filter_adaptive(dcn, min_experiments=self.min_experiments,
                                          min_datasets=MIN_DATASETS, tau=TAU,
                                          exclude_datasets=exclude_datasets,
                                          with_curves=with_curves)
        if len(exps) == 0:
            return exps, tau, None
        # every hyper-parameter, defaults included: a release that changes a default
        # trains afresh instead of reusing a model built under the old one
        pid = predictor_key(selection_key(exps), tuple(exps.datasets()),
                            tap.TAPRegressor(**self.predictor_params).get_params(),
                            exclude_datasets)
        return exps, tau, pid

    def _model_file_of(self, info: PredictorInfo) -> Path | None:
        """:func:`_model_file` of a registry entry; a shipped predictor's file is unpacked
        there first when it is not yet (:func:`lde.shipped_predictors.unpack`)."""
        path = _model_file(info.artifact, self.model_dir)
        if path is not None and is_shipped(info) and not path.exists():
            try:
                unpack(info.id, path)
            except (ShippedError, OSError) as e:
                log.warning("cannot unpack shipped predictor %s: %s", info.id, e)
        return path

    def open(self) -> Pipeline:
        """Open the database now (so a locked or unusable file fails here, cleanly)."""
        _ = self.store
        return self

    def close(self) -> None:
        """Close the database if this pipeline opened it; forget loaded predictors."""
        self.unload()
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Pipeline:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Pipeline({str(self.database)!r}, model_dir={str(self.model_dir)!r})"

    # ------------------------------------------------------------------ datasets
    def dataset(self, ident: str) -> DatasetInfo | None:
        """A stored dataset by id or name (None when unknown)."""
        row = self.store.dataset(ident)
        return None if row is None else DatasetInfo.from_row(row)

    def dataset_info(self, ident: str) -> DatasetInfo:
        """A stored dataset by id or name (:class:`~tapas.core.errors.DatasetNotFound`
        when unknown)."""
        info = self.dataset(ident)
        if info is None:
            import difflib

            names = [r.name for r in self.store.datasets()]
            close = difflib.get_close_matches(ident, names, n=3, cutoff=0.6) or \
                [n for n in names if ident.lower() in n.lower()][:3]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise DatasetNotFound(f"no dataset {ident!r} in the LDE{hint}; characterise it first "
                              "(tapas dcn DATASET --store)")
        return info

    def datasets(self) -> list[DatasetInfo]:
        return [DatasetInfo.from_row(r) for r in self.store.datasets()]

    def target(self, *, dcn: float | None = None, dataset: str | None = None,
               num_classes: int | None = None,
               input_shape: Sequence[int] | None = None) -> Target:
        """A prediction target resolved against this LDE
        (:func:`tapas.core.types.resolve_target`)."""
        return resolve_target(self.dataset_info, dcn=dcn, dataset=dataset,
                              num_classes=num_classes, input_shape=input_shape)

    def characterize(self, dataset: str | Path | Dataset, *, seed: int = 0,
                     force: bool = False, progress: Callable[[int, int], None] | None = None,
                     **probe: Any) -> tuple[DatasetInfo, DCNResult]:
        """Load a dataset, compute (or reuse, by fingerprint) its DCN, record both in the LDE.

        ``probe``: ``device``, ``epochs``, ``max_samples``, ``max_steps`` (see
        ``probenet.characterize``, which computes; the new DCN is stored here).
        Data already stored (by fingerprint) resolve to that dataset. A name that stands
        for other content raises :class:`~lde.errors.DatasetConflict` before the probe runs
        (:meth:`recharacterize` is the explicit way to replace a stored DCN).
        """
        ds = dataset if isinstance(dataset, probenet.Dataset) else probenet.load_dataset(dataset)
        stored = self.store.dataset_by_fingerprint(ds.fingerprint)
        if force or stored is None:
            self.check_dataset(store_name(ds), ds.fingerprint, ds.num_classes, ds.input_shape)
        res = probenet.characterize(ds, stored=stored, seed=seed, force=force,
                                    progress=progress, **probe)
        if not res.cached:
            self.store.upsert_dataset(store_name(ds), ds.fingerprint, ds.n_samples,
                                      ds.num_classes, list(ds.input_shape), dcn=res.dcn,
                                      dcn_meta=res.meta, source="probenet")
        return DatasetInfo.from_row(self.store.dataset_by_fingerprint(ds.fingerprint)), res

    def check_dataset(self, name: str, fingerprint: str, n_classes: int,
                      input_shape: Sequence[int]) -> DatasetInfo | None:
        """The stored dataset ``name`` if these data may be characterised under it (None:
        the name is free); :class:`~lde.errors.DatasetConflict` naming what differs when
        the name stands for other content (``lde.store.identity_differences``)."""
        row = self.store.check_dataset(name, fingerprint, n_classes, input_shape, probing=True)
        return None if row is None else DatasetInfo.from_row(row)

    def recharacterize(self, name: str, dataset: str | Path | Dataset, *, seed: int = 0,
                       force: bool = False, reprobe: bool = False,
                       progress: Callable[[int, int], None] | None = None,
                       **probe: Any) -> tuple[DatasetInfo, DCNResult]:
        """Probe ``dataset`` (images) and store the DCN as the DCN of the stored dataset
        ``name`` (id or name), e.g. NAS-Bench-201's ``cifar10``, whose DCN follows the
        reference-cell convention because the images are not shipped.

        The row keeps its id, name and experiments; its ``dcn_meta`` becomes the probe's
        (``method = "probe"``) with the value it replaces under ``replaced`` (``dcn``,
        ``method``, ``meta``), written in one transaction. Predictors are keyed on the
        content of their DCN selection, so the next :meth:`train` whose selection holds
        this dataset trains a new one; predictors in memory that trained on it are
        dropped (pinned ones stay), registered ones stay in the registry.

        ``DatasetNotFound`` when ``name`` is unknown (with close names); ``ValueError`` when
        the images' input shape or class count differ from the stored dataset's, unless
        ``force``. A probe result already stored for the same images and probe settings
        is reused unless ``reprobe``. ``probe``: ``device``, ``epochs``, ``max_samples``,
        ``max_steps``.
        """
        store = self.store
        row = store.dataset(self.dataset_info(name).id)
        assert row is not None
        ds = dataset if isinstance(dataset, probenet.Dataset) else probenet.load_dataset(dataset)
        shape, k = tuple(ds.input_shape), int(ds.num_classes)
        if not force and (shape != tuple(row.input_shape) or k != int(row.n_classes)):
            raise ValueError(
                f"the images ({'x'.join(map(str, shape))}, {k} classes) do not match dataset "
                f"{row.name!r} ({'x'.join(map(str, row.input_shape))}, {row.n_classes} "
                "classes); --force (force=True) replaces its DCN anyway")
        want = probe_settings(seed, probe.get("epochs"), probe.get("max_samples"),
                              probe.get("max_steps"))
        if not reprobe:
            # already done for this row (a re-run): nothing to write
            same = stored_result(row, ds.fingerprint, want)
            if same is not None:
                return DatasetInfo.from_row(row), same
        rows = [] if reprobe else [store.dataset_by_fingerprint(ds.fingerprint)]
        res = reuse_or_probe(ds, rows, want, device=probe.get("device"), progress=progress)
        meta = {**res.meta, "images": ds.name, "n_samples": ds.n_samples}
        new = store.replace_dcn(row.id, res.dcn, meta)
        self._dcn_changed(row.id)
        return DatasetInfo.from_row(new), res

    def _dcn_changed(self, dataset_id: str) -> None:
        """Forget what this pipeline holds on a dataset's old DCN: the fast-path request
        map and the (unpinned) predictors in memory that trained on it."""
        self._resolved.drop()
        self._loaded.drop(lambda pid, held: dataset_id not in held[1].datasets)

    # ------------------------------------------------------------------ experiments
    def ingest(self, records: Sequence[dict[str, Any]], source: str = "api") -> IngestReport:
        """Validate and add experiment records given as dicts (the JSONL record format);
        rejected records carry their index."""
        parsed, rejected = [], []
        for i, row in enumerate(records):
            try:
                parsed.append(record_from_row(dict(row), source))
            except (ValueError, TypeError, KeyError) as e:
                rejected.append((i, str(e)))
        report = self.store.add_experiments(parsed) if parsed else IngestReport()
        report.rejected = rejected + list(report.rejected)
        return report

    def ingest_file(self, path: str | Path, fmt: str = "auto", *, verify: bool = False,
                    **kwargs: Any) -> IngestReport:
        """Ingest a file (own records, a NAS-Bench-201 table) or merge an export folder
        (``fmt`` ``lde``; ``verify`` re-expands every NAS-Bench-201 architecture). ``kwargs``
        go to :func:`lde.ingest.ingest_path` (``dcn``, ``mapping``, ``columns``, ``source``,
        ``progress``, ``workers``). One transaction: all of it lands or none. An export's
        model files are copied into the model directory (a missing one shows in
        :meth:`predictors`' listing as missing)."""
        path = Path(path)
        if fmt == "lde" or (fmt == "auto" and path.is_dir()):
            rep = self.store.import_parquet(path, kwargs.get("progress"), verify=verify)
            import_models(path, self.model_dir)
            return rep

        return ingest_path(self.store, path, fmt, **kwargs)

    def export(self, directory: str | Path, *, progress: Callable[[str, int, int], None]
               | None = None, overwrite: bool = False) -> dict[str, Any]:
        """Write the whole LDE as partitioned Parquet (:mod:`lde.parquet_io`), with the
        registered predictors' model files (so the export restores them elsewhere)."""
        return self.store.export_parquet(directory, progress, overwrite=overwrite,
                                         model_dir=self.model_dir)

    # ------------------------------------------------------------------ predictors
    def predictors(self) -> list[PredictorInfo]:
        """Every registered predictor, oldest first."""
        return self.store.predictors()

    def predictor(self, ident: str) -> PredictorInfo | None:
        """The registry entry ``ident`` or None; ``PredictorIdError`` (a ``PredictorNotFound``)
        when ``ident`` is not a predictor id."""
        return self.store.predictor(check_predictor_id(ident))

    def model_path(self, artifact: str) -> Path:
        """The model file of a registry entry (:func:`model_path` in this model directory)."""
        return model_path(artifact, self.model_dir)

    def registered(self, pid: str) -> tuple[TAPRegressor, PredictorInfo]:
        """The registered predictor ``pid`` (pinned: whatever was trained since), loaded once
        and then held in memory; ``PredictorNotFound`` naming the id when it is unknown or
        its file is gone (``ModelFileError`` when the file is unreadable)."""
        reg = self.store.predictor(check_predictor_id(pid))
        if reg is None:
            raise PredictorNotFound(f"no predictor {pid!r} in the registry (tapas predictor "
                                    "list)")
        hit = self._loaded_model(pid)
        if hit is not None:
            return hit
        path = self.model_path(reg.artifact)
        self._model_file_of(reg)  # a shipped predictor's file is unpacked when first used
        if not path.is_file():
            raise PredictorNotFound(f"predictor {pid!r} is registered but its model file "
                                    f"{path} is missing (tapas predictor import FILE "
                                    "restores it)")
        model = load_predictor(path)
        info = reg.with_(cached=True)
        self._remember(model, info)
        return model, info

    def export_predictor(self, pid: str, dest: str | Path) -> Path:
        """Write predictor ``pid`` as one self-contained model file: its provenance gains the
        registry entry (DCN range, snapshot, metrics), so :meth:`import_predictor` restores it
        on another machine."""
        model, info = self.registered(pid)
        reg = self.store.predictor(pid)
        assert reg is not None  # registered() found it
        prov = {**(getattr(model, "provenance_", None) or {}),
                "registry": {"id": reg.id, "dcn": reg.dcn, "tau": reg.tau,
                             "dcn_lo": reg.dcn_lo, "dcn_hi": reg.dcn_hi,
                             "snapshot": reg.snapshot, "n_train": reg.n_train,
                             "metrics": reg.metrics, "provenance": reg.provenance}}
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        model.save(dest, provenance=prov)
        return dest

    def import_predictor(self, src: str | Path, *, replace: bool = False) -> PredictorInfo:
        """Register a model file written by :meth:`export_predictor`, copied into the model
        directory under its id.

        The whole file is verified first, on a private copy in the model directory (sizes,
        every array against the model's hyper-parameters, finite weights, the registry
        entry and its id), then file and registry entry are committed together or not at
        all. An id the registry holds is refused (``PredictorExistsError``) unless
        ``replace``: pinned predictions must not change behind a user's back. Importing
        the same weights again is a no-op (the entry comes back with ``cached=True``); an
        entry whose file is missing is restored without ``replace``.
        """
        import os
        import tempfile

        src = Path(src)
        directory = self.model_dir
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".import-", suffix=".partial")
        tmp = Path(tmp_name)
        backup: Path | None = None
        placed = False
        final: Path | None = None
        try:
            with os.fdopen(fd, "wb") as out:
                _copy_bounded(src, out, MAX_FILE_BYTES)
            try:  # verifies all of it (predictor.tap.TAPRegressor.load)
                model = load_predictor(tmp)
            except ModelFileError as e:  # named by the file the user gave, not the copy
                raise ModelFileError(str(e).replace(str(tmp), str(src))) from None
            reg = _registry_entry(src, getattr(model, "provenance_", None))
            pid = reg["id"]
            artifact = f"{pid}.tap"
            final = directory / artifact
            old = self.store.predictor(pid)
            if old is not None and not replace:
                mine = _model_file(old.artifact, directory)
                if mine is not None and mine.is_file():
                    try:
                        same = content_digest(mine) == content_digest(tmp)
                    except ModelFileError:
                        same = False
                    if same:
                        return old.with_(cached=True)
                    raise PredictorExistsError(
                        f"predictor {pid} is already registered with other weights; "
                        "--replace (replace=True) overwrites it (predictions pinned to it "
                        "would change)")
            with self.store.transaction():
                self.store.register_predictor(
                    pid, reg["dcn"], reg["tau"], reg["dcn_lo"], reg["dcn_hi"], reg["snapshot"],
                    reg["n_train"], reg["metrics"], artifact, reg["provenance"])
                if final.exists():
                    backup = directory / f".{artifact}.{os.getpid()}.old"
                    os.replace(final, backup)
                os.replace(tmp, final)
                placed = True
        except BaseException:
            if backup is not None and final is not None:
                os.replace(backup, final)  # the previous file, as the registry still says
                backup = None
            elif placed and final is not None:
                final.unlink(missing_ok=True)
            raise
        finally:
            tmp.unlink(missing_ok=True)
            if backup is not None:
                backup.unlink(missing_ok=True)
        info = self.store.predictor(pid)
        assert info is not None  # just registered
        self._forget(pid)
        self._remember(model, info.with_(cached=True))
        return info

    def delete_predictor(self, pid: str) -> bool:
        """Remove ``pid`` from the registry, from memory and its file from the model
        directory (a file elsewhere, from an older absolute path, is left alone). False
        when unknown; ``PredictorIdError`` when ``pid`` is not a predictor id."""
        reg = self.store.predictor(check_predictor_id(pid))
        if reg is None:
            return False
        self.store.delete_predictor(pid)
        self._forget(pid)
        if is_model_file_name(reg.artifact):  # only ever a file inside the model directory
            (self.model_dir / reg.artifact).unlink(missing_ok=True)
        return True

    def _forget(self, pid: str) -> None:
        with self._mem_lock:
            self._pinned.pop(pid, None)
        self._loaded.drop(lambda k, _: k != pid)
        self._resolved.drop(lambda _, v: v != pid)

    def _remember(self, model: Any, info: PredictorInfo, pin: bool = False) -> None:
        if info.created is None:  # just trained: the registration time orders it
            reg = self.store.predictor(info.id)
            info = info if reg is None else info.with_(created=reg.created)
        with self._mem_lock:
            self._seq += 1
            held = (model, info, self._seq)
            if pin or info.id in self._pinned:
                self._pinned[info.id] = held
                self._loaded.drop(lambda k, _: k != info.id)
            else:
                self._loaded.put(info.id, held, self._model_bytes(info))

    def _model_bytes(self, info: PredictorInfo) -> int:
        """A predictor's estimated memory, from its model file's size."""
        try:
            size = self.model_path(info.artifact or "").stat().st_size
        except (OSError, ValueError):  # no file (yet): the size of a default-sized model
            size = 8 * 2**20
        return MODEL_BYTES_PER_FILE_BYTE * size

    def pin(self, pid: str) -> None:
        """Keep a loaded predictor in memory for good (e.g. the service's default)."""
        with self._mem_lock:
            held = self._loaded.get(pid)
            if held is not None:
                self._pinned[pid] = held
                self._loaded.drop(lambda k, _: k != pid)

    def _held(self) -> list[tuple[Any, PredictorInfo, int]]:
        """Every predictor in memory (pinned or pooled), in load order."""
        with self._mem_lock:
            return sorted([*self._pinned.values(), *(v for _, v in self._loaded.items())],
                          key=lambda v: v[2])

    def loaded(self) -> list[PredictorInfo]:
        """The predictors held in memory, most recently loaded last."""
        return [info for _, info, _ in self._held()]

    def unload(self) -> None:
        """Forget the predictors held in memory (pinned ones included); the next request
        loads from the registry, as after a restart."""
        with self._mem_lock:
            self._pinned.clear()
        for cache in (self._loaded, self._resolved, self._excluded):
            cache.drop()

    def _loaded_model(self, pid: str) -> tuple[Any, PredictorInfo] | None:
        with self._mem_lock:
            hit = self._pinned.get(pid) or self._loaded.get(pid)
            return None if hit is None else (hit[0], hit[1])

    def train(self, dcn: float, *, exclude_datasets: Sequence[str] = (), force: bool = False,
              pin: bool = False, progress: Callable[[int, int], None] | None = None,
              checkpoint: Callable[[str], None] | None = None,
              ) -> tuple[TAPRegressor, PredictorInfo]:
        """The predictor for a target DCN: reused when one was trained on the same
        experiments (the content of its DCN selection, :func:`selection_key`: ingesting or
        characterising an unrelated dataset does not retrain it; :func:`predictor_key`),
        else trained on a dataset-balanced sample of at most ``MAX_TRAIN_ROWS`` of them
        (:func:`predictor.sampling.balanced_rows`), with the history of every
        family the LDE holds beyond the excluded datasets (:func:`lde_history`), saved and
        registered.

        ``exclude_datasets`` leave datasets out of its training (e.g. a held-out target);
        ``pin`` keeps it in memory for good; ``progress(epoch, epochs)`` follows a training
        (never called for a reused one). ``checkpoint(phase)`` is called at each phase
        boundary before the epochs (selection, loading the networks, the history,
        encoding) and inside the long loops, so a caller can stop a training there by
        raising (the service's job cancellation); nothing is registered then.
        ``NoExperiments`` when the LDE holds no experiments on characterised datasets.
        """
        def check(phase: str) -> None:
            if checkpoint is not None:
                checkpoint(phase)

        params = self.predictor_params
        store = self.store
        req = (float(dcn), tuple(sorted(exclude_datasets)), self.min_experiments)
        if not force:  # fast path: the same request at the same snapshot, model in memory
            pid = self._resolved.get((store.snapshot_id(), *req))
            hit = self._loaded_model(pid) if pid else None
            if hit is not None:
                if pin:
                    self._remember(*hit, pin=True)
                return hit
        with self._train_lock:  # one training at a time; concurrent callers reuse its result
            check("selecting experiments")
            snapshot = store.snapshot_id()
            exps, tau, pid = self._selection(store, dcn, exclude_datasets, with_curves=True)
            if pid is None:
                raise NoExperiments("the LDE holds no experiments on characterised datasets; "
                                  "ingest some first (tapas ingest)")
            datasets = tuple(exps.datasets())
            dcns = exps.dcn
            info = PredictorInfo(pid, float(dcn), float(tau),
                                 min(float(dcns.min()), float(dcn)),
                                 max(float(dcns.max()), float(dcn)), snapshot, len(exps),
                                 datasets)
            reg = store.predictor(pid)
            if reg is not None and not force:
                hit = self._loaded_model(pid)
                model = hit[0] if hit else None
                path = self._model_file_of(reg) if model is None else None
                if model is None and path is not None and path.exists():
                    try:
                        model = tap.load(path)
                    except tap.ModelFileError as e:  # an older format: train it again
                        log.warning("retraining predictor %s: %s", pid, e)
                if model is not None:
                    info = info.with_(metrics=reg.metrics, artifact=reg.artifact, cached=True,
                                      created=reg.created, provenance=reg.provenance)
                    self._remember(model, info, pin)
                    self._resolve(snapshot, req, pid)
                    return model, info
            check("averaging seeds")
            runs = exps.mean_over_seeds()  # a network's seeds agree on one label
            rows = balanced_rows(runs.dataset_id, MAX_TRAIN_ROWS, seed=0)
            ids = runs.arch_id[rows]
            unique = list(dict.fromkeys(ids.tolist()))
            arch_by_id: dict[str, Any] = {}
            for start in range(0, len(unique), 500):
                check(f"loading networks {start:,}/{len(unique):,}")
                arch_by_id.update(store.architectures(unique[start:start + 500]))
            archs = [arch_by_id[a] for a in ids]
            curves = [runs.curves[i] for i in rows] if runs.curves is not None else None
            check("building the history")
            history = lde_history(store, exclude_datasets)
            model = tap.TAPRegressor(**params).fit(
                archs, runs.dcn[rows], runs.accuracy[rows], curves=curves,
                groups=runs.dataset_id[rows], history=history, progress=progress,
                checkpoint=checkpoint)
            metrics = {"fit_seconds": round(getattr(model, "fit_seconds_", 0.0), 3),
                       "n_train": len(exps), "tau": float(tau)}
            directory = self.model_dir
            directory.mkdir(parents=True, exist_ok=True)
            artifact = f"{pid}.tap"  # relative to the model directory: portable
            provenance = {"lde_snapshot": snapshot, "dcn": float(dcn), "tau": float(tau),
                          "datasets": list(datasets), "n_train": len(exps),
                          "tapas_version": __version__, "params": params}
            model.save(directory / artifact, provenance=provenance)
            store.register_predictor(pid, float(dcn), float(tau), info.dcn_lo, info.dcn_hi,
                                     snapshot, len(exps), metrics, artifact, provenance)
            info = info.with_(metrics=metrics, artifact=artifact, cached=False,
                              provenance=provenance)
            self._remember(model, info.with_(cached=True), pin)
            self._resolve(snapshot, req, pid)
            return model, info

    def _resolve(self, snapshot: str, req: tuple[Any, ...], pid: str) -> None:
        key = (snapshot, *req)
        self._resolved.put(key, pid, sizeof(key) + sizeof(pid))

    def _covering_loaded(self, dcn: float,
                         exclude: frozenset[str]) -> tuple[Any, PredictorInfo] | None:
        """A predictor in memory covering ``dcn``, by the registry's rule
        (:func:`~tapas.core.types.covering_first`), never one trained on an excluded dataset."""
        first = covering_first((info for _, info, _ in self._held()
                                if not exclude.intersection(info.datasets)), dcn)
        return self._loaded_model(first[0].id) if first else None  # counts as a use

    def _covering_registered(self, dcn: float,
                             exclude: frozenset[str]) -> tuple[Any, PredictorInfo] | None:
        """A registered predictor covering ``dcn`` (:func:`~tapas.core.types.covering_first`),
        loaded from disk; one whose file is gone or unreadable (e.g. an older format) is skipped."""
        for info in self.store.covering_predictors(dcn):
            if exclude.intersection(info.datasets):
                continue
            path = self._model_file_of(info)  # a shipped one is unpacked when first used
            if path is None or not path.exists():
                continue
            try:
                model = load_predictor(path)
            except (ModelFileError, OSError, ValueError) as e:
                log.warning("skipping predictor %s: %s", info.id, e)
                continue
            info = info.with_(cached=True)
            self._remember(model, info)
            return model, info
        return None

    def _excluded_ids(self, exclude_datasets: Sequence[str]) -> frozenset[str]:
        """Dataset ids of names or ids (looked up once per pipeline)."""
        key = tuple(exclude_datasets)
        ids = self._excluded.get(key)
        if ids is None:
            rows = [(n, self.store.dataset(n)) for n in key]
            ids = frozenset(r.id if r is not None else str(n) for n, r in rows)
            if all(r is not None for _, r in rows):  # an unknown name may be stored later
                self._excluded.put(key, ids, sizeof(key) + sizeof(ids))
        return ids

    def select(self, dcn: float, *, exclude_datasets: Sequence[str] = (),
               train: bool = False, predictor: str | None = None,
               ) -> tuple[TAPRegressor, PredictorInfo]:
        """The predictor that answers a request for ``dcn``: the registered one named by
        ``predictor`` (pinned, whatever was trained since; ``PredictorNotFound`` when unknown),
        else one in memory whose training DCN range covers ``dcn`` (trained for the nearest
        DCN, newest first), else one from the registry, else
        :class:`~tapas.core.errors.NoPredictor` (with ``train=True``: the one :meth:`train`
        gives). Never one trained on an excluded dataset, unless pinned by id.

        Ingesting experiments does not retire a predictor: it answers until a newer one
        is trained.
        """
        if predictor is not None:
            return self.registered(predictor)
        exclude = self._excluded_ids(exclude_datasets) if exclude_datasets else frozenset()
        found = self._covering_loaded(dcn, exclude)
        if found is None:
            with self._train_lock:  # one registry load at a time
                found = (self._covering_loaded(dcn, exclude)
                         or self._covering_registered(dcn, exclude))
        if found is not None:
            return found
        if train:
            return self.train(dcn, exclude_datasets=exclude_datasets)
        raise NoPredictorError(
            f"no trained predictor covers DCN {dcn:.4f}; train one first "
            f"(train_predictor(dcn={dcn:.4f})) or pass train=True", dcn)

    # ------------------------------------------------------------------ predict
    def query(self, archs: Sequence[Any], *, dcn: float | None = None,
              dataset: str | None = None, num_classes: int | None = None,
              input_shape: Sequence[int] | None = None, exclude_datasets: Sequence[str] = (),
              train: bool = False, members: bool = False,
              predictor: str | None = None) -> Query:
        """A predict request, its target resolved (:meth:`target`) and its architectures
        (cell specs, IR dicts/JSON text or ``Architecture`` objects) parsed for it."""
        target = self.target(dcn=dcn, dataset=dataset, num_classes=num_classes,
                             input_shape=input_shape)
        parsed = parse_archs(archs, target.num_classes, target.input_shape)
        return Query(tuple(parsed), target.value, predictor, members, tuple(exclude_datasets),
                     train)

    def answer_many(self, queries: Sequence[Query]) -> list[Answer | Exception]:
        """The one application call that predicts: each query's predictor chosen
        (:meth:`select`), the queries answered by the same predictor scored in one forward
        pass (a batch of single-network requests costs about what one request does; the
        service's batching thread merges concurrent requests here), and the model's
        output converted into one :class:`~tapas.core.types.Answer` per query
        (:func:`to_predictions`). A query that fails gets its exception in its place; the
        others are answered."""
        t0 = time.perf_counter()
        out: list[Answer | Exception] = [None] * len(queries)  # type: ignore[list-item]
        groups: dict[int, tuple[Any, PredictorInfo, list[int]]] = {}
        for i, q in enumerate(queries):
            try:
                model, info = self.select(q.dcn, exclude_datasets=q.exclude_datasets,
                                          train=q.train, predictor=q.predictor)
            except Exception as e:  # noqa: BLE001 - returned to its own request
                out[i] = e
                continue
            groups.setdefault(id(model), (model, info, []))[2].append(i)
        for model, info, idx in groups.values():
            archs = [a for i in idx for a in queries[i].archs]
            dcns = np.concatenate([np.full(len(queries[i].archs), float(queries[i].dcn))
                                   for i in idx])
            try:
                p = model.predict_interval(archs, dcns)
            except Exception as e:  # noqa: BLE001 - e.g. an unscorable network in one request
                if len(idx) == 1:
                    out[idx[0]] = e
                else:  # find whose: score each request alone
                    for i in idx:
                        out[i] = self.answer_many([queries[i]])[0]
                continue
            start = 0
            for i in idx:
                q = queries[i]
                part = p.take(start, start + len(q.archs))
                start += len(q.archs)
                out[i] = Answer(info, q.dcn, float(part.coverage),
                                to_predictions(q.archs, part, info.id, q.dcn, q.members),
                                latency_ms=round(1e3 * (time.perf_counter() - t0), 3))
        return out

    def answer(self, query: Query) -> Answer:
        """:meth:`answer_many` for one query, raising its exception."""
        got = self.answer_many([query])[0]
        if isinstance(got, Exception):
            raise got
        return got

    def predict(self, archs: Sequence[Any], *, dcn: float | None = None,
                dataset: str | None = None, num_classes: int | None = None,
                input_shape: Sequence[int] | None = None,
                exclude_datasets: Sequence[str] = (), train: bool = False,
                members: bool = False, predictor: str | None = None) -> list[Prediction]:
        """Predicted accuracy of each architecture (:meth:`query`, then :meth:`answer`), the
        same answer as :meth:`tapas.app.client.Client.predict`.

        ``members=True`` adds each ensemble member's prediction; ``predictor`` pins a
        registered predictor by id (``PredictorNotFound`` when unknown).
        """
        q = self.query(archs, dcn=dcn, dataset=dataset, num_classes=num_classes,
                       input_shape=input_shape, exclude_datasets=exclude_datasets,
                       train=train, members=members, predictor=predictor)
        return list(self.answer(q).predictions) if q.archs else []


def to_predictions(archs: Sequence[Any], out: Any, predictor: str, dcn: float,
                   members: bool = False) -> tuple[Prediction, ...]:
    """The one conversion of the model's output for ``archs`` (a
    ``predictor.EnsembleOutput``) into a :class:`~tapas.core.types.Prediction` per network, by
    ``predictor`` (its id) for ``dcn``; each member's prediction only when asked for."""
    cov = float(out.coverage)
    mem: list[Any] = ([tuple(col) for col in np.asarray(out.members, float).T.tolist()]
                      if members and out.members is not None else [None] * len(archs))
    inside, why = out.domain_flags()
    cols = (np.asarray(v, float).tolist() for v in (out.mean, out.spread, out.lower, out.upper))
    return tuple(Prediction(a.id, m, s, lo, hi, predictor, dcn, cov, mb, ok, tuple(r))
                 for a, m, s, lo, hi, mb, ok, r in zip(archs, *cols, mem, inside, why,
                                                       strict=True))


__all__ = ["BUILTIN_DATASETS", "MAX_TRAIN_ROWS", "DataLimits", "DatasetConflict", "DatasetError",
           "DatasetTooLarge", "LDEError", "MIN_DATASETS", "MIN_EXPERIMENTS", "ModelFileError",
           "NoPredictorError", "Pipeline", "PredictorExistsError", "PredictorIdError", "TAU",
           "is_shipped", "lde_history", "load_dataset", "load_predictor", "model_path",
           "predictor_key", "selection_key", "to_predictions", "verify_predictor"]
