"""Zero-cost proxies as baselines on the starter suite, computed by the project.

NAS-Bench-201's published proxies need its images, which are not available; the starter
datasets are built-ins, so :mod:`probenet.zero_cost` scores every network of a left-out
dataset on a mini-batch of that dataset's own images. The rows and the truth are those
scenario C scores TAP on (:func:`benchmarks.evaluate.scored_rows`), so the proxies stand in
the same table as the other baselines.

``python -m benchmarks.zero_cost [DATASET ...]`` prints the per-dataset Kendall tau of
each proxy on the starter suite (all datasets by default) as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _finite(scores: np.ndarray) -> np.ndarray:
    """``-inf`` (a singular NASWOT kernel, a zero synflow) ranked below every finite score."""
    ok = np.isfinite(scores)
    if ok.all():
        return scores
    low = float(scores[ok].min()) - 1.0 if ok.any() else 0.0
    return np.where(ok, scores, low)


def zero_cost_baselines(table: Any, targets: Sequence[str], ceiling: dict[str, float],
                        seed: int = 0, log: Callable[[str], None] | None = None
                        ) -> dict[str, dict[str, Any]]:
    """Per proxy, the keys of a scenario-C baseline in ``python -m benchmarks.predictor``:
    ``scenario_c_kendall`` (per left-out dataset), its mean, and the mean's fraction of
    the noise ceiling; proxies predict no accuracy, so no MAE.

    ``table.dataset_names`` maps each dataset id to the spec its images load from.
    """
    from benchmarks.evaluate import scored_rows
    from predictor.metrics import kendall
    from probenet.datasets import load_dataset
    from probenet.zero_cost import PROXIES, score_archs

    say = log or (lambda s: None)
    names = getattr(table, "dataset_names", None) or {}
    taus: dict[str, dict[str, float]] = {p: {} for p in PROXIES}
    for target in targets:
        if target not in names:
            raise ValueError(f"no dataset spec for {target!r}: zero-cost proxies need its images")
        rows = scored_rows(table, target)
        archs = [table.archs[i] for i in rows]
        unique = {a.id: a for a in archs}
        t0 = time.perf_counter()
        scores = score_archs(list(unique.values()), load_dataset(names[target]), seed=seed)
        at = {aid: i for i, aid in enumerate(unique)}
        pick = np.array([at[a.id] for a in archs])
        for p in PROXIES:
            taus[p][target] = kendall(_finite(scores[p])[pick], table.accuracies[rows])
        say(f"zero-cost proxies on {names[target]}: {len(unique)} networks, "
            f"{time.perf_counter() - t0:.1f} s")
    out = {}
    for p, by in taus.items():
        mean = float(np.mean(list(by.values()))) if by else None
        ceil = [ceiling[d] for d in by if d in ceiling]
        frac = (float(np.mean([by[d] for d in by if d in ceiling]) / np.mean(ceil))
                if ceil else None)
        out[p] = {"scenario_c_kendall": by, "scenario_c_kendall_mean": mean,
                  "scenario_c_mae_mean": None, "scenario_c_fraction_of_ceiling": frac}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.zero_cost", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", nargs="*", help="starter dataset names (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from benchmarks.predictor import load_starter

    table = load_starter()
    by_name = {v: k for k, v in table.dataset_names.items()}
    unknown = [d for d in args.datasets if d not in by_name]
    if unknown:
        ap.error(f"not starter datasets: {', '.join(unknown)}")
    targets = ([by_name[d] for d in args.datasets] if args.datasets
               else list(table.dataset_dcn()))
    t0 = time.perf_counter()
    res = zero_cost_baselines(table, targets, table.noise_ceiling, seed=args.seed,
                              log=lambda s: print(s, flush=True))
    print(json.dumps({"zero_cost": res, "dataset_names": table.dataset_names,
                      "seconds": round(time.perf_counter() - t0, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
