"""What the running service holds: the open store, the job runner, loaded predictors.

This is the only module of ``service`` that calls :mod:`tapas.pipeline`; routes call
this. The store is opened once for writing when the app starts (DuckDB allows one
writing process, so while the service runs it is the database's only writer) and is
shared by request threads and jobs (``lde.Store`` serialises calls).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.errors import APIError, join_path, not_found
from service.jobs import JobContext, JobRunner, QueueFull
from tapas.config import Settings

log = logging.getLogger("tapas.service")

DEFAULT_DCN = 0.5
"""The default predictor's target when the database has no characterised dataset."""
MAX_LOADED = 16
"""Predictors kept in memory (the default one always stays)."""


def _iso(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def dataset_dict(row: Any) -> dict[str, Any]:
    """An ``lde.DatasetRow`` as the API's ``Dataset``."""
    return {"id": row.id, "name": row.name, "fingerprint": row.fingerprint,
            "n_samples": row.n_samples, "n_classes": int(row.n_classes),
            "input_shape": [int(s) for s in row.input_shape],
            "dcn": None if row.dcn is None else float(row.dcn), "dcn_meta": row.dcn_meta,
            "source": row.source}


def predictor_dict(info: Any) -> dict[str, Any]:
    """A ``PredictorInfo`` (pipeline) or ``PredictorRow`` (store) as the API's ``Predictor``."""
    out = {"id": info.id, "dcn": float(info.dcn), "tau": float(info.tau),
           "dcn_lo": float(info.dcn_lo), "dcn_hi": float(info.dcn_hi),
           "n_train": int(info.n_train), "snapshot": info.snapshot,
           "metrics": dict(info.metrics or {}),
           "created": _iso(getattr(info, "created", None) or getattr(info, "created_at", None)),
           "cached": getattr(info, "cached", None)}
    prov = getattr(info, "provenance", None)
    if prov is not None:
        out["provenance"] = prov
    return out


@dataclasses.dataclass(frozen=True)
class DatasetRef:
    """What a DCN job needs to load its data again: the upload's file or the built-in
    spec, and what validation found (queued jobs hold this, not the arrays)."""

    name: str
    fingerprint: str
    source: str
    upload: Path | None = None


def _timestamp(v: Any) -> float:
    return v.timestamp() if hasattr(v, "timestamp") else 0.0


def map_error(e: BaseException) -> dict[str, Any]:
    """Turn a failure inside a job into the API's error shape (no traceback)."""
    from lde.errors import LDEError

    api = to_api_error(e)
    if api is not None:
        return api.body()["error"]
    if isinstance(e, LDEError):
        return {"code": "database_error", "message": str(e), "path": None}
    log.error("job failed", exc_info=e)
    return {"code": "job_failed", "message": f"{type(e).__name__}: {e}", "path": None}


def to_api_error(e: BaseException, path: str | None = None) -> APIError | None:
    """Known bad-input exceptions of the lower layers as a 4xx :class:`APIError`."""
    from tapas.arch import ArchError
    from tapas.pipeline import DatasetError, DatasetTooLarge

    if isinstance(e, APIError):
        return e
    if isinstance(e, ArchError):
        return APIError(422, "invalid_architecture", str(e), join_path(path or "", e.path))
    if isinstance(e, QueueFull):
        return APIError(429, "queue_full", f"{e}; retry in about {e.retry_after} s "
                        "(TAPAS_MAX_QUEUED_JOBS bounds the queue)", None,
                        headers={"Retry-After": str(e.retry_after)})
    if isinstance(e, DatasetTooLarge):
        return APIError(413, "dataset_too_large", str(e), path)
    if isinstance(e, DatasetError):
        return APIError(422, "invalid_dataset", str(e), path)
    return None


class ServiceState:
    """Everything the routes need; built by the app's lifespan, closed at shutdown."""

    def __init__(self, settings: Settings, *, train_default: bool = True,
                 job_workers: int = 1, predictor_params: dict[str, Any] | None = None,
                 min_experiments: int | None = None, torch_threads: int | None = 1) -> None:
        self.settings = settings
        self.train_default = train_default
        self.torch_threads = torch_threads
        self._prev_threads: int | None = None
        self.predictor_kwargs: dict[str, Any] = {"model_dir": settings.models}
        if predictor_params:
            self.predictor_kwargs["params"] = dict(predictor_params)
        if min_experiments is not None:
            self.predictor_kwargs["min_experiments"] = int(min_experiments)
        self._loaded: dict[str, tuple[Any, dict[str, Any], int]] = {}
        self._loaded_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._seq = 0
        self.store: Any = None
        self.jobs = JobRunner(workers=job_workers, error_mapper=map_error,
                              max_queued=settings.max_queued_jobs, journal=settings.home / "jobs")
        self.uploads = settings.home / "uploads"
        self._upload_refs: Counter[Path] = Counter()
        self._verified: dict[tuple[str, int, int], bool] = {}  # model file checks
        self._claims: dict[str, tuple[str, int]] = {}  # name -> (fingerprint, pending jobs)
        self._names_lock = threading.RLock()
        self._load_slot = threading.BoundedSemaphore(1)  # one dataset decoded per request
        from service.archs import set_cache_budget
        from tapas.pipeline import DataLimits

        self.limits = DataLimits.from_settings(settings)
        set_cache_budget(int(settings.cache_mb * 2**20))
        self.default_predictor: dict[str, Any] | None = None
        self.startup_error: dict[str, Any] | None = None
        self.no_default: str | None = None
        self.started = time.time()

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Open (and on first use seed) the database; queue the default predictor."""
        from tapas import pipeline

        if self.torch_threads:
            # Requests run in parallel on the server's thread pool; torch's own intra-op
            # threads on top of that oversubscribe the cores (measured on 2 cores: 1,000
            # networks in 0.17 s with 1 thread, 0.9-1.4 s with 2 under load).
            import torch

            self._prev_threads = torch.get_num_threads()
            torch.set_num_threads(self.torch_threads)
        self.store = pipeline.open_store(self.settings.database, read_only=False)
        if self.uploads.is_dir():  # files of jobs a killed server left behind (now 'lost')
            for f in self.uploads.iterdir():
                if f.is_file():
                    f.unlink(missing_ok=True)
        if self.train_default:
            self.jobs.submit("predictor", "load or train the default predictor",
                             self._default_predictor_work, key="predictor:default")

    def _default_predictor_work(self, ctx: JobContext) -> dict[str, Any]:
        """Load the registered predictor nearest the default DCN (a restart serves at once,
        even after ingests), else train one (first start)."""
        try:
            dcn = self.default_dcn()
            with self._load_lock:
                found = self._load_registered(dcn)
            info = found[1] if found else self.ensure_predictor(dcn, force=False, ctx=ctx)
        except APIError as e:
            if e.code != "no_experiments":
                self.startup_error = e.body()["error"]
                raise
            # An empty database is usable: ready, and predict answers 409 until data and a
            # predictor exist.
            self.no_default = e.message
            return {"predictor": None, "reason": e.message}
        except Exception as e:
            self.startup_error = map_error(e)
            raise
        self.default_predictor = info
        return {"predictor": info}

    def close(self, grace_s: float = 10.0) -> None:
        """Stop the jobs (queued ones are cancelled; running ones get ``grace_s`` to stop at
        their next progress report; a training run without reports is abandoned), then
        close the database."""
        self.jobs.shutdown(wait=grace_s)
        if self.store is not None:
            self.store.close()
            self.store = None
        if self._prev_threads is not None:
            import torch

            torch.set_num_threads(self._prev_threads)
            self._prev_threads = None

    @property
    def ready(self) -> bool:
        return self.store is not None and (self.default_predictor is not None
                                           or self.no_default is not None
                                           or not self.train_default)

    def default_dcn(self) -> float:
        """The median DCN of the characterised datasets (what most requests will be near)."""
        dcns = sorted(float(d.dcn) for d in self.store.datasets() if d.dcn is not None)
        if not dcns:
            return DEFAULT_DCN
        mid = len(dcns) // 2
        return dcns[mid] if len(dcns) % 2 else 0.5 * (dcns[mid - 1] + dcns[mid])

    # ------------------------------------------------------------------ datasets
    def datasets(self) -> list[dict[str, Any]]:
        return [dataset_dict(r) for r in self.store.datasets()]

    def dataset(self, ident: str, path: str = "url.id") -> dict[str, Any]:
        row = self.store.dataset(ident)
        if row is None:
            raise not_found("dataset", ident, path)
        return dataset_dict(row)

    def dataset_dcn(self, ident: str, path: str) -> tuple[float, dict[str, Any]]:
        """The DCN of a stored dataset; 404 when unknown, 409 while it is being computed."""
        ds = self.dataset(ident, path)
        if ds["dcn"] is None:
            raise APIError(409, "dcn_pending", f"dataset {ident!r} has no DCN yet; wait for its "
                           "job (GET /v1/jobs/{id}) or characterise it (POST /v1/datasets)", path)
        return float(ds["dcn"]), ds

    def _load(self, source: str | Path, path: str) -> Any:
        """Decode a dataset within the size limits; bad data is a 4xx naming ``path``."""
        from tapas.pipeline import load_dataset

        try:
            return load_dataset(source, self.limits)
        except Exception as e:
            err = to_api_error(e, path)
            if err is None:
                raise
            if isinstance(source, Path):
                err.message = err.message.replace(str(source), "the uploaded file")
                if err.code == "invalid_dataset":
                    err.code = "invalid_npz"
            raise err from None

    def check_builtin(self, spec: str) -> DatasetRef:
        """Validate a built-in dataset spec (never a server-side path) for a DCN job."""
        from tapas.pipeline import BUILTIN_DATASETS as BUILTINS

        base = spec.strip().partition("?")[0]
        if base not in BUILTINS:
            raise APIError(422, "unknown_dataset_spec",
                           f"{base!r} is not a built-in dataset ({', '.join(BUILTINS)}); upload "
                           "other data as a .npz file (multipart field 'file')", "body.spec")
        with self._load_slot:
            ds = self._load(spec, "body.spec")
        ref = DatasetRef(ds.name, ds.fingerprint, spec)
        self.check_name(ref, "body.spec")
        return ref

    def check_upload(self, data: bytes, name: str | None, filename: str) -> DatasetRef:
        """Validate uploaded ``.npz`` bytes (limits from the headers first) and keep them in
        ``uploads/<sha256>.npz`` for the job; identical uploads share the file."""
        import tempfile

        sha = hashlib.sha256(data).hexdigest()
        if name is None:
            import re

            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", filename.rsplit("/", 1)[-1])
            stem = re.sub(r"\.npz$", "", stem, flags=re.IGNORECASE).strip("._-")[:48]
            name = f"{stem or 'upload'}-{sha[:8]}"
        self.uploads.mkdir(parents=True, exist_ok=True)
        fd, tmp_s = tempfile.mkstemp(dir=self.uploads, prefix=".in-", suffix=".npz")
        tmp = Path(tmp_s)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            with self._load_slot:
                ds = self._load(tmp, "body.file")
            ref = DatasetRef(name, ds.fingerprint, str(self.uploads / f"{sha[:32]}.npz"))
            del ds
            self.check_name(ref, "body.name")
            with self._names_lock:  # atomic: a job finishing now cannot delete it under us
                os.replace(tmp, ref.source)
                self._upload_refs[Path(ref.source)] += 1
        finally:
            tmp.unlink(missing_ok=True)
        return dataclasses.replace(ref, upload=Path(ref.source))

    def _release_upload(self, path: Path) -> None:
        with self._names_lock:
            self._upload_refs[path] -= 1
            if self._upload_refs[path] <= 0:
                del self._upload_refs[path]
                path.unlink(missing_ok=True)

    def check_name(self, ref: Any, path: str) -> None:
        """409 when other data (a different fingerprint) is stored, or being stored by a
        job, under this name: its experiments would silently describe other data."""
        row = self.store.dataset(ref.name)
        taken = row.fingerprint if row is not None and row.fingerprint else None
        with self._names_lock:
            claim = self._claims.get(ref.name)
        other = taken if taken not in (None, ref.fingerprint) else (
            claim[0] if claim and claim[0] != ref.fingerprint else None)
        if other is not None:
            raise APIError(409, "dataset_exists",
                           f"a different dataset is already stored as {ref.name!r} "
                           f"(fingerprint {other[:12]}..., this one has "
                           f"{ref.fingerprint[:12]}...); choose another name", path)

    def _claim(self, ref: DatasetRef, path: str) -> None:
        """Bind ``ref.name`` to its fingerprint until the job ends (checked atomically with
        the other jobs; the stored row decides once the DCN is written)."""
        with self._names_lock:
            self.check_name(ref, path)
            fp, n = self._claims.get(ref.name, (ref.fingerprint, 0))
            self._claims[ref.name] = (fp, n + 1)

    def _unclaim(self, name: str) -> None:
        with self._names_lock:
            fp, n = self._claims.get(name, ("", 1))
            if n <= 1:
                self._claims.pop(name, None)
            else:
                self._claims[name] = (fp, n - 1)

    def submit_characterize(self, ref: DatasetRef, seed: int, force: bool) -> Any:
        """Queue the DCN computation of a validated dataset; returns the job (the queued
        job of an identical request when there is one)."""
        from tapas import pipeline

        def work(ctx: JobContext) -> dict[str, Any]:
            self._claim(ref, "body.name")
            try:
                ds = dataclasses.replace(self._load(ref.upload or ref.source, "body.file"),
                                         name=ref.name)
                row, res = pipeline.characterize(self.store, ds, seed=seed, force=force,
                                                 progress=ctx.progress)
            finally:
                self._unclaim(ref.name)
            out = {"dataset": dataset_dict(row)}
            to_dict = getattr(res, "to_dict", None)
            out["dcn"] = to_dict() if callable(to_dict) else {"dcn": float(res.dcn)}
            return out

        on_done = (lambda: self._release_upload(ref.upload)) if ref.upload else None
        key = f"dcn:{ref.fingerprint}:{ref.name}:{seed}:{force}"
        try:
            job = self.jobs.submit("dcn", f"DCN of {ref.name}", work, key=key, on_done=on_done)
        except QueueFull as e:
            raise to_api_error(e) from None
        return job

    # --------------------------------------------------------------- experiments
    def ingest(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        from tapas import pipeline

        rep = pipeline.ingest_records(self.store, records)
        out = rep.to_dict()
        rejected = []
        for r in out["rejected"]:
            where = r["where"]
            r = dict(r)
            if isinstance(where, int):
                r["path"] = f"body.records[{where}]"
            rejected.append(r)
        out["rejected"] = rejected
        return out

    def experiments(self, dcn: float, tau: float, limit: int, offset: int) -> dict[str, Any]:
        s = self.store.filter_by_dcn(dcn, tau)
        n = len(s)
        sl = slice(offset, min(offset + limit, n))
        cols = zip(s.arch_id[sl].tolist(), s.dataset_id[sl].tolist(), s.dcn[sl].tolist(),
                   s.accuracy[sl].tolist(), s.num_classes[sl].tolist(), s.split[sl].tolist(),
                   strict=True)
        items = [{"arch_id": a, "dataset_id": d, "dcn": c, "accuracy": acc, "num_classes": k,
                  "split": sp} for a, d, c, acc, k, sp in cols]
        return {"items": items, "total": n, "limit": limit, "offset": offset, "dcn": dcn,
                "tau": tau}

    # ---------------------------------------------------------------- predictors
    def ensure_predictor(self, dcn: float, force: bool = False,
                         ctx: JobContext | None = None) -> dict[str, Any]:
        """Train (or reuse) the predictor for ``dcn`` and keep it loaded for predict."""
        from tapas import pipeline

        if ctx is not None:
            ctx.progress(0.05, message="selecting experiments; training unless cached")
        try:
            model, info = pipeline.get_predictor(
                self.store, dcn, force=force, **self.predictor_kwargs,
                progress=None if ctx is None else (lambda e, n: ctx.progress(
                    0.05 + 0.9 * e / max(n, 1),
                    message=f"training the predictor: epoch {e}/{n}")))
        except LookupError as e:
            raise APIError(409, "no_experiments", str(e), "body.dcn") from None
        out = predictor_dict(info)
        self._remember(model, out)
        return out

    def _remember(self, model: Any, info: dict[str, Any]) -> None:
        with self._loaded_lock:
            self._seq += 1
            self._loaded[info["id"]] = (model, info, self._seq)
            while len(self._loaded) > MAX_LOADED:
                oldest = min(self._loaded, key=lambda k: self._loaded[k][2])
                if self.default_predictor and oldest == self.default_predictor["id"]:
                    self._loaded[oldest] = (*self._loaded[oldest][:2], self._seq + 1)
                    continue
                del self._loaded[oldest]

    def submit_predictor(self, dcn: float, force: bool) -> Any:
        """Queue training (or reuse) for ``dcn``; an identical pending request's job is
        returned instead of a second one."""
        def work(ctx: JobContext) -> dict[str, Any]:
            return {"predictor": self.ensure_predictor(dcn, force, ctx)}

        try:
            return self.jobs.submit("predictor", f"predictor for DCN {dcn:.4f}", work,
                                    key=f"predictor:{dcn!r}:{force}")
        except QueueFull as e:
            raise to_api_error(e) from None

    def predictors(self) -> list[dict[str, Any]]:
        """Registered predictors whose model file is present and passes its checksum."""
        return [predictor_dict(r) for r in self.store.predictors() if self._usable(r)]

    def _usable(self, row: Any) -> bool:
        from tapas.pipeline import model_path, verify_predictor

        path = model_path(row.artifact, self.settings.models)
        try:
            st = path.stat()
        except OSError:
            return False
        key = (str(path), st.st_mtime_ns, st.st_size)
        ok = self._verified.get(key)
        if ok is None:
            try:
                verify_predictor(path)
                ok = True
            except (OSError, ValueError) as e:  # ModelFileError is a ValueError
                log.warning("predictor %s is unusable: %s", row.id, e)
                ok = False
            if len(self._verified) > 4096:
                self._verified.clear()
            self._verified[key] = ok
        return ok

    def predictor(self, ident: str) -> dict[str, Any]:
        row = self.store.predictor(ident)
        if row is None:
            raise not_found("predictor", ident, "url.id")
        return predictor_dict(row)

    def covering(self, dcn: float) -> tuple[Any, dict[str, Any]] | None:
        """The loaded predictor whose DCN range covers ``dcn``: nearest target, newest."""
        best = None
        with self._loaded_lock:
            for model, info, seq in self._loaded.values():
                if info["dcn_lo"] - 1e-9 <= dcn <= info["dcn_hi"] + 1e-9:
                    key = (abs(info["dcn"] - dcn), -seq)
                    if best is None or key < best[0]:
                        best = (key, model, info)
        return None if best is None else (best[1], best[2])

    def _load_registered(self, dcn: float) -> tuple[Any, dict[str, Any]] | None:
        """A predictor in the registry covering ``dcn`` (trained earlier), loaded from disk;
        one whose file is gone or unreadable (e.g. an older format) is passed over."""
        from tapas.pipeline import ModelFileError, load_predictor, model_path

        models = self.settings.models
        rows = [r for r in self.store.predictors() if r.dcn_lo - 1e-9 <= dcn <= r.dcn_hi + 1e-9
                and model_path(r.artifact, models).exists()]
        rows.sort(key=lambda r: (abs(r.dcn - dcn), -_timestamp(r.created_at)))
        for row in rows:
            try:
                model = load_predictor(model_path(row.artifact, models))
            except (ModelFileError, OSError, ValueError) as e:
                log.warning("skipping predictor %s: %s", row.id, e)
                continue
            info = predictor_dict(row)
            info["cached"] = True
            self._remember(model, info)
            return model, info
        return None

    def select_predictor(self, dcn: float) -> tuple[Any, dict[str, Any]]:
        """The predictor that answers a request for ``dcn``; never trains on the request path.

        A loaded predictor whose experiments' DCN range covers ``dcn`` answers (the one
        trained for the nearest DCN, newest first); else one from the registry; else 409
        ``no_predictor`` (train one with ``POST /v1/predictors``). Ingesting experiments
        does not retire a loaded predictor: it answers until a newer one is trained.
        """
        if not self.ready:
            raise APIError(503, "not_ready", "the service is starting (loading the default "
                           "predictor); retry when GET /health/ready answers 200")
        found = self.covering(dcn)
        if found is None:
            with self._load_lock:
                found = self.covering(dcn) or self._load_registered(dcn)
        if found is None:
            raise APIError(409, "no_predictor",
                           f"no trained predictor covers DCN {dcn:.4f}; train one with "
                           f"POST /v1/predictors {{\"dcn\": {dcn:.4f}}} (a background job) and "
                           "retry", "body.dcn")
        return found

    # ------------------------------------------------------------------- predict
    def pinned_predictor(self, ident: str) -> tuple[Any, dict[str, Any]]:
        """The registered predictor ``ident`` (a request's ``predictor``), whatever was
        trained since; 404 when unknown or its file is gone."""
        from tapas.pipeline import ModelFileError, registered_predictor

        try:
            model, info = registered_predictor(self.store, ident, self.settings.models)
        except LookupError as e:
            raise APIError(404, "predictor_not_found", str(e), "body.predictor") from None
        except ModelFileError as e:
            raise APIError(409, "unreadable_predictor", str(e), "body.predictor") from None
        return model, predictor_dict(info)

    def predict(self, archs: Sequence[Any], dcn: float,
                predictor: str | None = None) -> tuple[Any, dict[str, Any]]:
        """Score parsed architectures: (prediction with mean/spread/lower/upper, predictor);
        ``predictor`` pins a registered one instead of the one covering ``dcn``."""
        model, info = (self.pinned_predictor(predictor) if predictor is not None
                       else self.select_predictor(dcn))
        try:
            return model.predict_interval(list(archs), dcn), info
        except ValueError as e:  # e.g. an architecture the encoding cannot represent
            raise APIError(422, "unscorable_architecture", str(e), "body.archs") from None
