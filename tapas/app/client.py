"""HTTP client of the tapas service, for search loops that run away from the models.

It imports neither torch nor duckdb (only httpx, numpy and the pure-Python parts of
``tapas``), so a machine that runs a search loop needs the client and nothing else::

    from tapas.app.client import Client

    with Client("http://127.0.0.1:8000") as c:
        ds = c.characterize(spec="digits")               # waits for the DCN job
        preds = c.predict(["|nor_conv_3x3~0|+|...|"], dataset=ds.name)
        print(preds[0].mean, preds[0].lower, preds[0].upper)

Transient failures (connection errors, timeouts, 429, 502, 503, 504) are retried
with exponential backoff (``Retry-After`` is honoured); every other error answer is
raised as the :mod:`tapas.core.errors` class its ``code`` names (every one a :class:`TapasError`,
carrying the service's ``code`` and ``path``). Large
predict and ingest calls are split into requests of at most ``max_batch`` architectures
(``batch_size`` records) and ``max_body_mb`` MiB of JSON, below the server's default
``TAPAS_MAX_BODY_MB``; a batch the server still refuses with 413 (``too_many_archs``,
``body_too_large``) is halved.
"""

from __future__ import annotations

import io
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from tapas.core.errors import NoPredictor, TapasError
from tapas.core.lazy import LazyImport
from tapas.core.types import (
    Answer,
    DatasetInfo,
    Prediction,
    check_dcn_or_dataset,
    check_shape,
)

# pydantic (record validation): loaded by the ingest calls, not for every `import`
core_records = LazyImport("tapas.core.records")

RETRY_STATUS = frozenset({429, 502, 503, 504})
DEFAULT_MAX_BATCH = 5_000
DEFAULT_INGEST_BATCH = 5_000
DEFAULT_MAX_BODY_MB = 8.0
"""Half the server's default TAPAS_MAX_BODY_MB (16): JSON sizes are estimated per item."""
SPLIT_CODES = frozenset({"too_many_archs", "body_too_large", "payload_too_large"})
FINISHED = frozenset({"succeeded", "failed", "cancelled"})


# ------------------------------------------------------------------------ errors/types
class TapasConnectionError(TapasError):
    """No usable answer after every retry (unreachable, timed out, or still 5xx/429)."""

    remote = True


class JobFailed(TapasError):
    """A background job (DCN, predictor training) ended in ``failed`` or ``cancelled``."""

    remote = True


@dataclass(frozen=True)
class Job:
    """A background job's state as the service reports it."""

    id: str
    kind: str
    state: str
    progress: float
    message: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Job:
        return cls(id=d["id"], kind=d.get("kind", ""), state=d["state"],
                   progress=float(d.get("progress", 0.0)), message=d.get("message", ""),
                   result=d.get("result"), error=d.get("error"), raw=d)

    @property
    def done(self) -> bool:
        return self.state in FINISHED


# ------------------------------------------------------------------------ helpers
def arch_payload(arch: Any) -> str | dict[str, Any]:
    """An architecture as the API takes it: text or a JSON object in any notation.

    Accepts strings, dicts and anything with ``to_dict()`` (e.g. ``tapas.core.arch.Architecture``).
    """
    if isinstance(arch, str | dict):
        return arch
    to_dict = getattr(arch, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"cannot send {type(arch).__name__} as an architecture; give text or a "
                    "JSON object in a notation (tapas arch notations) or a "
                    "tapas.core.arch.Architecture")


def npz_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    """Arrays ``x`` (images) and ``y`` (labels) as the ``.npz`` the upload route reads."""
    buf = io.BytesIO()
    np.savez(buf, x=np.asarray(x), y=np.asarray(y))
    return buf.getvalue()


