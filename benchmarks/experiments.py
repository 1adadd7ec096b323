"""``python -m benchmarks.experiments``: one starter experiment's time and repeatability.

* ``seconds_per_job_median`` / ``_p90``: wall time of :func:`tapas.app.experiments.run_job`
  (one torch thread, in this process; dataset loading excluded by a warm-up) over
  ``n_jobs`` jobs of the starter plan's recipe: chain and NAS-Bench-201 genotypes
  sampled with ``seed`` on three starter datasets (digits 8x8, MNIST 7x7, MNIST-1D 5x8).
* ``jobs_per_hour_2_workers``: 2 * 3600 / median, what the runner can do with two
  worker processes on two free cores.
* ``rerun_max_abs_diff``: the first ``n_repeat`` jobs run again with the same seed;
  the largest accuracy difference (0 means bit-for-bit repeatable).

:func:`run_backend_benchmark` (``python -m benchmarks.experiments --backend local|ray``) adds:

* ``local_jobs_per_s`` (and ``ray_jobs_per_s`` with ``--backend ray``): the same
  ``n_backend_jobs`` starter jobs run by :func:`tapas.app.experiments.run_jobs` into a fresh
  LDE with ``workers`` processes (local pool) or a Ray instance of ``workers`` CPUs
  (start-up included for the pool, Ray's own ``ray_init_seconds`` reported apart);
  ``backends_identical``: whether both gave every job the same accuracy;
* ``ray_overhead_ms_per_job``: median round trip of a no-op task through Ray, one at a
  time (what Ray adds to each job); ``ray_noop_tasks_per_s``: no-op throughput with
  the runner's bounded submission; ``local_pool_start_seconds``: what the pool costs
  once per run (spawning workers that import torch), its per-job cost being negligible;
* ``writer_results_per_s``: how many results per second the single writer
  (:class:`tapas.app.experiments.runner.ResultWriter`, batches of ``batch_size``) puts into
  a fresh LDE, every result with an architecture of its own (the worst case);
  ``writer_limit_workers``: writer rate x seconds per job
  (``writer_limit_seconds_per_job``: ``seconds_per_job_median`` when measured, else the
  local run's median), the number of one-CPU workers whose results would saturate the
  writer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from benchmarks import run_cli
from tapas.app.cli.common import fail, print_json, print_metrics
from tapas.app.cli.experiments import AddressOpt, JsonOpt, SeedOpt, _progress

if TYPE_CHECKING:
    from tapas.app.experiments.jobs import Job

Progress = Callable[[str, int, int], None]

DATASETS = ("digits?per_class=75", "mnist5k?per_class=75&downsample=4", "mnist1d?per_class=75")


def bench_jobs(n_jobs: int, seed: int = 0) -> list[Job]:
    """``n_jobs`` starter-recipe jobs: chain and NAS-Bench-201 genotypes on DATASETS."""
    from tapas.app.experiments.jobs import Job, load_split
    from tapas.app.experiments.plan import STARTER_RECIPE, STARTER_TEST_FRACTION
    from tapas.core import spaces

    genos = (spaces.sample_unique("chain", max(1, n_jobs - n_jobs // 6), seed)
             + spaces.sample_unique("nb201-small", max(1, n_jobs // 6), seed))[:n_jobs]
    jobs = []
    for i, g in enumerate(genos):
        fits = [d for d in DATASETS if spaces.space_of(g).fits(
            load_split(d, STARTER_TEST_FRACTION, 0)[0].input_shape)]
        jobs.append(Job(g, fits[i % len(fits)], dict(STARTER_RECIPE),
                        test_fraction=STARTER_TEST_FRACTION, source="tapas-bench"))
    return jobs


def run_benchmark(n_jobs: int = 12, n_repeat: int = 3, seed: int = 0,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Time ``n_jobs`` starter-recipe jobs (see the module docstring)."""
    import torch

    from tapas.app.experiments.jobs import run_job
    from tapas.app.experiments.plan import STARTER_RECIPE

    torch.set_num_threads(1)
    jobs = bench_jobs(n_jobs, seed)
    run_job(jobs[0])  # warm-up: first-call costs, dataset caches
    secs, accs = [], []
    for i, j in enumerate(jobs):
        t0 = time.perf_counter()
        accs.append(run_job(j)["accuracy"])
        secs.append(time.perf_counter() - t0)
        if progress:
            progress("jobs", i + 1, len(jobs) + n_repeat)
    diffs = []
    for i, j in enumerate(jobs[:n_repeat]):
        diffs.append(abs(run_job(j)["accuracy"] - accs[i]))
        if progress:
            progress("jobs", len(jobs) + i + 1, len(jobs) + n_repeat)
    med = float(np.median(secs))
    return {"n_jobs": len(jobs), "seconds_per_job_median": round(med, 4),
            "seconds_per_job_p90": round(float(np.percentile(secs, 90)), 4),
            "jobs_per_hour_2_workers": round(2 * 3600 / med, 1),
            "rerun_max_abs_diff": float(max(diffs)) if diffs else None,
            "recipe_epochs": STARTER_RECIPE["epochs"], "threads": 1}


