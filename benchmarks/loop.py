"""``python -m benchmarks.loop --suite nb201``: the lifelong loop against search baselines.

For each NAS-Bench-201 dataset left out of the LDE (issue 35):

1. a fresh LDE (a temporary DuckDB file) holds ``train_cells`` random cells of each
   *other* dataset from ``../shared/data/nb201.csv`` (their test accuracies), every
   dataset's DCN being its reference cell's accuracy (as :mod:`benchmarks.search`); the
   predictor is trained for the target's DCN through the pipeline, once;
2. the loop (:func:`tapas.app.loop.lifelong_search`) trains ``train`` networks a round
   for ``rounds`` rounds, where a "training" is a lookup of the target's stored test
   accuracy (:class:`tapas.app.loop.LookupTrainer`, written to the LDE like a real one);
3. baselines spend the same number of trainings, in the same run:

   * ``random``: distinct random cells;
   * ``rea``: regularized evolution on the true accuracies (no predictor; population
     10, tournament 3, as NAS-Bench-201's REA at small budgets);
   * ``bananas_target_only``: BANANAS without the LDE: an ensemble of five small MLPs
     on the cells' one-hot encoding, trained only on the target's labels so far, picks
     each round's ``train`` cells by independent Thompson sampling over the whole
     space (the first round random);
   * ``copy_nearest``: train the cells in the order of the nearest dataset's ranking
     (nearest DCN among the LDE's datasets; its full NAS-Bench-201 table, no seed);
   * ``copy_nearest_lde``: the same, ranking only the cells the LDE holds on it (the
     knowledge the loop has).

Figures: regret (optimum minus the best true test accuracy found, accuracy points in
percent) and best-found after N = 5, 10, 20, 50 trained networks, mean and spread
(standard deviation) over seeds. Each seed's loop is tagged with its own trainer name, so
no loop reuses another seed's trainings.
"""

from __future__ import annotations

import csv
import os
import random
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import typer

from benchmarks import measure, run_cli
from benchmarks.search import _Env
from predictor.table import SHARED_DATA
from tapas.app.cli.common import console, fail

Progress = Callable[[str, int, int], None]

#: LDE dataset name -> nb201.csv test column.
DATASETS: dict[str, str] = {"cifar10": "cifar10_test", "cifar100": "cifar100_test",
                            "ImageNet16-120": "imagenet16_test"}
AT: tuple[int, ...] = (5, 10, 20, 50)
BASELINES = ("random", "rea", "bananas_target_only", "copy_nearest", "copy_nearest_lde")
DEFAULT_TRAIN_CELLS = 1_000


class BenchError(RuntimeError):
    """The benchmark cannot run (data missing, bad arguments); the message says why."""


