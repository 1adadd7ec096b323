"""``tapas bench experiments``: how long one starter experiment takes, and its repeatability.

* ``seconds_per_job_median`` / ``_p90``: wall time of :func:`tapas.experiments.run_job`
  (one torch thread, in this process; dataset loading excluded by a warm-up) over
  ``n_jobs`` jobs of the starter plan's recipe: chain and NAS-Bench-201 genotypes
  sampled with ``seed`` on three starter datasets (digits 8x8, MNIST 7x7, MNIST-1D 5x8).
* ``jobs_per_hour_2_workers``: 2 * 3600 / median, what the runner can do with two
  worker processes on two free cores.
* ``rerun_max_abs_diff``: the first ``n_repeat`` jobs run again with the same seed;
  the largest accuracy difference (0 means bit-for-bit repeatable).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

Progress = Callable[[str, int, int], None]

DATASETS = ("digits?per_class=75", "mnist5k?per_class=75&downsample=4", "mnist1d?per_class=75")


def run_benchmark(n_jobs: int = 12, n_repeat: int = 3, seed: int = 0,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Time ``n_jobs`` starter-recipe jobs (see the module docstring)."""
    import torch

    from tapas import spaces
    from tapas.experiments.jobs import Job, load_split, run_job
    from tapas.experiments.plan import STARTER_RECIPE, STARTER_TEST_FRACTION

    torch.set_num_threads(1)
    genos = (spaces.sample_unique("chain", max(1, n_jobs - n_jobs // 6), seed)
             + spaces.sample_unique("nb201", max(1, n_jobs // 6), seed))[:n_jobs]
    jobs = []
    for i, g in enumerate(genos):
        fits = [d for d in DATASETS if spaces.get_space(g["space"]).compatible(
            load_split(d, STARTER_TEST_FRACTION, 0)[0].input_shape)]
        jobs.append(Job(g, fits[i % len(fits)], dict(STARTER_RECIPE),
                        test_fraction=STARTER_TEST_FRACTION))
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
