"""Re-run stored experiments and compare: how reproducible the shipped data is.

Every starter experiment stores its whole job in ``hparams`` (genotype, dataset spec,
recipe, split, seed), so any row can be trained again. :func:`verify` re-runs a
slice (in the order the rows were written) and reports the accuracy differences;
with ``seed_offset`` it re-runs with other seeds instead, which measures the recipe's
seed-to-seed noise.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from tapas.app.experiments.backends import map_jobs
from tapas.app.experiments.jobs import Job, run_job
from tapas.core.lazy import LazyImport

duckdb = LazyImport("duckdb")


def stored_jobs(directory: Path, lo: int = 0, hi: int | None = None
                ) -> list[tuple[Job, float, list[float]]]:
    """(job, stored accuracy, stored curve) for rows ``lo:hi`` of an LDE export, by ``seq``."""
    d = str(Path(directory) / "experiments" / "*" / "*.parquet").replace("'", "''")
    limit = "" if hi is None else f"LIMIT {max(0, int(hi) - int(lo))}"
    con = duckdb.connect()
    try:
        rows = con.execute(f"""SELECT hparams, seed, source, accuracy, curve
                               FROM read_parquet('{d}') WHERE hparams IS NOT NULL
                               ORDER BY seq {limit} OFFSET {int(lo)}""").fetchall()
    finally:
        con.close()
    out = []
    for hp, seed, source, acc, curve in rows:
        h = json.loads(hp)
        if "genotype" in h and "dataset_spec" in h:
            out.append((Job.from_hparams(h, seed, source), float(acc), list(curve or [])))
    return out


def verify(directory: Path, lo: int = 0, hi: int | None = 20, workers: int = 0,
           seed_offset: int = 0, backend: str = "local",
           address: str | None = None) -> dict[str, Any]:
    """Re-run rows ``lo:hi`` (on ``backend``) and compare their final accuracies with the
    stored ones."""
    items = stored_jobs(directory, lo, hi)
    jobs = [replace(j, seed=j.seed + seed_offset) for j, _, _ in items]
    got: dict[int, float] = {}
    errors: list[str] = []

    def on_result(i: int, r: dict[str, Any] | None, err: BaseException | None) -> None:
        if r is None:
            errors.append(f"{jobs[i].key}: {err}")
        else:
            got[i] = r["accuracy"]

    map_jobs(run_job, [(j,) for j in jobs], on_result, workers, backend, address)
    diffs = [got[i] - items[i][1] for i in sorted(got)]
    absd = sorted(abs(x) for x in diffs)
    n = len(absd)
    return {
        "n": n, "seed_offset": seed_offset, "errors": errors,
        "identical": sum(1 for x in absd if x == 0.0),
        "max_abs_diff": max(absd) if absd else None,
        "mean_abs_diff": sum(absd) / n if n else None,
        "p90_abs_diff": absd[min(n - 1, int(0.9 * n))] if n else None,
        "std_diff": (sum(x * x for x in diffs) / n) ** 0.5 if n else None,
        "rows": [{"dataset": items[i][0].dataset, "stored": items[i][1], "rerun": got[i]}
                 for i in sorted(got)],
    }
