"""What the running service holds: the application (:class:`tapas.app.pipeline.Pipeline`)
and the job runner.

This is the only module of ``service`` that calls :mod:`tapas.app.pipeline`; routes call
this. The pipeline opens the database once for writing when the app starts (DuckDB
allows one writing process, so while the service runs it is the database's only
writer); request threads and jobs share it. Which predictor answers a request is the
pipeline's rule (:meth:`~tapas.app.pipeline.Pipeline.select`), the same for the CLI and the
in-process scorer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from service.batching import ScoreBatcher
from service.body import freeze_long_lived
from service.errors import APIError, to_api_error
from service.jobs import JobContext, JobRunner
from tapas.app.pipeline import (
    BUILTIN_DATASETS,
    DataLimits,
    LDEError,
    Pipeline,
    load_dataset,
    verify_predictor,
)
from tapas.core.arch.cache import budgeted, sizeof
from tapas.core.config import Settings
from tapas.core.errors import (
    DatasetExists,
    DatasetNotFound,
    DcnPending,
    InvalidDataset,
    NoExperiments,
    NoPredictor,
    PredictorNotFound,
    TapasError,
    UnreadablePredictor,
    Unscorable,
)
from tapas.core.lazy import LazyImport
from tapas.core.types import (
    Answer,
    DatasetInfo,
    PredictorInfo,
    Query,
    Target,
    TargetError,
    resolve_target,
    set_cache_budget,
)

torch = LazyImport("torch")

log = logging.getLogger("tapas.service")

DEFAULT_DCN = 0.5
"""The default predictor's target when the database has no characterised dataset."""
_MODEL_CHECKS = budgeted("model-checks")
"""Whether a model file (path, mtime, size) passed its checksum: listing predictors
checksums each file once."""


@dataclasses.dataclass(frozen=True)
class DatasetRef:
    """What a DCN job needs to load its data again: the upload's file or the built-in
    spec, and what validation found (queued jobs hold this, not the arrays)."""

    name: str
    fingerprint: str
    source: str
    n_classes: int
    input_shape: tuple[int, int, int]
    upload: Path | None = None


def map_error(e: BaseException) -> dict[str, Any]:
    """Turn a failure inside a job into the API's error shape (no traceback)."""
    api = to_api_error(e)
    if api is not None:
        return api.body()["error"]
    if isinstance(e, LDEError):
        return {"code": "database_error", "message": str(e), "path": None}
    log.error("job failed", exc_info=e)
    return {"code": "job_failed", "message": f"{type(e).__name__}: {e}", "path": None}


@contextlib.contextmanager
def located(path: str, *kinds: type[TapasError]) -> Iterator[None]:
    """Errors of ``kinds`` raised inside name ``path`` as the request's offending field
    (unless they name one already): the pipeline knows what failed, only the service
    knows where that came from in the request."""
    try:
        yield
    except kinds as e:
        if not e.path:
            e.path = path
        raise


