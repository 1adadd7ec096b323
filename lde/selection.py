"""The DCN selection rule: which datasets' experiments train the predictor for a target.

One rule, used by :meth:`lde.Store.filter_adaptive` in production and by the predictor
benchmark (so the benchmark measures what users get). TAPAS keeps the datasets whose
DCN lies within ``tau`` of the target's (``tau = 0.05``); when those hold too little,
the radius widens to the next-nearest dataset, one dataset at a time, until at least
``min_experiments`` experiments from ``min_datasets`` datasets are selected. A network
run with several seeds counts once: seeds sharpen a label, they do not widen what the
predictor learns from. Pure Python: no store, no numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

#: TAPAS's radius, and the minimums the pipeline asks of a selection. TAPAS's predictor
#: learned absolute accuracies, so only datasets of close DCN could teach it; ours learns
#: each network's standing within its dataset (the level is a separate fit), which
#: transfers across DCNs, so a wider selection teaches it more: 5,000 labels rank unseen
#: starter datasets better than 1,000 (BENCHMARKS.md, "A wider DCN selection").
TAU = 0.05
MIN_EXPERIMENTS = 5_000
MIN_DATASETS = 2
_EPS = 1e-12


def select_adaptive(table: Sequence[tuple[str, float, int]], dcn: float,
                    min_experiments: int = MIN_EXPERIMENTS, min_datasets: int = MIN_DATASETS,
                    tau: float = TAU) -> tuple[list[str], float, bool]:
    """``(dataset ids, radius used, satisfied)`` for rows ``(id, dcn, n_experiments)``.

    Every dataset within the final radius is selected (ties at equal distance go
    together); ``satisfied`` is False when even every dataset falls short.
    """
    ranked = sorted(table, key=lambda r: (abs(r[1] - dcn), r[0]))
    used = float(tau)
    total, n_ds, ok = 0, 0, False
    for _, d, n in ranked:
        dist = abs(d - dcn)
        if dist > used + _EPS and total >= min_experiments and n_ds >= min_datasets:
            ok = True
            break
        if n:
            total, n_ds = total + n, n_ds + 1
            used = max(used, dist)
    else:
        ok = total >= min_experiments and n_ds >= min_datasets
    return [r[0] for r in ranked if abs(r[1] - dcn) <= used + _EPS], used, ok


def _labelled(table: Sequence[tuple[str, float, int]], dcn: float, min_experiments: int,
              min_datasets: int, tau: float) -> frozenset[str]:
    ids = set(select_adaptive(table, dcn, min_experiments, min_datasets, tau)[0])
    return frozenset(r[0] for r in table if r[0] in ids and r[2])


def selection_interval(table: Sequence[tuple[str, float, int]], dcn: float,
                       min_experiments: int = MIN_EXPERIMENTS, min_datasets: int = MIN_DATASETS,
                       tau: float = TAU, step: float = 1e-4) -> tuple[float, float]:
    """The DCNs, within [0, 1], whose selection holds the same labelled datasets as
    ``dcn``'s (so the same experiments, and the same predictor): scanned in ``step``s and
    bisected to 1e-9 at each end. Selections change at finitely many DCNs; a change
    narrower than ``step`` on the way can be missed, so the release command that uses
    this checks its ends again."""
    want = _labelled(table, dcn, min_experiments, min_datasets, tau)

    def same(x: float) -> bool:
        return _labelled(table, x, min_experiments, min_datasets, tau) == want

    ends = []
    for sign in (-1.0, 1.0):
        inside = dcn
        outside = None
        while outside is None:
            x = min(1.0, max(0.0, inside + sign * step))
            if x == inside:
                break
            if same(x):
                inside = x
            else:
                outside = x
        if outside is not None:
            while abs(outside - inside) > 1e-9:
                mid = 0.5 * (inside + outside)
                if same(mid):
                    inside = mid
                else:
                    outside = mid
        ends.append(inside)
    return ends[0], ends[1]