def _error_from(r: httpx.Response) -> TapasError:
    """The error answer ``r`` as the domain error its ``code`` names (a ``NotFound`` for
    404 ``predictor_not_found``, a ``NoPredictor`` for 409 ``no_predictor``, ...)."""
    try:
        err = r.json()["error"]
        return TapasError.from_service(str(err.get("message") or r.reason_phrase),
                                       status=r.status_code, code=err.get("code"),
                                       path=err.get("path"), details=err.get("details"))
    except (ValueError, KeyError, TypeError, AttributeError):
        text = r.text.strip()[:300] or r.reason_phrase
        return TapasError.from_service(text, status=r.status_code,
                                       code=f"http_{r.status_code}")


def _retry_after(r: httpx.Response) -> float | None:
    v = r.headers.get("retry-after")
    if v is None:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        return None


# ------------------------------------------------------------------------ client
class Client:
    """A connection to a running tapas service.

    Parameters
    ----------
    url : base URL, e.g. ``http://127.0.0.1:8000``.
    token : bearer token for write routes (uploads, ingest, training); the server's
        ``TAPAS_API_TOKEN``.
    timeout : seconds per HTTP request.
    retries : extra attempts after a transient failure (0 disables retrying).
    backoff : first retry delay in seconds; doubles each attempt up to ``max_backoff``
        (with +-25 % jitter so many clients do not retry in step).
    max_batch : at most this many architectures per predict request.
    max_body_mb : at most this many MiB of JSON per predict or ingest request.
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0,
                 retries: int = 4, backoff: float = 0.25, max_backoff: float = 8.0,
                 max_batch: int = DEFAULT_MAX_BATCH,
                 max_body_mb: float = DEFAULT_MAX_BODY_MB) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if retries < 0 or backoff < 0 or max_batch < 1 or timeout <= 0 or max_body_mb <= 0:
            raise ValueError("retries and backoff must be >= 0, max_batch >= 1, timeout > 0, "
                             "max_body_mb > 0")
        self.url = url.rstrip("/")
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_batch = int(max_batch)
        self.max_body_bytes = int(max_body_mb * 2**20)
        self.timeout = float(timeout)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)
        self._jitter = random.Random()
        #: Attempts made by the last request (1 = no retry); for logs and tests.
        self.last_attempts = 0

    # -------------------------------------------------------------- plumbing
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def _delay(self, attempt: int, hint: float | None) -> float:
        base = min(self.max_backoff, self.backoff * 2 ** attempt)
        d = base * (0.75 + 0.5 * self._jitter.random())
        return min(self.max_backoff, max(d, hint or 0.0))

    def request(self, method: str, path: str, *, ok: Iterable[int] = (200,),
                timeout: float | None = None, **kwargs: Any) -> httpx.Response:
        """Send one request with retries; the answer if its status is in ``ok``.

        Raises :class:`TapasError` on a non-transient error answer and
        :class:`TapasConnectionError` once the retries are spent.
        """
        ok = frozenset(ok)
        last: str = ""
        if timeout is not None:
            kwargs["timeout"] = timeout
        for attempt in range(self.retries + 1):
            self.last_attempts = attempt + 1
            hint = None
            try:
                r = self._http.request(method, path, **kwargs)
            except httpx.TransportError as e:  # connect/read errors and timeouts
                last = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            else:
                if r.status_code in ok:
                    return r
                if r.status_code not in RETRY_STATUS:
                    raise _error_from(r)
                err = _error_from(r)
                last, hint = str(err), _retry_after(r)
                if attempt == self.retries:
                    raise TapasConnectionError(
                        f"{method} {path} still failing after {attempt + 1} attempts: {last}",
                        status=r.status_code, code=err.code, path=err.path)
            if attempt < self.retries:
                time.sleep(self._delay(attempt, hint))
        raise TapasConnectionError(f"{method} {self.url}{path} failed after "
                                   f"{self.retries + 1} attempts: {last}", code="unreachable")

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self.request(method, path, **kwargs)
        try:
            return r.json()
        except ValueError:
            raise TapasError.from_service(f"{method} {path}: the answer is not JSON: "
                                          f"{r.text[:200]!r}", status=r.status_code,
                                          code="invalid_response") from None

    # -------------------------------------------------------------- health
    def health(self) -> dict[str, Any]:
        """``GET /health/live``: the process answers (raises when unreachable)."""
        return self._json("GET", "/health/live")

    def ready(self) -> dict[str, Any]:
        """``GET /health/ready`` as a dict; ``status`` is ``ok``, ``starting`` or ``failed``.

        Never retried: a 503 here means "not ready yet", which is the answer.
        """
        try:
            r = self._http.get("/health/ready")
        except httpx.TransportError as e:
            raise TapasConnectionError(f"GET {self.url}/health/ready: {e}",
                                       code="unreachable") from None
        try:
            return r.json()
        except ValueError:
            raise _error_from(r) from None

    def wait_ready(self, timeout: float = 300.0, poll: float = 0.5,
                   default: bool = True) -> dict[str, Any]:
        """Block until ``/health/ready`` says ``ok`` (and, with ``default``, until the
        default predictor is no longer ``training``); raise when it fails or times out."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                h = self.ready()
            except TapasConnectionError:
                h = {"status": "starting", "detail": "not reachable yet"}
            if h.get("status") == "ok" and not (default and h.get("default") == "training"):
                return h
            if h.get("status") == "failed":
                raise TapasError.from_service(f"the service failed to start: {h.get('detail')}",
                                              status=503, code="not_ready")
            if time.monotonic() > deadline:
                raise TapasConnectionError(f"the service was not ready within {timeout:g} s "
                                           f"({h.get('detail')})", status=503, code="not_ready")
            time.sleep(poll)

    # -------------------------------------------------------------- jobs
    def job(self, job_id: str) -> Job:
        return Job.from_dict(self._json("GET", f"/v1/jobs/{job_id}"))

    def wait_job(self, job_id: str, *, timeout: float | None = None, poll: float = 0.25,
                 progress: Callable[[Job], None] | None = None) -> Job:
        """Poll a job until it finishes; ``progress(job)`` is called on every poll.

        Raises :class:`JobFailed` (with the job's error code) when it fails.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = poll
        while True:
            job = self.job(job_id)
            if progress is not None:
                progress(job)
            if job.done:
                if job.state != "succeeded":
                    err = job.error or {}
                    raise JobFailed(f"job {job.id} {job.state}: "
                                    f"{err.get('message') or job.message}",
                                    code=err.get("code", f"job_{job.state}"),
                                    path=err.get("path"))
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TapasError.from_service(f"job {job_id} did not finish within {timeout:g} "
                                              f"s (state {job.state}, {job.progress:.0%})",
                                              status=None, code="job_timeout")
            time.sleep(delay)
            delay = min(2.0, delay * 1.5)

    # -------------------------------------------------------------- datasets
    def datasets(self) -> list[DatasetInfo]:
        return [DatasetInfo.from_dict(d) for d in self._json("GET", "/v1/datasets")["items"]]

    def dataset(self, ident: str) -> DatasetInfo:
        """A stored dataset by id or name (:class:`TapasError` 404 when unknown)."""
        return DatasetInfo.from_dict(self._json("GET", f"/v1/datasets/{quote(ident, safe='')}"))

    def characterize(self, spec: str | None = None, *, x: np.ndarray | None = None,
                     y: np.ndarray | None = None, file: str | Path | None = None,
                     name: str | None = None, seed: int = 0, force: bool = False,
                     wait: bool = True, timeout: float | None = 1800.0,
                     progress: Callable[[Job], None] | None = None) -> DatasetInfo | Job:
        """Register a dataset and compute its DCN on the server.

        Give exactly one of: ``spec`` (a built-in such as ``"digits"`` or
        ``"mnist1d?label_noise=0.2"``), arrays ``x``/``y`` (sent as an ``.npz``), or
        ``file`` (a local ``.npz``). With ``wait`` (default) the DCN job is polled to
        the end (``progress(job)`` on each poll) and the stored dataset is returned;
        otherwise the job.
        """
        given = sum(v is not None for v in (spec, file)) + (x is not None or y is not None)
        if given != 1:
            raise ValueError("give exactly one of spec=, x= and y=, or file=")
        if spec is not None:
            if name is not None:
                raise ValueError("name= applies to uploads; a built-in spec names itself")
            body = self._json("POST", "/v1/datasets", ok=(202,),
                              json={"spec": spec, "seed": seed, "force": force})
        else:
            if x is not None or y is not None:
                if x is None or y is None:
                    raise ValueError("give both x= and y=")
                data, filename = npz_bytes(x, y), f"{name or 'arrays'}.npz"
            else:
                path = Path(file)  # type: ignore[arg-type]
                if not path.is_file():
                    raise FileNotFoundError(f"{path}: no such file")
                data, filename = path.read_bytes(), path.name
            form = {"seed": str(seed), "force": "true" if force else "false"}
            if name is not None:
                form["name"] = name
            body = self._json("POST", "/v1/datasets", ok=(202,), data=form,
                              files={"file": (filename, data, "application/octet-stream")})
        job = Job.from_dict(body["job"])
        if not wait:
            return job
        done = self.wait_job(job.id, timeout=timeout, progress=progress)
        ds = (done.result or {}).get("dataset")
        return DatasetInfo.from_dict(ds) if ds else self.dataset(body["dataset"])

    # -------------------------------------------------------------- experiments
    def ingest(self, records: Iterable[Any], *, source: str = "api",
               batch_size: int = DEFAULT_INGEST_BATCH,
               progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Add experiment records: record-format dicts (``arch``, ``dataset``, ``accuracy``
        or ``accuracy_pct``, optional ``split``, ``epochs``, ``hparams``, ``curve``,
        ``seed``, ``source``; parsed as ``tapas ingest`` parses a file) or
        :class:`~tapas.core.records.ExperimentRecord`s.

        Sent in batches of ``batch_size``; each batch commits on its own and ingest is
        idempotent, so a retried batch adds nothing twice. Returns the summed report;
        rejected records (here or by the server) carry their index in the whole input.
        A refused batch raises :class:`TapasError` with ``batch_start`` set (the batches
        before it stay committed).
        """
        if not 1 <= batch_size <= 100_000:
            raise ValueError(f"batch_size must be in [1, 100000], got {batch_size}")
        rows, index, local = core_records.normalize(records, source)
        total: dict[str, Any] = {"added": 0, "skipped": 0,
                                 "rejected": [{"where": w, "reason": r} for w, r in local],
                                 "n_rejected": len(local), "architectures_added": 0,
                                 "datasets_added": 0, "batches": 0, "seconds": 0.0}
        for start, chunk, rep in self._ingest_batches(rows, index, batch_size):
            for k in ("added", "skipped", "n_rejected", "architectures_added", "datasets_added"):
                total[k] += int(rep.get(k, 0))
            total["seconds"] += float(rep.get("seconds", 0.0))
            total["batches"] += 1
            for rej in rep.get("rejected", []):
                where = rej.get("where")
                if isinstance(where, int) and 0 <= where < len(chunk):
                    where = index[start + where]
                total["rejected"].append({"where": where, "reason": rej.get("reason")})
            if progress is not None:
                progress(start + len(chunk), len(rows))
        total["rejected"].sort(key=_where_key)
        return total

    def _ingest_batches(self, rows: list[Any], index: list[Any], batch_size: int
                        ) -> Iterator[tuple[int, list[Any], dict[str, Any]]]:
        """(start, chunk, the server's report) per committed batch: at most ``batch_size``
        records and ``max_body_bytes`` of JSON each; a batch refused as too large (413,
        nothing committed) is halved."""
        pending = list(_chunks(rows, batch_size, self.max_body_bytes))
        while pending:
            start, chunk = pending.pop(0)
            try:
                rep = self._json("POST", "/v1/experiments", json={"records": chunk})
            except TapasError as e:
                if e.status == 413 and e.code in SPLIT_CODES and len(chunk) > 1:
                    half = len(chunk) // 2
                    self.max_body_bytes = max(1, min(self.max_body_bytes,
                                                     _json_size(chunk) // 2))
                    pending[:0] = [(start, chunk[:half]), (start + half, chunk[half:])]
                    continue
                e.batch_start = index[start]
                raise
            yield start, chunk, rep

    def ingest_file(self, path: str | Path, *, source: str | None = None,
                    batch_size: int = DEFAULT_INGEST_BATCH,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """``tapas ingest --url URL FILE``: own records (JSONL, CSV or Parquet) read as the
        local ingest reads them and sent with :meth:`ingest`; ``rejected`` entries name the
        file's line. :class:`~tapas.core.records.RecordError` when the file is not records."""
        path = Path(path)
        lines, rows, bad = core_records.read_records(path)
        rep = self.ingest(rows, source=source or f"file:{path.name}", batch_size=batch_size,
                          progress=progress)
        for r in rep["rejected"]:
            if isinstance(r["where"], int):
                r["where"] = lines[r["where"]]
        rep["rejected"] = sorted(bad + rep["rejected"], key=_where_key)
        rep["n_rejected"] = len(rep["rejected"])
        return rep

    # -------------------------------------------------------------- predictors
    def train_predictor(self, *, dcn: float | None = None, dataset: str | None = None,
                        force: bool = False, timeout: float | None = 3600.0,
                        progress: Callable[[Job], None] | None = None) -> dict[str, Any]:
        """Make sure the predictor for a DCN (or dataset) exists; wait for its training.

        Worth calling before a search so the first predict request does not pay for
        training. Returns the predictor's description (id, DCN range, n_train, ...).
        """
        check_dcn_or_dataset(dcn, dataset)
        body: dict[str, Any] = {"force": force, "wait_s": 5.0}
        body.update({"dcn": dcn} if dcn is not None else {"dataset": dataset})
        r = self.request("POST", "/v1/predictors", ok=(200, 202), json=body)
        out = r.json()
        if r.status_code == 200:
            return out
        job = self.wait_job(out["job"]["id"], timeout=timeout, progress=progress)
        return (job.result or {})["predictor"]

    def predictors(self) -> list[dict[str, Any]]:
        return self._json("GET", "/v1/predictors")["items"]

    # -------------------------------------------------------------- predict
    def predict(self, archs: Sequence[Any], *, dcn: float | None = None,
                dataset: str | None = None, num_classes: int | None = None,
                input_shape: Sequence[int] | None = None,
                train: bool = False, members: bool = False,
                predictor: str | None = None) -> list[Prediction]:
        """Predicted accuracy of each architecture, in the order given.

        ``archs``: values in any notation the service reads (NAS-Bench-201 cell strings,
        DARTS genotypes, NAS-Bench-101 ``{"matrix", "ops"}`` cells, search-space
        genotypes, IR dicts/JSON text; see :func:`tapas.core.spaces.read_notation`) or
        ``Architecture`` objects. Give ``dcn`` or ``dataset`` (a characterised
        dataset: its DCN, classes and input shape are used for genotypes).
        No predictor covers the target yet: :class:`NoPredictor` (a
        :class:`tapas.core.errors.NoPredictor`, as from the in-process scorer), or with
        ``train=True`` one is trained first (:meth:`train_predictor`).
        ``members=True`` also returns each ensemble member's prediction;
        ``predictor`` pins a registered predictor by id (the same answers whatever the
        service trains later; by default the one covering the DCN answers).
        """
        check_dcn_or_dataset(dcn, dataset)
        args = (archs, dcn, dataset, num_classes, input_shape, members, predictor)
        try:
            return self._predict(*args)
        except NoPredictor:
            if not train or predictor is not None:
                raise
        self.train_predictor(dcn=dcn, dataset=dataset)
        return self._predict(*args)

    def _predict(self, archs: Sequence[Any], dcn: float | None, dataset: str | None,
                 num_classes: int | None, input_shape: Sequence[int] | None,
                 members: bool, predictor: str | None) -> list[Prediction]:
        payload = [arch_payload(a) for a in archs]
        base: dict[str, Any] = {"dcn": float(dcn)} if dcn is not None else {"dataset": dataset}
        if num_classes is not None:
            base["num_classes"] = int(num_classes)
        if input_shape is not None:
            base["input_shape"] = list(check_shape(input_shape))
        if members:
            base["members"] = True
        if predictor is not None:
            base["predictor"] = str(predictor)
        out: list[Prediction] = []
        start = 0
        while start < len(payload):  # the limits may shrink between chunks (413 answers)
            _, chunk = next(_chunks(payload[start:], self.max_batch, self.max_body_bytes))
            out.extend(self._predict_chunk(chunk, base, start))
            start += len(chunk)
        return out

    def _predict_chunk(self, chunk: list[Any], base: dict[str, Any],
                       offset: int) -> list[Prediction]:
        try:
            body = self._json("POST", "/v1/predict", json={**base, "archs": chunk})
        except TapasError as e:
            if e.status == 413 and e.code in SPLIT_CODES and len(chunk) > 1:
                # the server allows fewer per request than we sent: halve and remember
                half = len(chunk) // 2
                if e.code == "too_many_archs":
                    self.max_batch = max(1, min(self.max_batch, half))
                else:
                    self.max_body_bytes = max(1, min(self.max_body_bytes,
                                                     _json_size(chunk) // 2))
                return (self._predict_chunk(chunk[:half], base, offset)
                        + self._predict_chunk(chunk[half:], base, offset + half))
            if e.path and e.path.startswith("body.archs[") and offset:
                e.path = _shift_index(e.path, offset)
                e.message = _shift_index(e.message, offset)
            raise
        results = body["results"]
        if len(results) != len(chunk):
            raise TapasError.from_service(f"the server scored {len(results)} of {len(chunk)} "
                                          "architectures", status=None,
                                          code="invalid_response")
        return Answer.predictions_from_wire(body)

    def dataset_info(self, ident: str) -> DatasetInfo:
        """Alias of :meth:`dataset` (the scorer interface shared with ``LocalScorer``)."""
        return self.dataset(ident)


def _json_size(item: Any) -> int:
    """Bytes of ``item`` as httpx sends it (json.dumps' defaults)."""
    try:
        return len(json.dumps(item).encode())
    except (TypeError, ValueError):
        return len(str(item))


def _chunks(items: list[Any], max_items: int, max_bytes: int
            ) -> Iterator[tuple[int, list[Any]]]:
    """(start, items[start:end]) holding at most ``max_items`` items and about
    ``max_bytes`` of JSON (at least one item, however large)."""
    start = 0
    while start < len(items):
        end, size = start, 2
        while end < len(items) and end - start < max_items:
            size += _json_size(items[end]) + 2
            if size > max_bytes and end > start:
                break
            end += 1
        yield start, items[start:end]
        start = end


def _where_key(r: dict[str, Any]) -> tuple[int, int, str]:
    w = r["where"]
    return (0, w, "") if isinstance(w, int) else (1, 0, str(w))


def _shift_index(text: str, offset: int) -> str:
    """``body.archs[3]`` in a batch that started at ``offset`` -> the index in the input."""
    return re.sub(r"body\.archs\[(\d+)\]", lambda m: f"body.archs[{int(m.group(1)) + offset}]",
                  text)




__all__ = ["Client", "DatasetInfo", "Job", "JobFailed", "NoPredictor", "Prediction",
           "TapasConnectionError",
           "TapasError", "arch_payload", "npz_bytes"]
