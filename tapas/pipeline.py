"""The end-to-end pipeline: dataset -> DCN -> LDE filter -> trained TAP -> predictions.

This is the one layer the service, the CLI and the in-process scorer call; it
wires ``probenet``, ``lde`` and ``predictor`` together and owns the rule for
reusing a trained predictor: a predictor is identified by the LDE snapshot, the
set of datasets its DCN filter selected and its hyper-parameters, so a second
request whose filter selects the same experiments gets the same model back.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tapas import __version__
from tapas.arch import Architecture
from tapas.config import get_settings

if TYPE_CHECKING:
    from lde import IngestReport, Store
    from predictor import TAPRegressor
    from probenet import Dataset, DCNResult

#: Hyper-parameters of the predictors the pipeline trains (the estimator's defaults
#: unless overridden here or per call).
DEFAULT_PREDICTOR_PARAMS: dict[str, Any] = {}
#: The adaptive DCN filter widens tau until this many experiments from this many
#: datasets remain (TAPAS starts from tau = 0.05).
MIN_EXPERIMENTS = 1_000
MIN_DATASETS = 2
TAU = 0.05


@dataclass(frozen=True)
class PredictorInfo:
    """Where a predictor came from; what the service reports beside each prediction."""

    id: str
    dcn: float
    tau: float
    dcn_lo: float
    dcn_hi: float
    snapshot: str
    n_train: int
    datasets: tuple[str, ...]
    metrics: dict[str, Any] = field(default_factory=dict)
    artifact: str = ""
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["datasets"] = list(self.datasets)
        return d


@dataclass(frozen=True)
class PredictionBatch:
    """Per-architecture predictions from one predictor."""

    mean: np.ndarray
    spread: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    coverage: float
    predictor: PredictorInfo


_LAZY = {  # re-exported lazily so callers (the service) depend on the pipeline alone
    "DatasetError": ("probenet", "DatasetError"),
    "DatasetTooLarge": ("probenet", "DatasetTooLarge"),
    "DataLimits": ("probenet", "DataLimits"),
    "BUILTIN_DATASETS": ("probenet.datasets", "BUILTINS"),
    "ModelFileError": ("predictor", "ModelFileError"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'tapas.pipeline' has no attribute {name!r}")


def load_dataset(spec: str | Path, limits: Any = None) -> Dataset:
    """A dataset from a built-in spec, an ``.npz`` file or an image folder (``limits``:
    a ``probenet.DataLimits``, default from the settings)."""
    import probenet

    return probenet.load_dataset(spec, limits)


def load_predictor(path: str | Path) -> TAPRegressor:
    """A saved predictor (verified; never unpickled)."""
    import predictor

    return predictor.load(path)


def verify_predictor(path: str | Path) -> None:
    """Raise ``ModelFileError`` (or ``OSError``) unless the file passes its checksum."""
    from predictor.persist import read_header

    read_header(path)


# ---------------------------------------------------------------------- database
def open_store(path: str | Path | None = None, read_only: bool = False) -> Store:
    """Open the LDE; a database created by this call is seeded with the shipped data
    (starter experiments and NAS-Bench-201 results, :mod:`lde.default_data`).

    Seeding is recorded in the database: a new file is built aside with a ``starter =
    pending`` mark and renamed into place, then the shipped data and ``starter = done``
    commit in one transaction. A start killed at any point leaves either no database or
    a pending mark, and the next writable open seeds (again) until it has committed.
    """
    from lde import Store

    db = Path(path) if path is not None else get_settings().database
    if not db.exists() and not read_only:
        db.parent.mkdir(parents=True, exist_ok=True)
        aside = db.with_name(db.name + ".new")
        for f in (aside, aside.with_name(aside.name + ".wal")):
            f.unlink(missing_ok=True)
        with Store(aside) as fresh, fresh.transaction() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES ('starter', 'pending')")
        aside.replace(db)
    store = Store(db, read_only=read_only)
    if not read_only and _starter_state(store) == "pending":
        from lde.default_data import seed_default

        with store.transaction() as con:
            seed_default(store)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('starter', 'done')")
    return store


def _starter_state(store: Store) -> str | None:
    rows = store.sql("SELECT value FROM meta WHERE key = 'starter'").column(0).to_pylist()
    return rows[0] if rows else None


def ingest_records(store: Store, records: Sequence[dict[str, Any]],
                   source: str = "api") -> IngestReport:
    """Validate and add experiment records given as dicts (the JSONL record format)."""
    from lde import IngestReport
    from lde.ingest import record_from_row

    parsed, rejected = [], []
    for i, row in enumerate(records):
        try:
            parsed.append(record_from_row(dict(row), source))
        except (ValueError, TypeError, KeyError) as e:
            rejected.append((i, str(e)))
    report = store.add_experiments(parsed) if parsed else IngestReport()
    report.rejected = rejected + list(report.rejected)
    return report


# --------------------------------------------------------------- characterization
def characterize(store: Store, dataset: str | Path | Dataset, seed: int = 0,
                 force: bool = False, progress: Callable[[int, int], None] | None = None
                 ) -> tuple[Any, DCNResult]:
    """Load a dataset, compute (or reuse) its DCN, and record both in the LDE."""
    import probenet

    ds = dataset if isinstance(dataset, probenet.Dataset) else probenet.load_dataset(dataset)
    result = probenet.characterize(ds, store=store, seed=seed, force=force, progress=progress)
    return store.dataset_by_fingerprint(ds.fingerprint), result


# ------------------------------------------------------------------- predictors
_models: OrderedDict[str, TAPRegressor] = OrderedDict()
_models_lock = threading.Lock()
_train_lock = threading.Lock()
_MODEL_CACHE = 8
#: (snapshot, dcn, excluded, params, min_experiments) -> the predictor that answered.
_resolved: dict[tuple[Any, ...], PredictorInfo] = {}


def _remember(pid: str, model: TAPRegressor) -> None:
    with _models_lock:
        _models[pid] = model
        _models.move_to_end(pid)
        while len(_models) > _MODEL_CACHE:
            _models.popitem(last=False)


def _cached_model(pid: str) -> TAPRegressor | None:
    with _models_lock:
        model = _models.get(pid)
        if model is not None:
            _models.move_to_end(pid)
        return model


def _predictor_id(selection: str, datasets: Sequence[str], params: dict[str, Any],
                  excluded: Sequence[str] = ()) -> str:
    """A predictor's identity: its selection, its hyper-parameters and the datasets its
    history had to leave out (a predictor that has seen a dataset never answers a request
    that excludes it)."""
    key = json.dumps({"selection": selection, "datasets": sorted(datasets), "params": params,
                      "excluded": sorted(excluded), "version": __version__},
                     sort_keys=True, default=str)
    return "p_" + hashlib.sha256(key.encode()).hexdigest()[:16]


#: A predictor trains on at most this many of the selected experiments (a seeded sample):
#: training time is set by its gradient steps, and more rows of the same datasets add little.
MAX_TRAIN_ROWS = 10_000


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
    from predictor import HistoryTable

    cols = store.family_accuracies(exclude_datasets)
    return HistoryTable(cols["family"], cols["dataset_id"], cols["dcn"], cols["accuracy"])


def get_predictor(store: Store, dcn: float, *, exclude_datasets: Sequence[str] = (),
                  params: dict[str, Any] | None = None, force: bool = False,
                  min_experiments: int = MIN_EXPERIMENTS, model_dir: Path | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  ) -> tuple[TAPRegressor, PredictorInfo]:
    """The predictor for a target DCN: reused when one was trained on the same
    experiments (the content of its DCN selection, :func:`selection_key`: ingesting or
    characterising an unrelated dataset does not retrain it), else trained on at most
    ``MAX_TRAIN_ROWS`` of them, with the history of every family the LDE holds beyond
    the excluded datasets, and registered.

    ``model_dir`` (default: the settings' model directory) receives new model files;
    ``progress(epoch, epochs)`` follows a training (never called for a reused one).
    """
    import predictor as tap

    params = {**DEFAULT_PREDICTOR_PARAMS, **(params or {})}
    # the database file is part of the key: snapshot ids are content counts, not unique
    key = (str(store.path), float(dcn), tuple(sorted(exclude_datasets)),
           json.dumps(params, sort_keys=True), min_experiments)
    if not force:  # fast path: same request at the same snapshot, model in memory
        snapshot = store.snapshot_id()
        hit = _resolved.get((snapshot, *key))
        model = _cached_model(hit.id) if hit else None
        if hit and model is not None:
            return model, hit
    with _train_lock:  # one training at a time; concurrent callers reuse its result
        snapshot = store.snapshot_id()
        exps, tau = store.filter_adaptive(dcn, min_experiments=min_experiments,
                                          min_datasets=MIN_DATASETS, tau=TAU,
                                          exclude_datasets=exclude_datasets, with_curves=True)
        if len(exps) == 0:
            raise LookupError("the LDE holds no experiments on characterised datasets; "
                              "ingest some first (tapas ingest)")
        datasets = tuple(exps.datasets())
        pid = _predictor_id(selection_key(exps), datasets, params, exclude_datasets)
        dcns = exps.dcn
        row = store.predictor(pid)
        info = PredictorInfo(pid, float(dcn), float(tau), min(float(dcns.min()), float(dcn)),
                             max(float(dcns.max()), float(dcn)),
                             snapshot, len(exps), datasets)
        directory = Path(model_dir) if model_dir is not None else get_settings().models
        if row is not None and not force:
            model = _cached_model(pid)
            path = model_path(row.artifact, model_dir)
            if model is None and path.exists():
                model = tap.load(path)
                _remember(pid, model)
            if model is not None:
                info = PredictorInfo(**{**asdict(info), "metrics": row.metrics,
                                        "artifact": row.artifact, "cached": True})
                _resolved[(snapshot, *key)] = info
                return model, info
        rows = np.arange(len(exps))
        if len(rows) > MAX_TRAIN_ROWS:
            rows = np.sort(np.random.default_rng(0).choice(rows, MAX_TRAIN_ROWS, replace=False))
        ids = exps.arch_id[rows]
        arch_by_id = store.architectures(list(dict.fromkeys(ids.tolist())))
        archs = [arch_by_id[a] for a in ids]
        curves = [exps.curves[i] for i in rows] if exps.curves is not None else None
        model = tap.TAPRegressor(**params).fit(
            archs, dcns[rows], exps.accuracy[rows], curves=curves,
            groups=exps.dataset_id[rows], history=lde_history(store, exclude_datasets),
            progress=progress)
        metrics = {"fit_seconds": round(getattr(model, "fit_seconds_", 0.0), 3),
                   "n_train": len(exps), "tau": float(tau)}
        directory.mkdir(parents=True, exist_ok=True)
        artifact = f"{pid}.tap"  # relative to the model directory: portable (see model_path)
        provenance = {"lde_snapshot": snapshot, "dcn": float(dcn), "tau": float(tau),
                      "datasets": list(datasets), "n_train": len(exps),
                      "tapas_version": __version__, "params": params}
        model.save(directory / artifact, provenance=provenance)
        store.register_predictor(pid, float(dcn), float(tau), info.dcn_lo, info.dcn_hi, snapshot,
                                 len(exps), metrics, artifact, provenance)
        _remember(pid, model)
        _resolved[(snapshot, *key)] = PredictorInfo(**{**asdict(info), "metrics": metrics,
                                                       "artifact": artifact, "cached": True})
        return model, PredictorInfo(**{**asdict(info), "metrics": metrics,
                                       "artifact": artifact})


# ---------------------------------------------------------------------- registry
def model_path(artifact: str, model_dir: str | Path | None = None) -> Path:
    """Where a registered predictor's file lies. New registrations store the file name
    relative to the model directory, so a database and its model folder move together
    (another machine, an export); absolute paths of older databases are used as they are."""
    p = Path(artifact)
    if p.is_absolute():
        return p
    return (Path(model_dir) if model_dir is not None else get_settings().models) / p


def _info(row: Any, cached: bool = True) -> PredictorInfo:
    return PredictorInfo(row.id, float(row.dcn), float(row.tau), float(row.dcn_lo),
                         float(row.dcn_hi), row.snapshot, int(row.n_train),
                         tuple((row.provenance or {}).get("datasets") or ()),
                         dict(row.metrics or {}), row.artifact, cached)


def registered_predictor(store: Store, pid: str, model_dir: str | Path | None = None
                         ) -> tuple[TAPRegressor, PredictorInfo]:
    """The registered predictor ``pid`` (pinned: whatever was trained since), loaded once
    per process; ``LookupError`` naming the id when it is unknown or its file is gone."""
    row = store.predictor(pid)
    if row is None:
        raise LookupError(f"no predictor {pid!r} in the registry (tapas predictor list)")
    model = _cached_model(pid)
    if model is None:
        path = model_path(row.artifact, model_dir)
        if not path.is_file():
            raise LookupError(f"predictor {pid!r} is registered but its model file {path} is "
                              "missing (tapas predictor import FILE restores it)")
        model = load_predictor(path)
        _remember(pid, model)
    return model, _info(row)


def export_predictor(store: Store, pid: str, dest: str | Path,
                     model_dir: str | Path | None = None) -> Path:
    """Write predictor ``pid`` as one self-contained model file: its provenance gains the
    registry entry (DCN range, snapshot, metrics), so :func:`import_predictor` restores it
    on another machine."""
    model, info = registered_predictor(store, pid, model_dir)
    row = store.predictor(pid)
    prov = {**(getattr(model, "provenance_", None) or {}),
            "registry": {"id": row.id, "dcn": row.dcn, "tau": row.tau, "dcn_lo": row.dcn_lo,
                         "dcn_hi": row.dcn_hi, "snapshot": row.snapshot,
                         "n_train": row.n_train, "metrics": row.metrics,
                         "provenance": row.provenance}}
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    model.save(dest, provenance=prov)
    return dest


def import_predictor(store: Store, src: str | Path, model_dir: str | Path | None = None
                     ) -> PredictorInfo:
    """Register a model file written by :func:`export_predictor` (copied into the model
    directory, under its id); importing it again replaces it with the same."""
    import shutil

    model = load_predictor(src)
    reg = (getattr(model, "provenance_", None) or {}).get("registry")
    if not isinstance(reg, dict) or "id" not in reg:
        raise ValueError(f"{src}: a model file without a registry entry; write one with "
                         "tapas predictor export ID FILE")
    pid = str(reg["id"])
    directory = Path(model_dir) if model_dir is not None else get_settings().models
    directory.mkdir(parents=True, exist_ok=True)
    artifact = f"{pid}.tap"
    tmp = directory / (artifact + ".partial")
    shutil.copyfile(src, tmp)
    tmp.replace(directory / artifact)
    store.register_predictor(pid, float(reg["dcn"]), float(reg["tau"]), float(reg["dcn_lo"]),
                             float(reg["dcn_hi"]), str(reg["snapshot"]), int(reg["n_train"]),
                             dict(reg.get("metrics") or {}), artifact,
                             dict(reg.get("provenance") or {}))
    _remember(pid, model)
    return _info(store.predictor(pid))


def delete_predictor(store: Store, pid: str, model_dir: str | Path | None = None) -> bool:
    """Remove ``pid`` from the registry and its file from the model directory (a file
    elsewhere, from an older absolute path, is left alone). False when unknown."""
    row = store.predictor(pid)
    if row is None:
        return False
    store.delete_predictor(pid)
    with _models_lock:
        _models.pop(pid, None)
    for key in [k for k, v in _resolved.items() if v.id == pid]:
        _resolved.pop(key, None)
    if not Path(row.artifact).is_absolute():
        model_path(row.artifact, model_dir).unlink(missing_ok=True)
    return True


def predict(store: Store, archs: Sequence[Architecture], dcn: float,
            **kwargs: Any) -> PredictionBatch:
    """Predicted accuracy, spread and calibrated interval of each network for a DCN."""
    model, info = get_predictor(store, dcn, **kwargs)
    p = model.predict_interval(list(archs), dcn)
    return PredictionBatch(np.asarray(p.mean), np.asarray(p.spread), np.asarray(p.lower),
                           np.asarray(p.upper), float(p.coverage), info)
