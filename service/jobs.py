"""A small in-process job runner for work too slow for a request (DCNs, predictor training).

Jobs run on worker threads (one by default: both kinds of work are CPU-bound and the
machine's cores are better spent on one at a time). The workers are daemon threads,
so stopping the server does not wait for a training run to finish: jobs check for
cancellation at each progress report, and whatever is still running when the process
exits is abandoned (jobs write to the database only in transactions). Each job has a state
(``queued -> running -> succeeded | failed | cancelled``; ``lost`` for a job a killed
server never finished), a progress fraction that the work reports through a callback, and
a JSON-ready result or error.

The queue is bounded (:class:`QueueFull` past ``max_queued``), a job submitted with the
``key`` of one still queued or running is that job (identical requests share one run),
and :meth:`JobRunner.cancel` stops a queued job at once and a running one at its next
progress report. With a ``journal`` folder, every state change is written there (one
small JSON file per job), and the progress every few seconds, so a restart still answers
for its jobs: finished ones as they ended, unfinished ones as ``lost`` at the progress
they last reported.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tapas.core import errors
from tapas.core.errors import Cancelled

log = logging.getLogger("tapas.service")

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, LOST = (
    "queued", "running", "succeeded", "failed", "cancelled", "lost")
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED, LOST})


class JobCancelled(Cancelled):
    """Raised inside a job's progress callback once the job or the runner is cancelled."""


class QueueFull(errors.QueueFull):
    """The queue holds ``max_queued`` jobs already; ``retry_after`` is a guess in seconds."""

    def __init__(self, queued: int, retry_after: int) -> None:
        super().__init__(f"{queued} jobs are already waiting", retry_after=retry_after)
        self.queued = queued


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
    key: str | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)
    cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)
    release: Callable[[], None] | None = field(default=None, repr=False)

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
    on_progress: Callable[[Job], None] | None = None
    """Called after each recorded progress (the runner journals it, throttled)."""

    def progress(self, done: float, total: float | None = None, message: str | None = None
                 ) -> None:
        """Record ``done / total`` (or a fraction when ``total`` is None)."""
        if self.cancelled.is_set():
            raise JobCancelled("the server is shutting down")
        if self.job.cancel_requested.is_set():
            raise JobCancelled("DELETE /v1/jobs/" + self.job.id)
        frac = float(done) / float(total) if total else float(done)
        self.job.progress = min(max(frac, 0.0), 1.0)
        if message:
            self.job.message = message
        if self.on_progress is not None:
            self.on_progress(self.job)


ErrorMapper = Callable[[BaseException], dict[str, Any]]


