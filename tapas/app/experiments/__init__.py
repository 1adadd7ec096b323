"""The experiment runner: train sampled architectures on many datasets, into the LDE.

* :mod:`tapas.app.experiments.jobs` -- :class:`Job` and the pure job function
  :func:`run_job` (any executor can run it: process pool, Ray, Dask, Slurm arrays);
* :mod:`tapas.app.experiments.plan` -- spreading genotypes over datasets, and the
  starter preset that generated the shipped data (:func:`starter_plan`);
* :mod:`tapas.app.experiments.backends` -- where jobs run: this process, a local process
  pool, or one Ray task per job (``backend="ray"``, the optional ``ray`` extra);
* :mod:`tapas.app.experiments.runner` -- the resumable runner whose driver alone writes
  results to the LDE in batches (:func:`run_jobs`, :func:`ensure_datasets`,
  :class:`ResultWriter`).
"""

from __future__ import annotations

from tapas.app.experiments.jobs import Job, dcn_job, run_job
from tapas.app.experiments.plan import (
    STARTER_DATASETS,
    STARTER_RECIPE,
    STARTER_SOURCE,
    Plan,
    plan_jobs,
    starter_plan,
)
from tapas.app.experiments.runner import (
    ResultWriter,
    RunReport,
    done_keys,
    ensure_datasets,
    run_jobs,
)

__all__ = ["STARTER_DATASETS", "STARTER_RECIPE", "STARTER_SOURCE", "Job", "Plan",
           "ResultWriter", "RunReport",
           "dcn_job", "done_keys", "ensure_datasets", "plan_jobs", "run_job", "run_jobs",
           "starter_plan"]
