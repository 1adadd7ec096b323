"""A small in-process job runner for work too slow for a request (DCNs, predictor training).

Jobs run on worker threads (one by default: both kinds of work are CPU-bound and the
machine's cores are better spent on one at a time). The workers are daemon threads,
so stopping the server does not wait for a training run to finish: jobs check for
cancellation at each progress report, and whatever is still running when the process
exits is abandoned (jobs write to the database only in transactions). Each job has a state
(``queued -> running -> succeeded | failed | cancelled``), a progress fraction that the
work reports through a callback, and a JSON-ready result or error. Jobs live in memory
only: a restart forgets them, the results they produced are in the database.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("tapas.service")

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued", "running", "succeeded", "failed", "cancelled")
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED})


class JobCancelled(Exception):
    """Raised inside a job's progress callback once the runner is shutting down."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Job:
    """A unit of background work and what is known about it so far."""

    id: str
    kind: str
    description: str
    state: str = QUEUED
    progress: float = 0.0
    message: str = "queued"
    created: datetime = field(default_factory=_now)
    started: datetime | None = None
    finished: datetime | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "description": self.description,
                "state": self.state, "progress": round(self.progress, 4),
                "message": self.message, "created": self.created, "started": self.started,
                "finished": self.finished, "result": self.result, "error": self.error}


@dataclass
class JobContext:
    """Handed to the work: report progress, and notice cancellation."""

    job: Job
    cancelled: threading.Event

    def progress(self, done: float, total: float | None = None, message: str | None = None
                 ) -> None:
        """Record ``done / total`` (or a fraction when ``total`` is None)."""
        if self.cancelled.is_set():
            raise JobCancelled("the server is shutting down")
        frac = float(done) / float(total) if total else float(done)
        self.job.progress = min(max(frac, 0.0), 1.0)
        if message:
            self.job.message = message


ErrorMapper = Callable[[BaseException], dict[str, Any]]


class JobRunner:
    """Runs callables on daemon worker threads; keeps the last ``keep`` jobs for
    ``GET /v1/jobs``."""

    def __init__(self, workers: int = 1, keep: int = 1000,
                 error_mapper: ErrorMapper | None = None) -> None:
        self._queue: queue.Queue[tuple[Job, Callable[[JobContext], dict[str, Any]]] | None] = (
            queue.Queue())
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._keep = keep
        self._error_mapper = error_mapper
        self._counter = itertools.count()
        self._workers = [threading.Thread(target=self._loop, name=f"tapas-job-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._workers:
            t.start()

    def submit(self, kind: str, description: str, work: Callable[[JobContext], dict[str, Any]],
               ) -> Job:
        """Queue ``work(ctx) -> result dict``; returns the job at once."""
        if self._cancelled.is_set():
            raise RuntimeError("the job runner is shut down")
        job = Job(id=f"job-{next(self._counter):05d}-{uuid.uuid4().hex[:8]}", kind=kind,
                  description=description)
        with self._lock:
            self._jobs[job.id] = job
            self._trim()
        self._queue.put((job, work))
        return job

    def _trim(self) -> None:
        while len(self._jobs) > self._keep:
            oldest = next(iter(self._jobs.values()))
            if oldest.state not in FINISHED:
                break
            self._jobs.popitem(last=False)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, work = item
            if self._cancelled.is_set():
                self._finish(job, CANCELLED, "cancelled: the server shut down before it started")
                continue
            self._run(job, work)

    def _run(self, job: Job, work: Callable[[JobContext], dict[str, Any]]) -> None:
        job.state, job.started, job.message = RUNNING, _now(), "running"
        t0 = time.perf_counter()
        try:
            result = work(JobContext(job, self._cancelled))
        except JobCancelled as e:
            self._finish(job, CANCELLED, f"cancelled: {e}")
        except Exception as e:  # a job's failure is reported in the job, not raised
            mapped = self._map_error(e)
            job.error = mapped
            self._finish(job, FAILED, f"failed: {mapped['message']}")
        else:
            job.result = result
            job.progress = 1.0
            self._finish(job, SUCCEEDED, f"done in {time.perf_counter() - t0:.1f} s")

    def _map_error(self, e: BaseException) -> dict[str, Any]:
        if self._error_mapper is not None:
            try:
                return self._error_mapper(e)
            except Exception:
                log.exception("error mapper failed")
        log.error("job failed", exc_info=e)
        return {"code": "job_failed", "message": f"{type(e).__name__}: {e}", "path": None}

    def _finish(self, job: Job, state: str, message: str) -> None:
        job.state, job.message, job.finished = state, message, _now()
        job.done.set()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self, limit: int = 100) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())[-limit:][::-1]

    def shutdown(self, wait: float | None = None) -> None:
        """Cancel queued jobs and ask running ones to stop at their next progress report;
        wait up to ``wait`` seconds (None: not at all) for the workers to finish."""
        self._cancelled.set()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._finish(item[0], CANCELLED, "cancelled: the server shut down")
        for _ in self._workers:
            self._queue.put(None)
        if wait:
            deadline = time.monotonic() + wait
            for t in self._workers:
                t.join(max(0.0, deadline - time.monotonic()))