class JobRunner:
    """Runs callables on daemon worker threads; keeps the last ``keep`` jobs for
    ``GET /v1/jobs``; at most ``max_queued`` wait at a time."""

    def __init__(self, workers: int = 1, keep: int = 1000,
                 error_mapper: ErrorMapper | None = None, max_queued: int = 16,
                 journal: Path | None = None) -> None:
        self._queue: queue.Queue[tuple[Job, Callable[[JobContext], dict[str, Any]]] | None] = (
            queue.Queue())
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._keep = keep
        self._max_queued = max_queued
        self._error_mapper = error_mapper
        self._counter = itertools.count()
        self._journal = journal
        self._durations: list[float] = []
        if journal is not None:
            self._recover(journal)
        self._workers = [threading.Thread(target=self._loop, name=f"tapas-job-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._workers:
            t.start()

    def submit(self, kind: str, description: str, work: Callable[[JobContext], dict[str, Any]],
               key: str | None = None, on_done: Callable[[], None] | None = None) -> Job:
        """Queue ``work(ctx) -> result dict``; returns the job at once.

        A ``key`` equal to a queued or running job's returns that job (``work`` is not
        queued). :class:`QueueFull` when ``max_queued`` wait. ``on_done`` runs once the
        job has finished, however it finished, and at once when no job is made.
        """
        if self._cancelled.is_set():
            raise RuntimeError("the job runner is shut down")
        with self._lock:
            same = None if key is None else next(
                (j for j in self._jobs.values() if j.key == key and j.state not in FINISHED),
                None)
            queued = sum(1 for j in self._jobs.values() if j.state == QUEUED)
            full = same is None and queued >= self._max_queued
            if same is None and not full:
                job = Job(id=f"job-{next(self._counter):05d}-{uuid.uuid4().hex[:8]}",
                          kind=kind, description=description, key=key)
                self._jobs[job.id] = job
                self._trim()
                wrapped = self._with_done(work, on_done)
                job.release = getattr(wrapped, "on_done", None)
                # journaled before a worker can take it: a later write of the queued state
                # would replace the worker's first progress (a lost job back at 0)
                self._write(job)
                self._queue.put((job, wrapped))
        if same is not None or full:
            if on_done is not None:
                on_done()
            if full:
                raise QueueFull(queued, self._retry_after(queued))
            return same  # type: ignore[return-value]
        return job

    @staticmethod
    def _with_done(work: Callable[[JobContext], dict[str, Any]],
                   on_done: Callable[[], None] | None) -> Callable[[JobContext], dict[str, Any]]:
        """``work`` that calls ``on_done`` when it ends; a job cancelled while it waited
        calls it at once (:meth:`cancel`), a job skipped through :meth:`_release`; either
        way it runs once."""
        if on_done is None:
            return work
        lock, done = threading.Lock(), [False]

        def once() -> None:
            with lock:
                if done[0]:
                    return
                done[0] = True
            on_done()

        def wrapped(ctx: JobContext) -> dict[str, Any]:
            try:
                return work(ctx)
            finally:
                once()

        wrapped.on_done = once  # type: ignore[attr-defined]
        return wrapped

    def _retry_after(self, queued: int) -> int:
        """Seconds until a slot is likely free: the median job's duration (>= 1 s)."""
        if not self._durations:
            return 5
        d = sorted(self._durations)[len(self._durations) // 2]
        return max(1, min(600, round(d)))

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job now, or ask a running one to stop at its next progress
        report; a finished job is returned unchanged. None for an unknown id."""
        release = None
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state in FINISHED:
                return job
            job.cancel_requested.set()
            if job.state == QUEUED:
                self._finish(job, CANCELLED, "cancelled before it started (DELETE)")
                release = job.release  # its upload and name claim end now, not when dequeued
            else:
                job.message = "cancelling (stops at its next progress report)"
        if release is not None:
            release()
        return job

    def _trim(self) -> None:
        while len(self._jobs) > self._keep:
            oldest = next(iter(self._jobs.values()))
            if oldest.state not in FINISHED:
                break
            self._jobs.popitem(last=False)
            if self._journal is not None:
                (self._journal / f"{oldest.id}.json").unlink(missing_ok=True)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, work = item
            with self._lock:
                skip = job.state != QUEUED  # cancelled while it waited
                if not skip and self._cancelled.is_set():
                    self._finish(job, CANCELLED,
                                 "cancelled: the server shut down before it started")
                    skip = True
                if not skip:
                    job.state, job.started, job.message = RUNNING, _now(), "running"
            if skip:
                self._release(work)
                continue
            self._write(job)
            self._run(job, work)

    @staticmethod
    def _release(work: Any) -> None:
        on_done = getattr(work, "on_done", None)
        if on_done is not None:
            on_done()

    def _run(self, job: Job, work: Callable[[JobContext], dict[str, Any]]) -> None:
        t0 = time.perf_counter()
        try:
            result = work(JobContext(job, self._cancelled, self._progress_writer()))
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
        self._durations = (self._durations + [time.perf_counter() - t0])[-50:]

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
        self._write(job)
        job.done.set()

    # ------------------------------------------------------------------ journal
    JOURNAL_EVERY_S = 2.0
    """Progress reaches the journal at most this often (and at each whole 10 %), so a
    job lost to kill -9 shows how far it got, not 0."""

    def _progress_writer(self) -> Callable[[Job], None] | None:
        if self._journal is None:
            return None
        last = {"t": 0.0, "decile": -1}

        def write(job: Job) -> None:
            now, decile = time.monotonic(), int(job.progress * 10)
            if now - last["t"] >= self.JOURNAL_EVERY_S or decile != last["decile"]:
                last["t"], last["decile"] = now, decile
                self._write(job)

        return write

    def _write(self, job: Job) -> None:
        """Record the job's state (atomically: a crash leaves the old or the new file)."""
        if self._journal is None:
            return
        d = job.to_dict()
        d["key"] = job.key
        tmp = self._journal / f".{job.id}.{threading.get_ident()}.tmp"
        try:
            tmp.write_text(json.dumps(d, default=str))
            os.replace(tmp, self._journal / f"{job.id}.json")
        except OSError as e:  # the journal is a convenience; the work goes on
            log.warning("could not record job %s: %s", job.id, e)

    def _recover(self, journal: Path) -> None:
        """Load the jobs of earlier runs; unfinished ones become ``lost``."""
        journal.mkdir(parents=True, exist_ok=True)
        for tmp in journal.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        found = []
        for f in journal.glob("job-*.json"):
            try:
                d = json.loads(f.read_text())
                found.append(Job(id=d["id"], kind=d["kind"], description=d["description"],
                                 state=d["state"], progress=float(d["progress"]),
                                 message=d["message"],
                                 created=datetime.fromisoformat(d["created"]),
                                 started=_parse_time(d.get("started")),
                                 finished=_parse_time(d.get("finished")),
                                 result=d.get("result"), error=d.get("error")))
            except (OSError, ValueError, KeyError, TypeError) as e:
                log.warning("unreadable job record %s (%s): removed", f.name, e)
                f.unlink(missing_ok=True)
        found.sort(key=lambda j: j.created)
        for job in found[-self._keep:]:
            if job.state not in FINISHED:
                job.error = {"code": "job_lost", "message": "the server stopped before this job "
                             f"finished (it was {job.state}); submit it again", "path": None}
                self._finish(job, LOST, f"lost: the server stopped while it was {job.state}")
            job.done.set()
            self._jobs[job.id] = job
        for job in found[:-self._keep]:
            (journal / f"{job.id}.json").unlink(missing_ok=True)
        self._counter = itertools.count(len(found))

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
                if item[0].state == QUEUED:
                    self._finish(item[0], CANCELLED, "cancelled: the server shut down")
                self._release(item[1])
        for _ in self._workers:
            self._queue.put(None)
        if wait:
            deadline = time.monotonic() + wait
            for t in self._workers:
                t.join(max(0.0, deadline - time.monotonic()))


def _parse_time(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v else None
