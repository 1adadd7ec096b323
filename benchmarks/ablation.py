"""Scenario-C ablations of TAP variants beside chosen baselines (a development bench).

``python -m benchmarks.ablation SUITE LIMIT VARIANTS [SCENARIO] [BASELINES]``

* ``SUITE``: ``nb201`` or ``starter``; ``LIMIT``: cells per NAS-Bench-201 dataset
  (0: all);
* ``VARIANTS``: JSON ``{"name": {TAPRegressor hyper-parameters}, ...}``;
* ``SCENARIO``: ``C`` (default), ``N`` (C on families the LDE holds nowhere, see
  :func:`benchmarks.evaluate.scenario_n`) or ``A``; ``BASELINES``: comma-separated names from
  :data:`benchmarks.baselines.BASELINES` (default ``gbr,mean_rank_other,nearest``).

Prints Kendall tau per left-out dataset and each model's mean tau, MAE, coverage, (for
models with intervals) Spearman between the ensemble spread and the absolute error, and its
median fit time.
Scenario C selects training datasets with the production rule (:mod:`lde.selection`).
"""

from __future__ import annotations

import json
import sys
import time
from functools import partial
from typing import Any

#: Baselines that read other datasets' results: nothing to say in scenario A.
CROSS_DATASET = ("nearest", "mean_rank_other")


def run_scenario(table: Any, target: str, scenario: str,
                 models: dict[str, Any]) -> list[Any]:
    """``target``'s results in scenario ``A`` (its own 1,000 training cells, seed 0) or
    ``C``/``N`` (left out; training datasets chosen by the production selection rule)."""
    from benchmarks.evaluate import scenario_a, scenario_c, scenario_n
    from lde.selection import MIN_DATASETS, MIN_EXPERIMENTS, select_adaptive

    if scenario == "A":
        return scenario_a(table, target, {k: v for k, v in models.items()
                                          if k not in CROSS_DATASET})
    if scenario not in ("C", "N"):
        raise ValueError(f"scenario must be A, C or N, got {scenario!r}")
    select = partial(select_adaptive, min_experiments=MIN_EXPERIMENTS,
                     min_datasets=MIN_DATASETS)
    return (scenario_c if scenario == "C" else scenario_n)(table, target, models, select)


def main(argv: list[str]) -> None:
    import numpy as np
    import torch

    from benchmarks.baselines import BASELINES
    from benchmarks.predictor import load_suite
    from predictor import TAPRegressor

    if len(argv) < 3:
        sys.exit(__doc__)
    torch.set_num_threads(1)
    suite, limit = argv[0], int(argv[1]) or None
    variants: dict[str, dict[str, Any]] = json.loads(argv[2])
    scenario = argv[3] if len(argv) > 3 else "C"
    names = argv[4].split(",") if len(argv) > 4 else ["gbr", "mean_rank_other", "nearest"]
    t0 = time.time()
    table = load_suite(suite, None, limit)
    print(f"loaded {len(table.archs)} rows in {time.time() - t0:.0f} s", flush=True)
    models: dict[str, Any] = {k: partial(TAPRegressor, **kw) for k, kw in variants.items()}
    for b in filter(None, names):
        models[b] = partial(BASELINES[b], seed=0) if b == "gbr" else BASELINES[b]
    res: dict[str, dict[str, tuple[float, float, float]]] = {}
    spread: dict[str, list[float]] = {}
    fit_s: dict[str, list[float]] = {}
    for ds in table.dataset_dcn():
        rs = run_scenario(table, ds, scenario, models)
        for r in rs:
            res.setdefault(r.model, {})[ds] = (r.metrics["kendall"], r.metrics["mae"],
                                               r.metrics.get("coverage", float("nan")))
            fit_s.setdefault(r.model, []).append(r.fit_seconds)
            if "spread_error_spearman" in r.metrics:
                spread.setdefault(r.model, []).append(r.metrics["spread_error_spearman"])
            for k, v in r.metrics.items():  # a TAP variant's parts (``kendall_lstm``, ...)
                if k.startswith("kendall_"):
                    res.setdefault(f"{r.model}.{k[8:]}", {})[ds] = (v, float("nan"),
                                                                    float("nan"))
        print(ds, {r.model: round(r.metrics["kendall"], 3) for r in rs},
              {f"{r.model}.{k[8:]}": round(v, 3) for r in rs for k, v in r.metrics.items()
               if k.startswith("kendall_")}, flush=True)
    for m, v in res.items():
        k, e, c = (float(np.mean([x[i] for x in v.values()])) for i in range(3))
        sp = (f", Spearman(spread, abs. error) {np.mean(spread[m]):.3f}" if m in spread
              else "")
        fit = f", fit median {np.median(fit_s[m]):.1f} s" if m in fit_s else ""
        print(f"{m}: mean tau {k:.4f}, MAE {e:.4f}, coverage {c:.3f}{sp}{fit}")


if __name__ == "__main__":
    main(sys.argv[1:])
