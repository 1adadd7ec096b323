"""Evaluation scenarios over any ``(architecture, dataset, DCN, accuracy)`` table.

* **A, seen dataset**: train on ``n_train`` random rows of one dataset, score the rest.
* **B, unseen dataset, no filtering**: leave the target dataset out, train on
  everything else (a dataset-balanced sample of at most ``max_train`` rows,
  :mod:`predictor.sampling`).
* **C, unseen dataset, DCN-filtered (TAPAS)**: leave the target out; keep the datasets
  the LDE's own selection rule picks for the target's DCN (passed in as ``select``,
  :func:`lde.selection.select_adaptive` in the benchmark); train on a dataset-balanced
  sample of at most ``max_train`` of their rows. History features (``predictor.history``) may
  use every row of the other datasets, never the target's.
* **N, unseen dataset and unseen families**: scenario C for a seeded share of the
  target's network families that the LDE holds nowhere: their rows on every dataset
  leave training and history, and only they are scored. What a user meets with a new
  search space; history cannot answer, the architecture must.

The table and its loaders (NAS-Bench-201 with its reference-cell DCNs, any exported
table) are the product's :mod:`predictor.table`; the reference rows are never scored.
"""

from __future__ import annotations

import csv
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from predictor.history import HistoryTable, family_key
from predictor.metrics import all_metrics, coverage, kendall, spearman
from predictor.sampling import MAX_TRAIN_ROWS, balanced_rows
from predictor.table import Table
from tapas.core.arch import Architecture


