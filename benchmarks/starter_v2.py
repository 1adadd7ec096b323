"""Scenario C on the starter-v2 datasets (16x16/28x28 gray, 32x32 RGB), a development bench.

``python -m benchmarks.starter_v2 [TAP_KWARGS_JSON]`` leaves each v2 dataset out in turn
(the production selection rule picks its training datasets among all starter datasets;
history reads every other dataset), scores TAP beside every baseline, and prints per
dataset Kendall tau and the noise ceiling, then one JSON object: each model's mean tau and
fraction of the ceiling, TAP's MAE, coverage and median interval width, and few-shot
Kendall tau for TAP and gradient boosting. ``TAP_KWARGS_JSON`` (e.g.
``'{"history_dropout": 0}'``) passes TAP hyper-parameters, for ablations. The full
``python -m benchmarks.predictor --suite starter`` does the same over all 25 datasets (about an
hour on this machine).
"""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

import numpy as np


def run(tap_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    import torch

    from benchmarks.evaluate import few_shot, scenario_c
    from benchmarks.predictor import default_models, load_starter
    from lde.selection import MIN_DATASETS, MIN_EXPERIMENTS, TAU, select_adaptive
    from lde.starter import STARTER_V2_SOURCE
    from tapas.app.experiments.plan import STARTER_V2_DATASETS

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    table = load_starter()
    ceiling = table.noise_ceiling
    names = table.dataset_names
    targets = [d for d in table.dataset_dcn() if names.get(d) in STARTER_V2_DATASETS]
    select = partial(select_adaptive, min_experiments=MIN_EXPERIMENTS,
                     min_datasets=MIN_DATASETS, tau=TAU)
    results = []
    for ds in targets:
        res = scenario_c(table, ds, default_models(0, tap_kwargs), select)
        results += res
        print(names[ds], {r.model: round(r.metrics["kendall"], 3) for r in res},
              f"ceiling {ceiling.get(ds, float('nan')):.3f}", flush=True)
    out: dict[str, Any] = {"source": STARTER_V2_SOURCE, "datasets": len(targets),
                           "tap_kwargs": tap_kwargs or {}}
    for m in dict.fromkeys(r.model for r in results):
        taus = [r.metrics["kendall"] for r in results if r.model == m]
        out[m] = {"kendall_mean": float(np.mean(taus)),
                  "fraction_of_ceiling": float(np.mean(taus) / np.mean(
                      [ceiling[r.target] for r in results if r.model == m]))}
    tap = [r for r in results if r.model == "tap"]
    out["noise_ceiling_mean"] = float(np.mean([ceiling[d] for d in targets]))
    out["tap_mae_mean"] = float(np.mean([r.metrics["mae"] for r in tap]))
    out["tap_coverage_90"] = float(np.mean([r.metrics["coverage"] for r in tap]))
    out["tap_interval_width_median"] = float(np.median(
        [np.median(r.interval[1] - r.interval[0]) for r in tap if r.interval is not None]))
    shots = few_shot(table, results)
    for m in ("tap", "gbr"):
        out[f"few_shot_{m}"] = {k: float(np.nanmean(list(v.values())))
                                for k, v in shots[m].items()}
    out["seconds"] = time.perf_counter() - t0
    return out


if __name__ == "__main__":
    import sys

    print(json.dumps(run(json.loads(sys.argv[1]) if len(sys.argv) > 1 else None), indent=1))
