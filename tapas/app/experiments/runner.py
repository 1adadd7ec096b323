"""Run experiment jobs in parallel and record them in the LDE, resumably.

The parent process (the driver) plans the jobs, asks the LDE which are already
recorded (by the job key stored in each experiment's ``hparams``), hands the rest to a
backend (:mod:`tapas.app.experiments.backends`: a local process pool or a Ray cluster,
workers running one torch thread each), and alone writes finished results to the
database, in batches, through one :class:`ResultWriter` (DuckDB has one writer:
workers never open it). A stopped run (Ctrl-C, a crash, a killed driver or machine)
loses at most the batch not yet written; running the same command again trains only
what is missing, and no job is ever written twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lde import ExperimentRecord
from tapas.app.experiments.backends import map_jobs
from tapas.app.experiments.jobs import Job, dataset_info, dcn_job, run_job
from tapas.core.arch import Architecture
from tapas.core.config import get_settings

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
    duplicates: int = 0
    """Results for a job already written or buffered (dropped, never written twice)."""

    def to_dict(self) -> dict[str, Any]:
        return {"planned": self.planned, "already_done": self.already_done,
                "trained": self.trained, "written": self.written,
                "failed": [{"job": k, "error": e} for k, e in self.failed],
                "seconds": round(self.seconds, 2),
                "compute_seconds": round(self.compute_seconds, 2),
                "interrupted": self.interrupted, "duplicates": self.duplicates}


def done_keys(store: Store, source: str | None = None) -> set[str]:
    """Job keys of the experiments already in the LDE (optionally of one ``source``)."""
    where = "WHERE hparams IS NOT NULL" + (" AND source = ?" if source else "")
    t = store.sql("SELECT DISTINCT json_extract_string(hparams, '$.job_key') AS k "
                  f"FROM experiments {where}", [source] if source else None)
    return {k for k in t.column("k").to_pylist() if k}


def _records(results: Sequence[dict[str, Any]], archs: dict[str, Any]) -> list[Any]:
    return [ExperimentRecord(arch=archs[r["arch_id"]], dataset=r["dataset"],
                             accuracy=r["accuracy"], split="test", epochs=r["epochs"],
                             hparams=r["hparams"], curve=r["curve"], seed=r["seed"],
                             source=r["source"])
            for r in results]


class ResultWriter:
    """The run's one writer: buffers results and writes them to the LDE in batches.

    A batch (architectures, then experiments) is one transaction each, written every
    ``batch_size`` results or ``flush_seconds``, and by :meth:`flush` at the end. A
    result whose job key is in ``written`` (already stored when the run began, or
    written or buffered since) is dropped and counted in ``report.duplicates``.
    """

    def __init__(self, store: Store, report: RunReport, written: set[str] | None = None,
                 batch_size: int = 64, flush_seconds: float = 30.0) -> None:
        self.store = store
        self.report = report
        self.written = set() if written is None else written
        self.batch_size = max(1, batch_size)
        self.flush_seconds = flush_seconds
        self.buffer: list[dict[str, Any]] = []
        self._last = time.perf_counter()

    def add(self, result: dict[str, Any]) -> None:
        if result["key"] in self.written:
            self.report.duplicates += 1
            return
        self.written.add(result["key"])
        self.buffer.append(result)
        if (len(self.buffer) >= self.batch_size
                or time.perf_counter() - self._last >= self.flush_seconds):
            self.flush()

    def flush(self) -> None:
        buf, self.buffer = self.buffer, []
        self._last = time.perf_counter()
        if not buf:
            return
        # each distinct architecture built once (shape inference is the writer's main
        # cost), and stored first so it carries the run's source rather than "user"
        archs = {r["arch_id"]: r["arch"] for r in buf}
        archs = {k: Architecture.from_dict(a) for k, a in archs.items()}
        self.store.add_architectures(list(archs.values()), source=buf[0]["source"])
        r = self.store.add_experiments(_records(buf, archs))
        if r.rejected:
            self.report.failed += [(buf[i]["key"] if isinstance(i, int) else str(i), why)
                                   for i, why in r.rejected]
        self.report.written += r.added


def ensure_datasets(store: Store, specs: Iterable[str], workers: int = 0, seed: int = 0,
                    source: str = "tapas-experiments", device: str = "cpu",
                    callback: Callback | None = None, dcn: bool = True,
                    backend: str = "local", address: str | None = None) -> dict[str, str]:
    """Register each dataset spec in the LDE with its DCN (computed only when missing or
    when the stored fingerprint differs). Returns spec -> dataset id.

    The DCN jobs run on ``backend`` (see :func:`tapas.app.experiments.backends.map_jobs`);
    ``dcn=False`` registers datasets without a DCN (a stored one is kept)."""
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
            todo.append((spec, seed, settings.probe_epochs, settings.probe_max_samples, device,
                         settings.probe_max_steps))
    if callback:
        callback(0, len(todo), None)
    failures: list[str] = []
    done = 0

    def on_result(i: int, r: dict[str, Any] | None, err: BaseException | None) -> None:
        nonlocal done
        done += 1
        if r is None:
            failures.append(f"{todo[i][0]}: {err}")
        else:
            ids[r["spec"]] = store.upsert_dataset(
                r["name"], r["fingerprint"], r["n_samples"], r["num_classes"],
                r["input_shape"], dcn=r["dcn"], dcn_meta={"method": "probenet", **r["meta"]},
                source=source)
        if callback:
            callback(done, len(todo), r)

    map_jobs(dcn_job, todo, on_result, min(workers, len(todo)), backend, address, device)
    if failures:
        raise ValueError("could not characterise dataset(s): " + "; ".join(failures))
    return ids


def run_jobs(jobs: Sequence[Job], store: Store, workers: int = 0, device: str = "cpu",
             batch_size: int = 64, flush_seconds: float = 30.0,
             callback: Callback | None = None, backend: str = "local",
             address: str | None = None) -> RunReport:
    """Train every job whose result is not in ``store`` yet and write the results.

    Jobs run on ``backend`` (``local``: ``workers`` processes, 0 for this one; ``ray``:
    one task per job at ``address``, see :mod:`tapas.app.experiments.backends`). Results
    are written by this process alone, every ``batch_size`` results or
    ``flush_seconds``, and once more at the end or on interruption. Datasets must be
    registered first (:func:`ensure_datasets`).
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
    writer = ResultWriter(store, rep, have, batch_size, flush_seconds)
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
            writer.add(r)
        if callback:
            callback(done, len(pending), r)

    try:
        map_jobs(run_job, [(j, device) for j in pending], on_result, workers, backend,
                 address, device)
    except KeyboardInterrupt:
        rep.interrupted = True
    finally:
        writer.flush()
        rep.seconds = time.perf_counter() - t0
    return rep