def _score(model: Any, archs: list[Architecture], dcn: np.ndarray, y: np.ndarray
           ) -> tuple[dict[str, float], np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    if hasattr(model, "predict_interval"):
        p = model.predict_interval(archs, dcn)
        m = all_metrics(p.mean, y)
        m["coverage"] = coverage(p.lower, p.upper, y)
        # does the ensemble spread say where the model errs? (issue 35: an acquisition's signal)
        m["spread_error_spearman"] = spearman(p.spread, np.abs(p.mean - y))
        if hasattr(model, "predict_parts"):  # TAP's parts alone, from the same fit
            m.update({f"kendall_{k}": kendall(v, y)
                      for k, v in model.predict_parts(archs, dcn).items()})
        return m, p.mean, (np.asarray(p.lower), np.asarray(p.upper))
    pred = model.predict(archs, dcn)
    return all_metrics(pred, y), pred, None


@dataclass
class Result:
    scenario: str
    target: str
    model: str
    metrics: dict[str, float]
    n_train: int
    n_test: int
    fit_seconds: float
    train_datasets: list[str]
    predictions: np.ndarray | None = None
    test_index: np.ndarray | None = None
    interval: tuple[np.ndarray, np.ndarray] | None = None


def history_of(table: Table, rows: np.ndarray) -> HistoryTable:
    """What an LDE holding ``rows`` knows of each network family (see predictor.history)."""
    return HistoryTable.of([table.archs[i] for i in rows], table.datasets[rows],
                           table.dcns[rows], table.accuracies[rows])


def _run(table: Table, scenario: str, target: str, tr: np.ndarray, te: np.ndarray,
         models: dict[str, Callable[[], Any]], train_sets: list[str],
         history: HistoryTable | None = None) -> list[Result]:
    """Fit each model on ``tr`` and score ``te``. Models that take ``groups`` and
    ``history`` (TAP) get the rows' dataset ids and ``history`` (default: ``tr``)."""
    out = []
    a_tr, d_tr, y_tr = table.take(tr)
    a_te, d_te, y_te = table.take(te)
    for name, make in models.items():
        model = make()
        t0 = time.perf_counter()
        if "history" in inspect.signature(model.fit).parameters:
            model.fit(a_tr, d_tr, y_tr, groups=table.datasets[tr], history=history)
        else:
            model.fit(a_tr, d_tr, y_tr)
        fs = time.perf_counter() - t0
        m, pred, iv = _score(model, a_te, d_te, y_te)
        out.append(Result(scenario, target, name, m, len(tr), len(te), fs, train_sets, pred, te,
                          iv))
    return out


def scenario_a(table: Table, target: str, models: dict[str, Callable[[], Any]],
               n_train: int = 1000, seed: int = 0) -> list[Result]:
    rows = np.flatnonzero((table.datasets == target) & ~table.reference)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(rows)
    return _run(table, "A", target, np.sort(perm[:n_train]), np.sort(perm[n_train:]), models,
                [target])


def _cap(table: Table, rows: np.ndarray, max_train: int | None, seed: int) -> np.ndarray:
    """The training rows among ``rows``: the pipeline's dataset-balanced sample."""
    return rows[balanced_rows(table.datasets[rows], max_train, seed)]


def scored_rows(table: Table, target: str) -> np.ndarray:
    """The rows every model is scored on when ``target`` is left out (not its reference rows)."""
    return np.flatnonzero((table.datasets == target) & ~table.reference)


def scenario_b(table: Table, target: str, models: dict[str, Callable[[], Any]],
               max_train: int | None = MAX_TRAIN_ROWS, seed: int = 0) -> list[Result]:
    others = [d for d in table.dataset_dcn() if d != target]
    rest = np.flatnonzero(table.datasets != target)
    tr = _cap(table, rest, max_train, seed)
    return _run(table, "B", target, tr, scored_rows(table, target), models, others,
                history_of(table, rest))


#: ``select(rows, target_dcn) -> (dataset ids, tau, satisfied)`` over ``(id, dcn, n)`` rows:
#: the LDE's selection rule (:func:`lde.selection.select_adaptive` in the benchmark).
Selector = Callable[[list[tuple[str, float, int]], float], tuple[list[str], float, bool]]


def scenario_c(table: Table, target: str, models: dict[str, Callable[[], Any]],
               select: Selector, max_train: int | None = MAX_TRAIN_ROWS,
               seed: int = 0) -> list[Result]:
    """Leave ``target`` out; train on the datasets ``select`` picks for its DCN. The
    history features may use everything the table holds about the other datasets."""
    others = table.datasets != target
    tr, keep = _selected_rows(table, target, select, others, max_train, seed)
    return _run(table, "C", target, tr, scored_rows(table, target), models, keep,
                history_of(table, np.flatnonzero(others)))


def _selected_rows(table: Table, target: str, select: Selector, usable: np.ndarray,
                   max_train: int | None, seed: int) -> tuple[np.ndarray, list[str]]:
    """The training rows (capped) among ``usable`` of the datasets ``select`` keeps for
    the target's DCN, and those datasets; dataset sizes count usable rows only."""
    dd = table.dataset_dcn()
    target_dcn = dd.pop(target)
    rows = [(d, v, int(np.sum(usable & (table.datasets == d)))) for d, v in dd.items()]
    keep, _, _ = select(rows, target_dcn)
    return _cap(table, np.flatnonzero(usable & np.isin(table.datasets, keep)), max_train,
                seed), keep


def scenario_n(table: Table, target: str, models: dict[str, Callable[[], Any]],
               select: Selector, share: float = 0.5, max_train: int | None = MAX_TRAIN_ROWS,
               seed: int = 0) -> list[Result]:
    """Scenario C on new families: ``share`` of the target's families (seeded) are
    removed from every other dataset and are the only ones scored."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must lie in (0, 1), got {share!r}")
    fam = np.array([family_key(a) for a in table.archs], dtype=object)
    test = scored_rows(table, target)
    names = sorted(set(fam[test].tolist()))
    rng = np.random.default_rng(seed)
    new = set(rng.choice(names, max(1, round(share * len(names))), replace=False).tolist())
    is_new = np.isin(fam, list(new))
    known = ~is_new & (table.datasets != target)
    tr, keep = _selected_rows(table, target, select, known, max_train, seed)
    return _run(table, "N", target, tr, test[is_new[test]], models, keep,
                history_of(table, np.flatnonzero(known)))


#: Shots per left-out dataset in the few-shot evaluation (0: the zero-shot prediction).
FEW_SHOT_KS: tuple[int, ...] = (0, 5, 10, 20)


def few_shot(table: Table, results: list[Result], ks: Sequence[int] = FEW_SHOT_KS,
             repeats: int = 10, seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """Kendall tau of every scenario-C model after :class:`FewShotAdapter` sees ``k``
    random test networks with their true accuracy (``{model: {k: {dataset: tau}}}``).

    Each repeat draws ``k`` shots and scores the *other* test networks, the zero-shot
    prediction on exactly those networks beside it (``"<k>_zero_shot"``), so the gain
    is measured on the same rows. The adapter's features are the family z-scores on
    every other dataset (never the target's)."""
    from predictor.fewshot import FewShotAdapter, family_zscores

    out: dict[str, dict[str, dict[str, float]]] = {}
    for r in results:
        if r.scenario != "C" or r.predictions is None or r.test_index is None:
            continue
        te = r.test_index
        y = table.accuracies[te]
        base = np.asarray(r.predictions, np.float64)
        hist = history_of(table, np.flatnonzero(table.datasets != r.target))
        feats = family_zscores(hist, [table.archs[i] for i in te])
        rng = np.random.default_rng(seed)
        res = out.setdefault(r.model, {})
        for k in ks:
            if k <= 0 or k >= len(te):
                res.setdefault(str(k), {})[r.target] = kendall(base, y) if k <= 0 else np.nan
                continue
            got, zero = [], []
            for _ in range(repeats):
                shots = rng.choice(len(te), k, replace=False)
                rest = np.ones(len(te), bool)
                rest[shots] = False
                ad = FewShotAdapter().fit(base[shots], feats[shots], y[shots],
                                          reference=(base, feats))
                got.append(kendall(ad.predict(base[rest], feats[rest]), y[rest]))
                zero.append(kendall(base[rest], y[rest]))
            res.setdefault(str(k), {})[r.target] = float(np.mean(got))
            res.setdefault(f"{k}_zero_shot", {})[r.target] = float(np.mean(zero))
    return out


def zero_cost_kendall(data_dir: Path, table: Table, results: list[Result]
                      ) -> dict[str, dict[str, float]]:
    """Kendall tau of each published zero-cost proxy on its 725 cells per dataset, and of
    each scenario-C model's predictions on the same cells (final test accuracy as truth)."""
    path = Path(data_dir) / "nb201_zero_cost.csv"
    with path.open(newline="") as f:
        zc = list(csv.DictReader(f))
    proxies = [c for c in zc[0] if c not in ("dataset", "arch_str", "val_accuracy")]
    out: dict[str, dict[str, float]] = {}
    for ds in dict.fromkeys(table.datasets.tolist()):
        rows = [r for r in zc if r["dataset"] == ds]
        if not rows:
            continue
        idx = {n: i for i, n in enumerate(table.names) if table.datasets[i] == ds}
        cells = [r for r in rows if r["arch_str"] in idx]
        truth = np.array([table.accuracies[idx[r["arch_str"]]] for r in cells])
        res: dict[str, float] = {}
        for p in proxies:
            # the published file has a few blank scores (e.g. one synflow): skip those cells
            vals = np.array([float(r[p]) if r[p] not in ("", None) else np.nan for r in cells])
            ok = np.isfinite(vals)
            res[p] = kendall(vals[ok], truth[ok])
        for r in results:
            if r.target != ds or r.scenario != "C" or r.predictions is None:
                continue
            pos = {int(t): k for k, t in enumerate(r.test_index)}
            sel = [pos.get(idx[c["arch_str"]]) for c in cells]
            ok = [i for i, s in enumerate(sel) if s is not None]
            res[f"{r.model} (C)"] = kendall(r.predictions[[sel[i] for i in ok]], truth[ok])
        res["n_cells"] = float(len(cells))
        out[ds] = res
    return out
