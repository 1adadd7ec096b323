"""``python -m benchmarks.search``: architecture search with the predictor on an unseen dataset.

For each target (ImageNet16-120 and CIFAR-100 by default) the benchmark

1. builds a fresh LDE (a temporary DuckDB file) from ``../shared/data/nb201.csv``
   holding only the *other* NAS-Bench-201 datasets' test accuracies (``train_cells``
   random cells of each; the target's experiments never enter it);
2. assigns every dataset its DCN the way the predictor's evaluation harness does
   (:mod:`benchmarks.evaluate`: the test accuracy of one fixed reference cell, i.e.
   one trained network on the target), and trains the predictor for the target's
   DCN through the pipeline (:meth:`tapas.app.pipeline.Pipeline.train`: DCN filter,
   training, registry), exactly as the service would;
3. runs regularized evolution, random search and BANANAS-style Thompson sampling
   on the ensemble with ``budget`` predictor queries for each of ``seeds`` seeds
   through the in-process scorer, on the full NAS-Bench-201 network for the target
   (ImageNet16-120: 120 classes, 16x16);
4. looks up the TRUE test accuracy of each search's chosen cell (the one with the
   highest predicted accuracy) in ``nb201.csv``, and compares with "copy the best
   cell of another dataset" (no search at all).

Seconds per search are wall times of whole searches (scoring, cell expansion and
encoding included; the predictor is trained once per target, reported apart).
"""

from __future__ import annotations

import csv
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import typer

from benchmarks import measure, run_cli
from predictor.table import SHARED_DATA
from tapas.app.cli.common import console

Progress = Callable[[str, int, int], None]

#: bench key prefix -> (column in nb201.csv, LDE dataset name)
TARGETS: dict[str, tuple[str, str]] = {
    "imagenet16": ("imagenet16_test", "ImageNet16-120"),
    "cifar100": ("cifar100_test", "cifar100"),
    "cifar10": ("cifar10_test", "cifar10"),
}
METHODS = ("rea", "random", "thompson")


DEFAULT_TRAIN_CELLS = 5_000
"""Cells per source dataset: two source datasets give 10,000 training experiments, the
evaluation harness's ``max_train`` for its unseen-dataset scenario."""


class BenchError(RuntimeError):
    """The benchmark cannot run (data missing, bad arguments); the message says why."""


def _default_data() -> Path:
    return SHARED_DATA / "nb201.csv"


