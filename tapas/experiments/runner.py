"""Run experiment jobs in parallel and record them in the LDE, resumably.

The parent process plans the jobs, asks the LDE which are already recorded (by the
job key stored in each experiment's ``hparams``), hands the rest to a
:class:`concurrent.futures.ProcessPoolExecutor` whose workers run one torch thread
each, and writes finished results to the database in batches (DuckDB has one
writer: only the parent opens it). A stopped run (Ctrl-C, a crash, a killed machine)
loses at most the batch in flight; running the same command again trains only what
is missing.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tapas.experiments.jobs import Job, dcn_job, run_job

if TYPE_CHECKING:
    from lde import Store

Callback = Callable[[int, int, dict[str, Any] | None], None]
"""``callback(done, total, result)`` after each finished job (``result`` None on failure)."""


@dataclass
class RunReport:
    """What a run did. ``compute_seconds`` sums the jobs' own training times."""

    planned: int = 0
    already_done: int = 0
    trained: int = 0
    written: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    compute_seconds: float = 0.0
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"planned": self.planned, "already_done": self.already_done,
                "trained": self.trained, "written": self.written,
                "failed": [{"job": k, "error": e} for k, e in self.failed],
                "seconds": round(self.seconds, 2),
                "compute_seconds": round(self.compute_seconds, 2),
                "interrupted": self.interrupted}


