"""What a candidate starter recipe does to the seed-to-seed noise (a development bench).

``python -m benchmarks.seed_noise [--recipe JSON] [--networks N] [--seeds K] [--workers N]
DATASET ...`` (or ``--all`` for every starter dataset)

Each ``DATASET`` is a starter dataset spec, optionally followed by ``" -> VARIANT@F"``:
train its first ``--networks`` networks in plan order (those of ``--preset
starter-noise``) with seeds 0 and 1 under their recipe changed by ``--recipe`` (fields
of :class:`probenet.train.Recipe`, e.g. ``'{"epochs": 12}'``), on ``VARIANT`` split with
test fraction ``F`` when given (e.g. more images per class and a larger test fraction:
the same training-set size, a larger test set). Prints, per dataset, the Kendall tau
between the two seeds next to the shipped data's, then one JSON object.

``--seeds K`` trains ``2K`` seeds instead and also reports ``averaged_kendall``: for
``k = 1..K``, the Kendall tau between the mean accuracy over ``k`` even seeds and over
``k`` odd ones, i.e. how reproducible a label stored as the mean of ``k`` seeds is
(``k = 1`` is the plain seed-to-seed tau). The runs are not
stored: this measures a recipe before paying for a regeneration
(``lde/starter/DATA_CARD.md``, "Choosing a recipe").
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from typing import Any

import numpy as np

ARROW = " -> "


def parse_dataset(arg: str) -> tuple[str, str | None, float | None]:
    """``"BASE"`` or ``"BASE -> VARIANT@FRACTION"``."""
    if ARROW not in arg:
        return arg, None, None
    base, rest = arg.split(ARROW, 1)
    variant, _, frac = rest.rpartition("@")
    if not variant or not frac:
        raise ValueError(f"expected 'BASE -> VARIANT@TEST_FRACTION', got {arg!r}")
    f = float(frac)
    if not 0.0 < f < 1.0:
        raise ValueError(f"test fraction must lie in (0, 1), got {f} in {arg!r}")
    return base, variant, f


def run(datasets: list[str], recipe: dict[str, Any], networks: int = 60, workers: int = 2,
        seeds: int = 1) -> dict[str, Any]:
    from lde.starter import seed_to_seed_kendall, starter_stats
    from probenet.train import Recipe
    from tapas.app.experiments.backends import map_jobs
    from tapas.app.experiments.jobs import run_job
    from tapas.app.experiments.plan import starter_noise_plan

    if networks < 2:
        raise ValueError(f"a Kendall tau needs at least 2 networks, got {networks}")
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    parsed = {base: (var, frac) for base, var, frac in map(parse_dataset, datasets)}
    plan = starter_noise_plan(per_dataset=networks, seeds=(0,))
    try:
        Recipe(**{**plan.jobs[0].recipe, **recipe})
    except TypeError as e:
        raise ValueError(f"--recipe: {e}") from None
    unknown = set(parsed) - set(plan.datasets)
    if unknown:
        raise ValueError(f"not starter datasets: {', '.join(sorted(unknown))}")
    jobs, names = [], []
    for j in plan.jobs:
        if j.dataset not in parsed:
            continue
        var, frac = parsed[j.dataset]
        job = replace(j, recipe={**j.recipe, **recipe}, dataset=var or j.dataset,
                      test_fraction=frac or j.test_fraction)
        for seed in range(2 * seeds):
            jobs.append((replace(job, seed=seed),))
            names.append(j.dataset)
    results: dict[int, dict[str, Any]] = {}

    def keep(i: int, r: dict[str, Any] | None, err: BaseException | None) -> None:
        if err is not None:
            raise err
        results[i] = r

    t0 = time.perf_counter()
    map_jobs(run_job, jobs, keep, workers=workers)
    wall = time.perf_counter() - t0
    acc = np.array([results[i]["accuracy"] for i in range(len(jobs))]).reshape(-1, 2 * seeds)
    net_names = names[::2 * seeds]
    averaged = {k: seed_to_seed_kendall(list(zip(net_names, acc[:, 0:2 * k:2].mean(1),
                                                 acc[:, 1:2 * k:2].mean(1), strict=True)))
                for k in range(1, seeds + 1)}
    tau = averaged[1]
    shipped = {r["name"]: r["seed_to_seed_kendall"] for r in starter_stats()["per_dataset"]}
    seconds: dict[str, list[float]] = {}
    for i, n in enumerate(names):
        seconds.setdefault(n, []).append(results[i]["seconds"])
    rows = [{"dataset": b, "variant": parsed[b][0], "test_fraction": parsed[b][1],
             "seed_to_seed_kendall": tau[b], "shipped": shipped.get(b),
             "averaged_kendall": {k: averaged[k][b] for k in averaged},
             "seconds_per_run": round(sum(seconds[b]) / len(seconds[b]), 3)} for b in parsed]
    mean = sum(r["seed_to_seed_kendall"] for r in rows) / len(rows)
    was = [r["shipped"] for r in rows if r["shipped"] is not None]
    averaged_mean = {k: round(sum(r["averaged_kendall"][k] for r in rows) / len(rows), 4)
                     for k in averaged}
    return {"recipe": recipe, "networks": networks, "seeds": 2 * seeds, "runs": len(jobs),
            "wall_s": round(wall, 1), "seed_to_seed_kendall_mean": round(mean, 4),
            "shipped_mean": round(sum(was) / len(was), 4) if was else None,
            "averaged_kendall_mean": averaged_mean,
            "per_dataset": rows}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("datasets", nargs="*")
    ap.add_argument("--all", action="store_true", help="every starter dataset")
    ap.add_argument("--recipe", type=json.loads, default={},
                    help="recipe fields to change, as JSON")
    ap.add_argument("--networks", type=int, default=60)
    ap.add_argument("--seeds", type=int, default=1,
                    help="seeds per side: report labels averaged over 1..K seeds")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    if a.all == bool(a.datasets):
        ap.error("name the datasets or pass --all, not both")
    if a.all:
        from tapas.app.experiments.plan import starter_noise_plan

        a.datasets = list(starter_noise_plan(per_dataset=2, seeds=(0,)).datasets)
    out = run(a.datasets, a.recipe, a.networks, a.workers, a.seeds)
    for r in out["per_dataset"]:
        avg = " ".join(f"{v:.3f}" for v in r["averaged_kendall"].values())
        print(f"{avg} (shipped {r['shipped']}) {r['dataset']}"
              + (f" -> {r['variant']}@{r['test_fraction']:.3f}" if r["variant"] else ""))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
