"""Dynamic batching of concurrent predict requests.

Scoring one network costs about what scoring sixteen does: the LSTM's time steps are
Python-level loops whose cost hardly depends on the batch. Many clients sending one
network each therefore used to cost a forward pass each, on threads that fought over
the GIL (16 clients: 55 req/s at p99 577 ms on 2 cores). Here one scoring thread
takes every request waiting when it is free and scores them with one forward pass per
predictor (:meth:`tapas.app.pipeline.Pipeline.answer_many`, the one call that predicts):
under load batches grow by themselves, and a lone request waits for nothing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from tapas.core.types import Query

MAX_BATCH_NETWORKS = 2048
"""A batch stops growing at this many networks (a large request is scored alone)."""

AnswerMany = Callable[[Sequence[Query]], list[Any]]


class ScoreBatcher:
    """One daemon thread that scores queued requests in merged batches.

    ``submit(query)`` blocks until its own answer is ready and returns what
    ``answer_many`` gave for it, raising the exception it gave instead.
    """

    def __init__(self, answer_many: AnswerMany, max_networks: int = MAX_BATCH_NETWORKS
                 ) -> None:
        self._answer_many = answer_many
        self.max_networks = max_networks
        self._queue: queue.SimpleQueue[tuple[Query, Future[Any]] | None] = queue.SimpleQueue()
        self._held: tuple[Query, Future[Any]] | None = None  # taken but did not fit
        self._thread = threading.Thread(target=self._run, name="tapas-scorer", daemon=True)
        self._thread.start()
        self.batches = 0
        self.requests = 0

    def submit(self, query: Query) -> Any:
        if not self._thread.is_alive():
            raise RuntimeError("the scoring thread has stopped (the service is shutting down)")
        fut: Future[Any] = Future()
        self._queue.put((query, fut))
        return fut.result()

    def close(self, timeout: float = 10.0) -> None:
        """Answer what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _next_batch(self) -> tuple[list[tuple[Query, Future[Any]]], bool]:
        first = self._held if self._held is not None else self._queue.get()
        self._held = None
        if first is None:
            return [], True
        batch, n = [first], len(first[0].archs)
        while n < self.max_networks:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            if n + len(item[0].archs) > self.max_networks:
                self._held = item
                break
            batch.append(item)
            n += len(item[0].archs)
        return batch, False

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._next_batch()
            if not batch:
                continue
            try:
                answers = self._answer_many([q for q, _ in batch])
            except BaseException as e:  # noqa: BLE001 - every waiting request hears of it
                answers = [e] * len(batch)
            self.batches += 1
            self.requests += len(batch)
            for (_, fut), ans in zip(batch, answers, strict=True):
                if isinstance(ans, BaseException):
                    fut.set_exception(ans)
                else:
                    fut.set_result(ans)
        gone = RuntimeError("the service is shutting down")
        while True:  # whatever came after the stop
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].set_exception(gone)
