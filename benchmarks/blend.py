"""How much trees beside the LSTM would add: rank averages of TAP and gradient boosting
(a development bench for issue 12's "trees beside the LSTM only with an ablation").

``python -m benchmarks.blend SUITE LIMIT SCENARIO [WEIGHTS]``

* ``SUITE``: ``nb201`` or ``starter``; ``LIMIT``: cells per NAS-Bench-201 dataset (0: all);
* ``SCENARIO``: ``A``, ``C`` or ``N`` (see :mod:`benchmarks.evaluate`; C and N with the
  production selection rule);
* ``WEIGHTS``: comma-separated weights of TAP's rank (default ``0.5,0.75``).

Fits TAP and the gradient-boosting baseline (seed 0, one torch thread) once per
dataset, then scores ``w x rank(TAP) + (1 - w) x rank(GBR)`` on the same rows: Kendall
tau per dataset and the mean, one line per dataset and a JSON object at the end.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np


def rank_blend_kendall(truth: np.ndarray, first: np.ndarray, second: np.ndarray,
                       weights: Sequence[float]) -> dict[float, float]:
    """Kendall tau against ``truth`` of ``w x rank(first) + (1 - w) x rank(second)``."""
    from scipy.stats import rankdata

    from predictor.metrics import kendall

    r1, r2 = rankdata(first), rankdata(second)
    return {float(w): kendall(w * r1 + (1 - w) * r2, truth) for w in weights}


def main(argv: list[str]) -> None:
    import torch

    from benchmarks.ablation import run_scenario
    from benchmarks.baselines import GBRBaseline
    from benchmarks.predictor import load_suite
    from predictor import TAPRegressor

    if len(argv) < 3 or argv[2] not in ("A", "C", "N"):
        sys.exit(__doc__)
    torch.set_num_threads(1)
    suite, limit, scenario = argv[0], int(argv[1]) or None, argv[2]
    weights = [float(w) for w in argv[3].split(",")] if len(argv) > 3 else [0.5, 0.75]
    table = load_suite(suite, None, limit)
    models: dict[str, Any] = {"tap": partial(TAPRegressor, seed=0),
                              "gbr": partial(GBRBaseline, seed=0)}
    out: dict[str, dict[str, float]] = {}
    for ds in table.dataset_dcn():
        by = {r.model: r for r in run_scenario(table, ds, scenario, models)}
        truth = table.accuracies[by["tap"].test_index]
        row = {"tap": by["tap"].metrics["kendall"], "gbr": by["gbr"].metrics["kendall"]}
        for w, k in rank_blend_kendall(truth, by["tap"].predictions, by["gbr"].predictions,
                                       weights).items():
            row[f"blend_{w:g}"] = k
        out[ds] = row
        print(ds, {k: round(v, 3) for k, v in row.items()}, flush=True)
    mean = {k: float(np.mean([r[k] for r in out.values()])) for k in next(iter(out.values()))}
    print(json.dumps({"suite": suite, "scenario": scenario, "per_dataset": out, "mean": mean}))


if __name__ == "__main__":
    main(sys.argv[1:])