class ServiceState:
    """Everything the routes need; built by the app's lifespan, closed at shutdown."""

    def __init__(self, settings: Settings, *, train_default: bool = True,
                 job_workers: int = 1, predictor_params: dict[str, Any] | None = None,
                 min_experiments: int | None = None, torch_threads: int | None = 1) -> None:
        self.settings = settings
        self.train_default = train_default
        self.torch_threads = torch_threads
        self._prev_threads: int | None = None
        set_cache_budget(int(settings.cache_mb * 2**20))  # before the pipeline reads it
        self.pipeline = Pipeline(settings.database, model_dir=settings.models,
                                 predictor_params=predictor_params,
                                 min_experiments=min_experiments)
        self.store: Any = None
        self.jobs = JobRunner(workers=job_workers, error_mapper=map_error,
                              max_queued=settings.max_queued_jobs, journal=settings.home / "jobs")
        self.uploads = settings.home / "uploads"
        self._upload_refs: Counter[Path] = Counter()
        self._verified = _MODEL_CHECKS.scoped(self)
        self._claims: dict[str, tuple[str, int]] = {}  # name -> (fingerprint, pending jobs)
        self._names_lock = threading.RLock()
        self._load_slot = threading.BoundedSemaphore(1)  # one dataset decoded per request
        self.limits = DataLimits.from_settings(settings)
        self.default_predictor: dict[str, Any] | None = None
        self.startup_error: dict[str, Any] | None = None
        self.no_default: str | None = None
        self.started = time.time()
        self.scorer: ScoreBatcher | None = None
        self.default_job: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Open (and on first use seed) the database; queue the default predictor."""
        if self.torch_threads:
            # Requests run in parallel on the server's thread pool; torch's own intra-op
            # threads on top of that oversubscribe the cores (measured on 2 cores: 1,000
            # networks in 0.17 s with 1 thread, 0.9-1.4 s with 2 under load).

            self._prev_threads = torch.get_num_threads()
            torch.set_num_threads(self.torch_threads)
        self.store = self.pipeline.open().store
        self.scorer = ScoreBatcher(self.pipeline.answer_many)
        if self.uploads.is_dir():  # files of jobs a killed server left behind (now 'lost')
            for f in self.uploads.iterdir():
                if f.is_file():
                    f.unlink(missing_ok=True)
        if self.train_default:
            self.default_job = self.jobs.submit(
                "predictor", "load or train the default predictor",
                self._default_predictor_work, key="predictor:default").id

    def _default_predictor_work(self, ctx: JobContext) -> dict[str, Any]:
        """The predictor nearest the default DCN: a registered one (a restart serves at
        once, even after ingests), else one trained now (first start). Kept in memory."""
        t0 = time.perf_counter()
        try:
            dcn = self.default_dcn()
            try:
                _, info = self.pipeline.select(dcn)
                out = info.to_dict()
                self._pin(info)
            except NoPredictor:
                log.info("training the default predictor for DCN %.4f as job %s; requests "
                         "that other predictors cover are answered meanwhile", dcn, ctx.job.id)
                out = self.ensure_predictor(dcn, force=False, ctx=ctx, pin=True)
        except NoExperiments as e:
            # An empty database is usable: ready, and predict answers 409 until data and a
            # predictor exist.
            self.no_default = e.message
            return {"predictor": None, "reason": e.message}
        except Exception as e:
            self.startup_error = map_error(e)
            raise
        self.default_predictor = out
        freeze_long_lived()  # the pinned predictor and its history live as long as the server
        log.info("default predictor %s ready after %.1f s", out["id"], time.perf_counter() - t0)
        return {"predictor": out}

    def _pin(self, info: PredictorInfo) -> None:
        """Keep a predictor in memory for good (the default one)."""
        self.pipeline.pin(info.id)

    def close(self, grace_s: float = 10.0) -> None:
        """Stop the jobs (queued ones are cancelled; running ones get ``grace_s`` to stop at
        their next progress report; a training run without reports is abandoned), then
        close the database."""
        self.jobs.shutdown(wait=grace_s)
        if self.scorer is not None:
            self.scorer.close()
            self.scorer = None
        if self.store is not None:
            self.pipeline.close()
            self.store = None
        if self._prev_threads is not None:

            torch.set_num_threads(self._prev_threads)
            self._prev_threads = None

    @property
    def ready(self) -> bool:
        """The database is open and startup did not fail: requests are answered (the default
        predictor may still be training as a job; :attr:`default_state`)."""
        return self.store is not None and self.startup_error is None

    @property
    def default_state(self) -> str:
        """``loaded``, ``training``, ``none`` (no experiments), ``failed`` or ``off``."""
        if not self.train_default:
            return "off"
        if self.startup_error is not None:
            return "failed"
        if self.default_predictor is not None:
            return "loaded"
        return "none" if self.no_default is not None else "training"

    def default_dcn(self) -> float:
        """The median DCN of the characterised datasets (what most requests will be near)."""
        dcns = sorted(float(d.dcn) for d in self.pipeline.datasets() if d.dcn is not None)
        if not dcns:
            return DEFAULT_DCN
        mid = len(dcns) // 2
        return dcns[mid] if len(dcns) % 2 else 0.5 * (dcns[mid - 1] + dcns[mid])

    # ------------------------------------------------------------------ datasets
    def datasets(self) -> list[dict[str, Any]]:
        return [d.to_dict() for d in self.pipeline.datasets()]

    def dataset(self, ident: str, path: str = "url.id") -> dict[str, Any]:
        info = self.pipeline.dataset(ident)
        if info is None:
            raise DatasetNotFound(f"no dataset with id {ident!r}", path=path)
        return info.to_dict()

    def dataset_dcn(self, ident: str, path: str) -> tuple[float, dict[str, Any]]:
        """The DCN of a stored dataset; 404 when unknown, 409 while it is being computed."""
        ds = self.dataset(ident, path)
        if ds["dcn"] is None:
            raise DcnPending(f"dataset {ident!r} has no DCN yet; wait for its job (GET "
                             "/v1/jobs/{id}) or characterise it (POST /v1/datasets)", path=path)
        return float(ds["dcn"]), ds

    def target(self, *, dcn: float | None, dataset: str | None, num_classes: int | None,
               input_shape: Sequence[int] | None) -> Target:
        """A request's target by the one rule (:func:`tapas.core.types.resolve_target`); errors
        are 4xx naming the field (an unknown dataset 404, one without a DCN yet 409)."""
        def lookup(ident: str) -> DatasetInfo:
            return DatasetInfo.from_dict(self.dataset_dcn(ident, "body.dataset")[1])

        try:
            return resolve_target(lookup, dcn=dcn, dataset=dataset, num_classes=num_classes,
                                  input_shape=input_shape)
        except TargetError as e:
            e.path = f"body.{e.field}"
            raise

    def _load(self, source: str | Path, path: str) -> Any:
        """Decode a dataset within the size limits; bad data is a 4xx naming ``path``."""
        try:
            with located(path, InvalidDataset):
                return load_dataset(source, self.limits)
        except InvalidDataset as e:
            if isinstance(source, Path):  # the server's file name is none of the caller's business
                e.message = e.message.replace(str(source), "the uploaded file")
                if e.code == "invalid_dataset":
                    e.code = "invalid_npz"
            raise

    def check_builtin(self, spec: str) -> DatasetRef:
        """Validate a built-in dataset spec (never a server-side path) for a DCN job."""
        base = spec.strip().partition("?")[0]
        if base not in BUILTIN_DATASETS:
            raise APIError(422, "unknown_dataset_spec",
                           f"{base!r} is not a built-in dataset ({', '.join(BUILTIN_DATASETS)}); "
                           "upload other data as a .npz file (multipart field 'file')",
                           "body.spec")
        with self._load_slot:
            ds = self._load(spec, "body.spec")
        ref = DatasetRef(ds.name, ds.fingerprint, spec, ds.num_classes, ds.input_shape)
        self.check_name(ref, "body.spec")
        return ref

    def check_upload(self, data: bytes, name: str | None, filename: str) -> DatasetRef:
        """Validate uploaded ``.npz`` bytes (limits from the headers first) and keep them in
        ``uploads/<sha256>.npz`` for the job; identical uploads share the file."""
        sha = hashlib.sha256(data).hexdigest()
        if name is None:
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
            ref = DatasetRef(name, ds.fingerprint, str(self.uploads / f"{sha[:32]}.npz"),
                             ds.num_classes, ds.input_shape)
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

    def check_name(self, ref: DatasetRef, path: str) -> None:
        """409 ``dataset_exists`` when the name stands for other content, stored (the
        pipeline's identity rule: another fingerprint, or a dataset registered without
        images whose DCN, shape or classes would change) or claimed by a queued or
        running job for other data: its experiments would silently describe other data."""
        with located(path, DatasetExists):
            self.pipeline.check_dataset(ref.name, ref.fingerprint, ref.n_classes,
                                        ref.input_shape)
        with self._names_lock:
            claim = self._claims.get(ref.name)
        if claim and claim[0] != ref.fingerprint:
            raise DatasetExists(f"dataset {ref.name!r} is being stored for other data by a "
                                f"queued or running job (fingerprint {claim[0][:16]}, these "
                                f"data {ref.fingerprint[:16]}); choose another name", path=path)

    def _claim(self, ref: DatasetRef, path: str) -> None:
        """Bind ``ref.name`` to its fingerprint from submission until the job ends (checked
        atomically with the other submissions; the stored row decides once the DCN is
        written)."""
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

    def submit_characterize(self, ref: DatasetRef, seed: int, force: bool,
                            path: str = "body.name") -> Any:
        """Queue the DCN computation of a validated dataset; returns the job (the queued
        job of an identical request when there is one). The name is claimed for these
        data now, so other data under the same name are a 409 at submission, not a failed
        job later."""
        def work(ctx: JobContext) -> dict[str, Any]:
            ds = dataclasses.replace(self._load(ref.upload or ref.source, "body.file"),
                                     name=ref.name)
            info, res = self.pipeline.characterize(ds, seed=seed, force=force,
                                                   progress=ctx.progress)
            out = {"dataset": info.to_dict()}
            to_dict = getattr(res, "to_dict", None)
            out["dcn"] = to_dict() if callable(to_dict) else {"dcn": float(res.dcn)}
            return out

        def on_done() -> None:
            self._unclaim(ref.name)
            if ref.upload:
                self._release_upload(ref.upload)

        try:
            self._claim(ref, path)
        except Exception:
            if ref.upload:
                self._release_upload(ref.upload)
            raise
        key = f"dcn:{ref.fingerprint}:{ref.name}:{seed}:{force}"
        return self.jobs.submit("dcn", f"DCN of {ref.name}", work, key=key, on_done=on_done)

    # --------------------------------------------------------------- experiments
    def ingest(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        out = self.pipeline.ingest(records).to_dict()
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
    def ensure_predictor(self, dcn: float, force: bool = False, ctx: JobContext | None = None,
                         pin: bool = False) -> dict[str, Any]:
        """Train (or reuse) the predictor for ``dcn``; the pipeline keeps it loaded."""
        if ctx is not None:
            ctx.progress(0.05, message="selecting experiments; training unless cached")
        with located("body.dcn", NoExperiments):
            _, info = self.pipeline.train(
                dcn, force=force, pin=pin,
                progress=None if ctx is None else (lambda e, n: ctx.progress(
                    0.05 + 0.9 * e / max(n, 1), message=f"training the predictor: epoch {e}/{n}")),
                # a DELETE takes effect during selection and encoding too, not only per epoch
                checkpoint=None if ctx is None else (lambda phase: ctx.progress(
                    ctx.job.progress, message=f"training the predictor: {phase}")))
        return info.to_dict()

    def submit_predictor(self, dcn: float, force: bool) -> Any:
        """Queue training (or reuse) for ``dcn``; an identical pending request's job is
        returned instead of a second one."""
        def work(ctx: JobContext) -> dict[str, Any]:
            return {"predictor": self.ensure_predictor(dcn, force, ctx)}

        return self.jobs.submit("predictor", f"predictor for DCN {dcn:.4f}", work,
                                key=f"predictor:{dcn!r}:{force}")

    def predictors(self) -> list[dict[str, Any]]:
        """Registered predictors whose model file is present and passes its checksum."""
        return [i.to_dict() for i in self.pipeline.predictors() if self._usable(i)]

    def _usable(self, info: PredictorInfo) -> bool:
        try:
            path = self.pipeline.model_path(info.artifact)
            st = path.stat()
        except (OSError, ValueError):  # ModelFileError: an entry naming a file outside
            return False
        key = (str(path), st.st_mtime_ns, st.st_size)
        ok = self._verified.get(key)
        if ok is None:
            try:
                verify_predictor(path)
                ok = True
            except (OSError, ValueError) as e:  # ModelFileError is a ValueError
                log.warning("predictor %s is unusable: %s", info.id, e)
                ok = False
            self._verified.put(key, ok, sizeof(key))
        return ok

    def predictor(self, ident: str) -> dict[str, Any]:
        with located("url.id", PredictorNotFound):  # not a predictor id: it names none
            info = self.pipeline.predictor(ident)
        if info is None:
            raise PredictorNotFound(f"no predictor with id {ident!r}", path="url.id")
        return info.to_dict()

    # ------------------------------------------------------------------- predict
    def predict(self, query: Query) -> Answer:
        """Answer a parsed request through the batching thread (the pipeline's one call,
        :meth:`Pipeline.answer_many`).

        The pipeline's predictor answers (:meth:`Pipeline.select`: ``predictor`` pins a
        registered one by id, 404 when unknown; else the one covering ``dcn``, never
        trained on the request path; none yet is 409 ``no_predictor``, train one with
        ``POST /v1/predictors``).
        """
        if self.scorer is None:
            raise APIError(503, "not_ready", "the service is starting (opening the database); "
                           "retry when GET /health/ready answers 200",
                           headers={"Retry-After": "2"})
        try:
            with located("body.predictor", PredictorNotFound, UnreadablePredictor):
                return self.scorer.submit(query)
        except NoPredictor as e:
            if self.default_state == "training":
                raise APIError(503, "predictor_training", f"{e}; the default predictor is "
                               f"being loaded or trained (job {self.default_job}): retry "
                               "shortly", "body.dcn", headers={"Retry-After": "5"}) from None
            raise
        except TapasError:
            raise
        except ValueError as e:  # not a domain error: an architecture the encoding cannot
            raise Unscorable(str(e), path="body.archs") from None  # represent