def _read(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise BenchError(f"{path} not found (the NAS-Bench-201 table of ../shared/data)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = ({"arch_str"} | set(DATASETS.values())) - set(rows[0] if rows else {})
    if missing:
        raise BenchError(f"{path}: missing columns {sorted(missing)}")
    return rows


def _best_at(order: Sequence[float], at: Sequence[int]) -> dict[str, float]:
    """Best value among the first n of ``order``, for each n of ``at``."""
    return {str(n): float(max(order[:n])) for n in at if len(order) >= 1}


# ---------------------------------------------------------------------------- baselines
def _random(cells: Sequence[str], truth: dict[str, float], n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [truth[c] for c in rng.sample(list(cells), n)]


class _Truth:
    """A scorer that answers the true accuracy (REA on true accuracies, no predictor)."""

    def __init__(self, truth: dict[str, float]) -> None:
        self.truth = truth
        self.asked: list[str] = []
        """Every cell asked for, in order (each once: the search caches its answers)."""

    def predict(self, archs: Sequence[Any], **kw: Any) -> list[Any]:
        from tapas.core.types import Prediction

        self.asked += archs
        return [Prediction(arch_id=a, mean=self.truth[a] / 100, spread=0.0,
                           lower=self.truth[a] / 100, upper=self.truth[a] / 100,
                           predictor="truth", dcn=0.0, coverage=1.0) for a in archs]

    def dataset_info(self, ident: str) -> Any:
        raise KeyError(ident)


def _rea(truth: dict[str, float], n: int, seed: int) -> list[float]:
    from tapas.app.search import regularized_evolution
    from tapas.core.types import Target

    oracle = _Truth(truth)
    regularized_evolution(oracle, "nb201", budget=n, seed=seed,
                          target=Target(0.5, None, 10, (3, 32, 32)), population=10,
                          sample_size=3, batch_size=1)
    if len(oracle.asked) != n or len(set(oracle.asked)) != n:
        raise BenchError(f"REA trained {len(set(oracle.asked))} distinct cells, not {n}")
    return [truth[c] for c in oracle.asked]


def _onehot(cells: Sequence[str]) -> np.ndarray:
    from tapas.core.arch import NB201_OPS, cell_ops

    idx = {op: i for i, op in enumerate(NB201_OPS)}
    x = np.zeros((len(cells), 6 * len(NB201_OPS)), np.float32)
    for r, c in enumerate(cells):
        for e, op in enumerate(cell_ops(c)):
            x[r, e * len(NB201_OPS) + idx[op]] = 1.0
    return x


def _bananas(cells: Sequence[str], x: np.ndarray, truth: dict[str, float], train: int,
             rounds: int, seed: int, members: int = 5) -> list[float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    warnings.simplefilter("ignore", ConvergenceWarning)
    rng = np.random.default_rng(seed)
    order = list(rng.choice(len(cells), train, replace=False))
    for _ in range(rounds - 1):
        y = np.array([truth[cells[i]] for i in order])
        mu, sd = y.mean(), y.std() + 1e-9
        preds = np.stack([
            MLPRegressor(hidden_layer_sizes=(32, 32), max_iter=800, learning_rate_init=0.01,
                         random_state=int(rng.integers(1 << 30))).fit(x[order], (y - mu) / sd)
            .predict(x) for _ in range(members)])
        draw = rng.normal(preds.mean(0), preds.std(0) + 1e-9)
        draw[order] = -np.inf
        order += list(np.argsort(-draw)[:train])
    return [truth[cells[i]] for i in order]


def _copy_order(cells: Sequence[str], near: dict[str, float], n: int) -> list[str]:
    """The ``n`` best of ``cells`` on the nearest dataset, best first."""
    return sorted(cells, key=lambda c: (-near[c], c))[:n]


# ---------------------------------------------------------------------------- one target
def _one_target(name: str, rows: list[dict[str, str]], seeds: int, train: int, rounds: int,
                search_budget: int, train_cells: int, tmp: Path,
                progress: Progress | None) -> dict[str, Any]:
    from lde import Store
    from lde.ingest import ingest_nb201
    from tapas.app.loop import LookupTrainer, lifelong_search
    from tapas.app.scorer import LocalScorer
    from tapas.core.arch import REFERENCE_CELL
    from tapas.core.spaces import get_space

    col = DATASETS[name]
    truth = {r["arch_str"]: float(r[col]) for r in rows}
    cells = sorted(truth)
    optimum = max(truth.values())
    ref = next((r for r in rows if r["arch_str"] == REFERENCE_CELL), None)
    if ref is None:
        raise BenchError(f"the reference cell {REFERENCE_CELL} is not in nb201.csv")
    dcn = {n: float(ref[c]) / 100.0 for n, c in DATASETS.items()}
    sources = [n for n in DATASETS if n != name]
    nearest = min(sources, key=lambda s: abs(dcn[s] - dcn[name]))

    rng = np.random.default_rng(0)
    sub = [rows[i] for i in sorted(rng.permutation(len(rows))[:train_cells])]
    csv_path = tmp / f"nb201-without-{name}.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch_str"] + [DATASETS[s] for s in sources])
        for r in sub:
            w.writerow([r["arch_str"]] + [r[DATASETS[s]] for s in sources])
    if progress:
        progress(f"{name}: building the LDE, training the predictor", 0, 1)
    store = Store(tmp / f"lde-{name}.duckdb")
    try:
        rep = ingest_nb201(store, csv_path, dcn={s: dcn[s] for s in sources})
        if rep.rejected:
            raise BenchError(f"ingest rejected rows: {rep.rejected[:3]}")
        store.upsert_dataset(name, None, None, 120 if name == "ImageNet16-120" else
                             (100 if name == "cifar100" else 10),
                             [3, 16, 16] if name == "ImageNet16-120" else [3, 32, 32],
                             dcn=dcn[name], source="benchmarks.loop")
        scorer = LocalScorer(store, model_dir=tmp / "models")
        t0 = time.perf_counter()
        info = scorer.train_predictor(dataset=name)
        train_s = time.perf_counter() - t0
        table = {c: a / 100 for c, a in truth.items()}
        space = get_space("nb201")
        n = train * rounds
        loop_runs: list[list[float]] = []
        loop_secs: list[float] = []
        for s in range(seeds):
            if progress:
                progress(f"{name}: loop seed {s}", s, seeds)
            trainer = LookupTrainer(table, name, space, name=f"nb201-bench-seed{s}",
                                    epochs=200)
            t0 = time.perf_counter()
            res = lifelong_search(scorer, trainer, space, train=train, rounds=rounds, seed=s,
                                  predictor=info.id, search_budget=search_budget)
            loop_secs.append(time.perf_counter() - t0)
            if res.new != n:
                raise BenchError(f"loop seed {s} trained {res.new} networks, not {n}")
            loop_runs.append([100 * t.accuracy for t in res.trained])
    finally:
        store.close()

    x = _onehot(cells)
    runs: dict[str, list[list[float]]] = {b: [] for b in BASELINES}
    for s in range(seeds):
        if progress:
            progress(f"{name}: baselines seed {s}", s, seeds)
        runs["random"].append(_random(cells, truth, n, s))
        runs["rea"].append(_rea(truth, n, s))
        runs["bananas_target_only"].append(_bananas(cells, x, truth, train, rounds, s))
    near = {r["arch_str"]: float(r[DATASETS[nearest]]) for r in rows}
    runs["copy_nearest"] = [[truth[c] for c in _copy_order(cells, near, n)]]
    runs["copy_nearest_lde"] = [[truth[c] for c in _copy_order(
        [r["arch_str"] for r in sub], near, n)]]

    def summary(rs: list[list[float]]) -> dict[str, Any]:
        best = [_best_at(r, AT) for r in rs]
        out: dict[str, Any] = {"regret_at": {}, "regret_std": {}, "best_at": {}}
        for k in best[0]:
            reg = [optimum - b[k] for b in best]
            out["regret_at"][k] = round(float(np.mean(reg)), 4)
            out["regret_std"][k] = round(float(np.std(reg)), 4)
            out["best_at"][k] = round(float(np.mean([b[k] for b in best])), 4)
        return out

    return {"optimum": optimum, "dcn": round(dcn[name], 4), "nearest": nearest,
            **summary(loop_runs),
            "baselines": {b: summary(runs[b]) for b in BASELINES},
            "predictor": info.id, "n_train": info.n_train,
            "predictor_train_seconds": round(train_s, 1),
            "loop_seconds_median": round(statistics.median(loop_secs), 2)}


def run_benchmark(seeds: int = 20, train: int = 5, rounds: int = 10, search_budget: int = 300,
                  targets: Sequence[str] = tuple(DATASETS), data: Path | None = None,
                  train_cells: int = DEFAULT_TRAIN_CELLS,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the ``--json`` object (stable keys, see the module doc)."""
    import torch

    bad = [t for t in targets if t not in DATASETS]
    if bad or not targets:
        raise BenchError(f"unknown target(s) {bad}; expected some of {', '.join(DATASETS)}")
    if train * rounds < max(AT):
        raise BenchError(f"train x rounds must reach {max(AT)} networks, got "
                         f"{train} x {rounds}")
    rows = _read(Path(data) if data else SHARED_DATA / "nb201.csv")
    torch.set_num_threads(1)
    t_all = time.perf_counter()
    load0 = os.getloadavg()
    per: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tapas-bench-loop-") as tmp, \
            _Env(Path(tmp) / "home"):
        for name in targets:
            per[name] = _one_target(name, rows, seeds, train, rounds, search_budget,
                                    train_cells, Path(tmp), progress)
    mean_regret = {str(n): round(float(np.mean([p["regret_at"][str(n)] for p in per.values()])),
                                 4) for n in AT}
    beats = {str(n): all(p["regret_at"][str(n)] < p["baselines"][b]["regret_at"][str(n)]
                         for p in per.values() for b in BASELINES) for n in (10, 20)}
    return {"suite": "nb201", "seeds": seeds, "train": train, "rounds": rounds,
            "search_budget": search_budget, "train_cells": train_cells, "at": list(AT),
            "per_dataset": per, "mean_regret_at": mean_regret,
            "target_regret10_le_0_3": all(p["regret_at"]["10"] <= 0.3 for p in per.values()),
            "target_below_every_baseline": beats,
            "loadavg_start": [round(v, 2) for v in load0],
            "loadavg_end": [round(v, 2) for v in os.getloadavg()],
            "total_seconds": round(time.perf_counter() - t_all, 1),
            "note": ("regret: optimum minus the best true test accuracy (%) among the first N "
                     "trained networks, mean (std) over seeds; a training is a lookup of the "
                     "left-out dataset's stored test accuracy; copy_nearest is deterministic "
                     "(one run); copy_nearest ranks the nearest dataset's full table, "
                     "copy_nearest_lde only the cells the LDE holds")}


def main(
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    suite: str = typer.Option("nb201", help="Only nb201 (NAS-Bench-201, each dataset left "
                              "out)."),
    seeds: int = typer.Option(20, min=1, max=1000, help="Loops (and baseline runs) per "
                              "dataset."),
    train: int = typer.Option(5, min=1, help="Networks trained per round."),
    rounds: int = typer.Option(10, min=1, help="Rounds (train x rounds >= 50)."),
    search_budget: int = typer.Option(300, min=1, help="Predictor queries per round."),
    targets: str = typer.Option(",".join(DATASETS), help="Left-out datasets "
                                "(comma-separated)."),
    data: Path = typer.Option(None, help="nb201.csv (default ../shared/data/nb201.csv)."),
    train_cells: int = typer.Option(DEFAULT_TRAIN_CELLS, min=100, help="Cells of each "
                                    "other dataset in the LDE."),
) -> None:
    """Regret of the lifelong loop after N trained networks, with baselines."""
    from rich.table import Table

    if suite != "nb201":
        fail(f"--suite must be nb201, got {suite!r}")
    res = measure(json_out, lambda progress: run_benchmark(
        seeds=seeds, train=train, rounds=rounds, search_budget=search_budget,
        targets=[t.strip() for t in targets.split(",") if t.strip()], data=data,
        train_cells=train_cells, progress=progress), (BenchError,))
    if res is None:
        return
    table = Table(title=f"benchmarks.loop: NAS-Bench-201, dataset left out, {seeds} seeds: "
                  "regret (points) after N trained networks, mean (std)", title_justify="left")
    for c in ("dataset", "method") + tuple(f"N={n}" for n in AT):
        table.add_column(c, justify="left" if c in ("dataset", "method") else "right")
    for name, p in res["per_dataset"].items():
        for m, r in [("loop", p)] + list(p["baselines"].items()):
            table.add_row(name, m, *(f"{r['regret_at'][str(n)]:.2f} ({r['regret_std'][str(n)]:.2f})"
                                     for n in AT))
    console.print(table)
    console.print(res["note"], highlight=False)


if __name__ == "__main__":
    run_cli(main)