def noop() -> dict[str, Any]:
    """A job that does nothing: what remains of its time is the backend's overhead."""
    return {}


def _roundtrips(backend: str, workers: int, address: str | None, n: int) -> float:
    """Median milliseconds of one no-op job submitted alone and waited for."""
    from tapas.app.experiments.backends import map_jobs

    secs = []
    for _ in range(n):
        t0 = time.perf_counter()
        map_jobs(noop, [()], lambda *_: None, workers, backend, address)
        secs.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(secs)), 3)


def _run_into(db: Path, jobs: list[Job], backend: str, workers: int,
              address: str | None) -> tuple[float, dict[str, dict[str, Any]]]:
    """(wall seconds, key -> result) of ``run_jobs`` into a fresh LDE at ``db``."""
    from lde import Store
    from tapas.app.experiments.runner import ensure_datasets, run_jobs

    results: dict[str, dict[str, Any]] = {}
    with Store(db) as store:
        ensure_datasets(store, {j.dataset for j in jobs}, dcn=False, source="tapas-bench")
        t0 = time.perf_counter()
        rep = run_jobs(jobs, store, workers=workers, backend=backend, address=address,
                       callback=lambda _d, _t, r: results.update({r["key"]: r}) if r else None)
        wall = time.perf_counter() - t0
    if rep.failed or rep.written != len(jobs):
        raise RuntimeError(f"{backend} bench run failed: {rep.to_dict()}")
    return wall, results