def _read(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise BenchError(f"{path} not found (the NAS-Bench-201 table of ../shared/data)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise BenchError(f"{path} holds no rows")
    missing = ({"arch_str"} | {c for c, _ in TARGETS.values()}) - set(rows[0])
    if missing:
        raise BenchError(f"{path}: missing columns {sorted(missing)}")
    return rows


class _Env:
    """Point TAPAS_HOME at a temporary folder (saved predictors land there), then restore."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        from tapas.core.config import get_settings

        for k in ("TAPAS_HOME", "TAPAS_DB_PATH", "TAPAS_MODEL_DIR"):
            self.saved[k] = os.environ.get(k)
            os.environ.pop(k, None)
        os.environ["TAPAS_HOME"] = str(self.home)
        get_settings.cache_clear()

    def __exit__(self, *exc: object) -> None:
        from tapas.core.config import get_settings

        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


def _stats(values: Sequence[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "worst": float(np.min(values)),
            "best": float(np.max(values)), "median": float(np.median(values))}


def _one_target(key: str, rows: list[dict[str, str]], seeds: int, budget: int,
                train_cells: int, tmp: Path, progress: Progress | None) -> dict[str, Any]:
    from lde import Store
    from lde.ingest import ingest_nb201
    from tapas.app.scorer import LocalScorer
    from tapas.app.search import random_search, regularized_evolution, thompson_search
    from tapas.core.arch import NB201_BY_KEY, REFERENCE_CELL

    col, _name = TARGETS[key]
    spec = NB201_BY_KEY[key]
    truth = {r["arch_str"]: float(r[col]) for r in rows}
    ref = next((r for r in rows if r["arch_str"] == REFERENCE_CELL), None)
    if ref is None:
        raise BenchError(f"the reference cell {REFERENCE_CELL} is not in nb201.csv")
    # DCN of every dataset: the reference network's test accuracy on it (benchmarks.evaluate)
    dcn = {k: float(ref[c]) / 100.0 for k, (c, _) in TARGETS.items()}
    sources = [k for k in TARGETS if k != key]

    # 1. the LDE without the target: train_cells random cells of each source dataset
    rng = np.random.default_rng(0)
    sub = [rows[i] for i in sorted(rng.permutation(len(rows))[:train_cells])]
    csv_path = tmp / f"nb201-without-{key}.csv"
    cols = ["arch_str"] + [TARGETS[s][0] for s in sources]
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in sub:
            w.writerow([r[c] for c in cols])
    if progress:
        progress(f"{key}: building the LDE", 0, 1)
    store = Store(tmp / f"lde-{key}.duckdb")
    try:
        rep = ingest_nb201(store, csv_path, dcn={TARGETS[s][1]: dcn[s] for s in sources})
        if rep.rejected:
            raise BenchError(f"ingest rejected rows: {rep.rejected[:3]}")
        # 2. the predictor for the target's DCN, through the pipeline
        if progress:
            progress(f"{key}: training the predictor", 0, 1)
        scorer = LocalScorer(store)
        t0 = time.perf_counter()
        info = scorer.train_predictor(dcn=dcn[key])
        train_s = time.perf_counter() - t0
        kw = {"dcn": dcn[key], "num_classes": spec.num_classes,
              "input_shape": (3, spec.input_size, spec.input_size), "budget": budget}
        out: dict[str, Any] = {"dcn": dcn[key], "train_seconds": train_s,
                               "n_train": info.n_train, "train_datasets": list(info.datasets),
                               "predictor": info.id, "optimum": max(truth.values())}
        # 3. the searches
        fns = (regularized_evolution, random_search, thompson_search)
        for name, fn in zip(METHODS, fns, strict=True):
            accs, secs, preds, queries = [], [], [], []
            for s in range(seeds):
                if progress:
                    progress(f"{key}: {name} seed {s}", s, seeds)
                t0 = time.perf_counter()
                res = fn(scorer, "nb201", seed=s, **kw)
                secs.append(time.perf_counter() - t0)
                if res.queries > budget:
                    raise BenchError(f"{name} used {res.queries} queries, over {budget}")
                queries.append(res.queries)
                accs.append(truth[res.chosen.genotype])
                preds.append(100 * res.chosen.mean)
            out[name] = {**_stats(accs), "accuracies": accs, "seconds": secs,
                         "predicted": preds, "queries": queries}
        # 4. no search: copy the best cell of each source dataset
        for s in sources:
            best = max(rows, key=lambda r: float(r[TARGETS[s][0]]))["arch_str"]
            out[f"copy_{s}"] = {"cell": best, "accuracy": truth[best]}
        return out
    finally:
        store.close()


def run_benchmark(seeds: int = 10, budget: int = 1000,
                  targets: Sequence[str] = ("imagenet16", "cifar100"),
                  data: Path | None = None, train_cells: int | None = None,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the ``--json`` object (stable keys, see the module doc)."""
    import torch

    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        raise BenchError(f"unknown target(s) {bad}; expected some of {', '.join(TARGETS)}")
    train_cells = train_cells or DEFAULT_TRAIN_CELLS
    rows = _read(Path(data) if data else _default_data())
    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tapas-bench-search-") as tmp, \
            _Env(Path(tmp) / "home"):
        for key in targets:
            results[key] = _one_target(key, rows, seeds, budget, train_cells, Path(tmp),
                                       progress)
    out: dict[str, Any] = {"budget": budget, "seeds": seeds, "train_cells": train_cells}
    secs: dict[str, list[float]] = {m: [] for m in METHODS}
    table_rows = []
    for key, r in results.items():
        for m in METHODS:
            secs[m] += r[m]["seconds"]
            out[f"{key}_{m}_mean"] = round(r[m]["mean"], 4)
            out[f"{key}_{m}_worst"] = round(r[m]["worst"], 4)
            out[f"{key}_{m}_best"] = round(r[m]["best"], 4)
            out[f"{key}_{m}_accuracies"] = [round(a, 4) for a in r[m]["accuracies"]]
            out[f"{key}_{m}_predicted"] = [round(a, 4) for a in r[m]["predicted"]]
            out[f"{key}_{m}_queries_mean"] = float(np.mean(r[m]["queries"]))
            table_rows.append({"target": key, "method": f"{m} ({budget} queries)",
                               "mean": r[m]["mean"], "worst": r[m]["worst"],
                               "best": r[m]["best"], "optimum": r["optimum"],
                               "seconds": statistics.median(r[m]["seconds"])})
        for k, v in r.items():
            if k.startswith("copy_"):
                out[f"{key}_{k}"] = round(v["accuracy"], 4)
                table_rows.append({"target": key, "method": f"copy best {k[5:]} cell",
                                   "mean": v["accuracy"], "worst": v["accuracy"],
                                   "best": v["accuracy"], "optimum": r["optimum"],
                                   "seconds": None})
        out[f"{key}_optimum"] = round(r["optimum"], 4)
        out[f"{key}_dcn"] = round(r["dcn"], 4)
        out[f"{key}_predictor_train_seconds"] = round(r["train_seconds"], 2)
        out[f"{key}_n_train"] = r["n_train"]
        out[f"{key}_train_datasets"] = r["train_datasets"]
    out["seconds_per_search"] = round(statistics.median(secs["rea"]), 3)
    out["seconds_per_random_search"] = round(statistics.median(secs["random"]), 3)
    out["seconds_per_thompson_search"] = round(statistics.median(secs["thompson"]), 3)
    out["total_seconds"] = round(time.perf_counter() - t_all, 1)
    out["rows"] = table_rows
    out["note"] = (f"true test accuracy (%) of the cell each search picked (highest predicted "
                   f"accuracy); target dataset left out of the LDE; {train_cells} cells of each "
                   f"other dataset; seconds: median wall time of one search (predictor "
                   f"trained once per target: " + ", ".join(
                       f"{k} {results[k]['train_seconds']:.0f} s" for k in results) + ")")
    return out


def main(
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    seeds: int = typer.Option(10, min=1, max=1000, help="Searches per strategy and target."),
    budget: int = typer.Option(1000, min=10, help="Predictor queries per search."),
    targets: str = typer.Option("imagenet16,cifar100", help="Left-out datasets to search "
                                "on (comma-separated: imagenet16, cifar100, cifar10)."),
    data: Path = typer.Option(None, help="nb201.csv (default ../shared/data/nb201.csv)."),
    train_cells: int = typer.Option(None, min=100, help="Cells per source dataset in the "
                                    "LDE (default: the evaluation harness's setting)."),
) -> None:
    """Search quality on NAS-Bench-201 with the target dataset unseen by the predictor."""
    from rich.table import Table

    res = measure(json_out, lambda progress: run_benchmark(
        seeds=seeds, budget=budget, targets=[t.strip() for t in targets.split(",") if t.strip()],
        data=data, train_cells=train_cells, progress=progress), (BenchError,))
    if res is None:
        return
    table = Table(title=f"benchmarks.search: NAS-Bench-201, target unseen, {budget} "
                  f"queries, {seeds} seeds (true test accuracy of the chosen cell, %)",
                  title_justify="left")
    for col in ("target", "method", "mean", "worst", "best", "optimum", "s / search"):
        table.add_column(col, justify="left" if col in ("target", "method") else "right")
    for row in res["rows"]:
        table.add_row(row["target"], row["method"], f"{row['mean']:.2f}",
                      f"{row['worst']:.2f}", f"{row['best']:.2f}", f"{row['optimum']:.2f}",
                      "-" if row["seconds"] is None else f"{row['seconds']:.2f}")
    console.print(table)
    console.print(res["note"], highlight=False)


if __name__ == "__main__":
    run_cli(main)