def _init_worker() -> None:
    """One torch thread per worker: the pool, not torch, spreads work over the cores."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # already set in this process
        torch.set_num_interop_threads(1)


def done_keys(store: Store, source: str | None = None) -> set[str]:
    """Job keys of the experiments already in the LDE (optionally of one ``source``)."""
    where = "WHERE hparams IS NOT NULL" + (" AND source = ?" if source else "")
    t = store.sql("SELECT DISTINCT json_extract_string(hparams, '$.job_key') AS k "
                  f"FROM experiments {where}", [source] if source else None)
    return {k for k in t.column("k").to_pylist() if k}


def _records(results: Sequence[dict[str, Any]]) -> list[Any]:
    from lde import ExperimentRecord

    return [ExperimentRecord(arch=r["arch"], dataset=r["dataset"], accuracy=r["accuracy"],
                             split="test", epochs=r["epochs"], hparams=r["hparams"],
                             curve=r["curve"], seed=r["seed"], source=r["source"])
            for r in results]


def _pool(workers: int) -> ProcessPoolExecutor:
    # spawn: workers never inherit the parent's open DuckDB connection or torch threads
    return ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                               mp_context=multiprocessing.get_context("spawn"))


def _map(fn: Callable[..., dict[str, Any]], args: list[tuple], workers: int,
         on_result: Callable[[int, dict[str, Any] | None, BaseException | None], None],
         max_in_flight: int | None = None) -> None:
    """Run ``fn(*a)`` for each ``a`` (in a pool when ``workers > 0``), reporting each
    result in completion order. Submission is bounded so an interrupt cancels quickly."""
    if workers <= 0:
        _init_worker()
        for i, a in enumerate(args):
            try:
                on_result(i, fn(*a), None)
            except (ValueError, RuntimeError) as e:
                on_result(i, None, e)
        return
    limit = max_in_flight or workers * 4
    ex = _pool(workers)
    try:
        it = iter(enumerate(args))
        running: dict[Future, int] = {}
        for i, a in it:
            running[ex.submit(fn, *a)] = i
            if len(running) >= limit:
                break
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                i = running.pop(fut)
                err = fut.exception()
                on_result(i, None if err else fut.result(), err)
                nxt = next(it, None)
                if nxt is not None:
                    running[ex.submit(fn, *nxt[1])] = nxt[0]
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def ensure_datasets(store: Store, specs: Iterable[str], workers: int = 0, seed: int = 0,
                    source: str = "tapas-experiments", device: str = "cpu",
                    callback: Callback | None = None, dcn: bool = True) -> dict[str, str]:
    """Register each dataset spec in the LDE with its DCN (computed only when missing or
    when the stored fingerprint differs). Returns spec -> dataset id.

    ``dcn=False`` registers datasets without a DCN (a stored one is kept)."""
    from tapas.config import get_settings
    from tapas.experiments.jobs import dataset_info

    settings = get_settings()
    specs = list(dict.fromkeys(specs))
    ids: dict[str, str] = {}
    todo: list[tuple] = []
    for spec in specs:
        info = dataset_info(spec)
        row = store.dataset(info["name"])
        if row is not None and row.dcn is not None and row.fingerprint == info["fingerprint"]:
            ids[spec] = row.id
        elif not dcn:
            ids[spec] = store.upsert_dataset(info["name"], info["fingerprint"],
                                             info["n_samples"], info["num_classes"],
                                             info["input_shape"], source=source)
        else:
            todo.append((spec, seed, settings.probe_epochs, settings.probe_max_samples, device))
    if callback:
        callback(0, len(todo), None)
    failures: list[str] = []

    def on_result(i: int, r: dict[str, Any] | None, err: BaseException | None) -> None:
        if r is None:
            failures.append(f"{todo[i][0]}: {err}")
        else:
            ids[r["spec"]] = store.upsert_dataset(
                r["name"], r["fingerprint"], r["n_samples"], r["num_classes"],
                r["input_shape"], dcn=r["dcn"], dcn_meta={"method": "probenet", **r["meta"]},
                source=source)
        if callback:
            callback(i + 1, len(todo), r)

    _map(dcn_job, todo, min(workers, len(todo)), on_result)
    if failures:
        raise ValueError("could not characterise dataset(s): " + "; ".join(failures))
    return ids


def run_jobs(jobs: Sequence[Job], store: Store, workers: int = 0, device: str = "cpu",
             batch_size: int = 64, flush_seconds: float = 30.0,
             callback: Callback | None = None) -> RunReport:
    """Train every job whose result is not in ``store`` yet and write the results.

    ``workers=0`` runs in this process. Results are written every ``batch_size``
    results or ``flush_seconds``, and once more at the end or on interruption.
    Datasets must be registered first (:func:`ensure_datasets`).
    """
    t0 = time.perf_counter()
    rep = RunReport(planned=len(jobs))
    have = done_keys(store)
    seen: set[str] = set()
    pending: list[Job] = []
    for j in jobs:
        if j.key in have:
            rep.already_done += 1
        elif j.key not in seen:
            seen.add(j.key)
            pending.append(j)
    buffer: list[dict[str, Any]] = []
    last_flush = time.perf_counter()

    def flush() -> None:
        nonlocal last_flush
        if buffer:
            from tapas.arch import Architecture

            # architectures first, so they carry the run's source rather than "user"
            store.add_architectures([Architecture.from_dict(r["arch"]) for r in buffer],
                                    source=buffer[0]["source"])
            r = store.add_experiments(_records(buffer))
            if r.rejected:
                rep.failed += [(buffer[i]["key"] if isinstance(i, int) else str(i), why)
                               for i, why in r.rejected]
            rep.written += r.added
            buffer.clear()
        last_flush = time.perf_counter()

    done = 0
    if callback:
        callback(0, len(pending), None)

    def on_result(i: int, r: dict[str, Any] | None, err: BaseException | None) -> None:
        nonlocal done
        done += 1
        if r is None:
            rep.failed.append((pending[i].key, f"{pending[i].dataset}: {err}"))
        else:
            rep.trained += 1
            rep.compute_seconds += r["seconds"]
            buffer.append(r)
            if len(buffer) >= batch_size or time.perf_counter() - last_flush >= flush_seconds:
                flush()
        if callback:
            callback(done, len(pending), r)

    try:
        _map(run_job, [(j, device) for j in pending], workers, on_result)
    except KeyboardInterrupt:
        rep.interrupted = True
    finally:
        flush()
        rep.seconds = time.perf_counter() - t0
    return rep