def _accuracies(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    return {k: r["accuracy"] for k, r in results.items()}


def _writer_rate(db: Path, template: dict[str, Any], n: int, batch_size: int,
                 seed: int = 0) -> float:
    """Results per second the single writer puts into a fresh LDE: ``n`` results shaped
    like ``template`` (a real job's result), each with its own chain architecture built
    for the template's dataset (the writer's worst case: no architecture repeats)."""
    from lde import Store
    from tapas.app.experiments.jobs import dataset_info
    from tapas.app.experiments.runner import ResultWriter, RunReport
    from tapas.core import spaces

    info = dataset_info(template["hparams"]["dataset_spec"])
    shape, classes = tuple(info["input_shape"]), info["num_classes"]
    results = []
    for i, g in enumerate(spaces.sample_unique("chain", n, seed + 1)):
        arch = spaces.build(g, shape, classes)
        key = f"{template['key']}-{i}"
        results.append({**template, "key": key, "arch": arch.to_dict(), "arch_id": arch.id,
                        "hparams": {**template["hparams"], "genotype": g, "job_key": key}})
    rep = RunReport()
    with Store(db) as store:
        store.upsert_dataset(info["name"], info["fingerprint"], info["n_samples"],
                             classes, info["input_shape"], source="tapas-bench")
        w = ResultWriter(store, rep, batch_size=batch_size, flush_seconds=float("inf"))
        t0 = time.perf_counter()
        for r in results:
            w.add(r)
        w.flush()
        wall = time.perf_counter() - t0
    if rep.written != n:
        raise RuntimeError(f"writer bench wrote {rep.written} of {n}: {rep.to_dict()}")
    return n / wall


def run_backend_benchmark(backend: str = "local", workers: int = 2, n_jobs: int = 24,
                          address: str | None = None, n_results: int = 3000,
                          batch_size: int = 64, n_roundtrips: int = 30, seed: int = 0,
                          seconds_per_job: float | None = None,
                          progress: Progress | None = None) -> dict[str, Any]:
    """Jobs/s of the local pool (and of Ray), Ray's per-job overhead, the writer's rate."""
    import tempfile

    from tapas.app.experiments.backends import check_backend, ray_session

    check_backend(backend)
    jobs = bench_jobs(n_jobs, seed)
    out: dict[str, Any] = {"backend": backend, "workers": workers,
                           "n_backend_jobs": len(jobs)}
    steps = 3 if backend == "ray" else 2
    with tempfile.TemporaryDirectory(prefix="tapas-bench-") as tmp:
        wall, local = _run_into(Path(tmp) / "local.duckdb", jobs, "local", workers, None)
        out["local_jobs_per_s"] = round(len(jobs) / wall, 3)
        out["local_pool_start_seconds"] = round(_roundtrips("local", 1, None, 3) / 1000, 2)
        if progress:
            progress("backends", 1, steps)
        if backend == "ray":
            t0 = time.perf_counter()
            with ray_session(address, workers):
                out["ray_init_seconds"] = round(time.perf_counter() - t0, 2)
                wall, ray_res = _run_into(Path(tmp) / "ray.duckdb", jobs, "ray", workers,
                                          address)
                out["ray_jobs_per_s"] = round(len(jobs) / wall, 3)
                out["backends_identical"] = _accuracies(ray_res) == _accuracies(local)
                _roundtrips("ray", workers, address, 3)  # warm
                out["ray_overhead_ms_per_job"] = _roundtrips("ray", workers, address,
                                                             n_roundtrips)
                from tapas.app.experiments.backends import map_jobs

                n_noop = 400
                t0 = time.perf_counter()
                map_jobs(noop, [()] * n_noop, lambda *_: None, workers, "ray", address)
                out["ray_noop_tasks_per_s"] = round(n_noop / (time.perf_counter() - t0), 1)
            if progress:
                progress("backends", 2, steps)
        template = local[jobs[0].key]
        t_job = seconds_per_job or float(np.median([r["seconds"] for r in local.values()]))
        rate = _writer_rate(Path(tmp) / "writer.duckdb", template, n_results, batch_size, seed)
        out["writer_results_per_s"] = round(rate, 1)
        out["writer_batch_size"] = batch_size
        out["writer_limit_seconds_per_job"] = round(t_job, 4)
        out["writer_limit_workers"] = int(rate * t_job)
        if progress:
            progress("backends", steps, steps)
    return out


def main(
        n_jobs: Annotated[int, typer.Option("--n-jobs", min=1)] = 12,
        n_repeat: Annotated[int, typer.Option("--n-repeat", min=0)] = 3,
        seed: SeedOpt = 0,
        backend: Annotated[str | None, typer.Option(
            "--backend", help="Also measure the backends: local (the process pool and the "
                              "single writer) or ray (both backends, Ray's per-job overhead "
                              "and the writer).")] = None,
        address: AddressOpt = None,
        workers: Annotated[int, typer.Option("--workers", "-w", min=1,
                                             help="Pool processes / local Ray CPUs.")] = 2,
        n_backend_jobs: Annotated[int, typer.Option("--n-backend-jobs", min=1,
                                                    help="Jobs run on each backend.")] = 24,
        as_json: JsonOpt = False) -> None:
    """Seconds per starter experiment (median, one thread) and same-seed repeatability;
    with --backend, jobs/s per backend, Ray's overhead and the writer's results/s."""
    from tapas.app.experiments.backends import BackendError, check_backend, import_ray

    try:
        if backend is not None:
            check_backend(backend)
            if backend == "ray":
                import_ray()
        total = n_jobs + n_repeat + (0 if backend is None else 3)
        with _progress(disable=as_json) as bar:
            task = bar.add_task("bench experiments", total=total, info="")
            out = run_benchmark(n_jobs, n_repeat, seed,
                                progress=lambda _p, d, t: bar.update(task, completed=d))
            if backend is not None:
                base = n_jobs + n_repeat
                out.update(run_backend_benchmark(
                    backend, workers, n_backend_jobs, address, seed=seed,
                    seconds_per_job=out["seconds_per_job_median"],
                    progress=lambda _p, d, t: bar.update(task, completed=base + d * 3 // t)))
    except BackendError as e:
        fail(str(e))
    if as_json:
        print_json(out)
        return
    print_metrics("benchmarks.experiments", out, fmt="")


if __name__ == "__main__":
    run_cli(main)
