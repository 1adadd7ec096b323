"""``python -m benchmarks.predictor``: TAP quality (scenarios A/B/C/N), baselines, speed.

Quality: Kendall tau, Spearman, MAE, top-10 precision and conformal coverage per
scenario and left-out dataset (see :mod:`benchmarks.evaluate`), TAP beside every
baseline, and the zero-cost proxies: on NAS-Bench-201 the published ones on their 725
cells, on the starter suite the project's own on each left-out dataset's images
(:mod:`benchmarks.zero_cost`).
Speed: in-process scoring throughput (median of repeated runs on 5,000 networks,
with the per-architecture encoding cached and, separately, cold) and the wall time
of fitting TAP on 10,000 experiments (encoding included), both at a stated torch
thread count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from benchmarks import run_cli
from predictor.table import SHARED_DATA, load_table_file
from tapas.app.bench.devices import clear_encodings, measure_throughput
from tapas.app.cli.common import console, err_console, fail, print_json
from tapas.app.cli.predictor import first_prediction_report, print_first_prediction

SCENARIO_KEYS = {"A": "scenario_a_kendall", "B": "scenario_b_kendall", "C": "scenario_c_kendall",
                 "N": "scenario_n_kendall"}


def default_models(seed: int = 0, tap_kwargs: dict[str, Any] | None = None
                   ) -> dict[str, Callable[[], Any]]:
    from benchmarks.baselines import BASELINES
    from predictor import TAPRegressor

    kw = dict(tap_kwargs or {})
    models: dict[str, Callable[[], Any]] = {"tap": lambda: TAPRegressor(seed=seed, **kw)}
    for name, cls in BASELINES.items():
        models[name] = (lambda c=cls: c(seed=seed)) if name == "gbr" else cls
    return models


def load_suite(suite: str, data_dir: Path | None, limit: int | None,
               progress: Callable[[int], None] | None = None) -> Any:
    from predictor.table import load_nb201

    if suite == "nb201":
        d = Path(data_dir) if data_dir else SHARED_DATA
        if not (d / "nb201.csv").exists():
            raise FileNotFoundError(f"NAS-Bench-201 data not found in {d} (expected nb201.csv)")
        return load_nb201(d, limit=limit, progress=progress)
    if suite == "starter":
        return load_starter()
    raise ValueError(f"unknown suite {suite!r}; expected nb201 or starter")


def load_starter() -> Any:
    """Every experiment of the starter LDE, through a throwaway DuckDB store; the table's
    ``noise_ceiling`` holds the seed-to-seed Kendall tau per dataset, ``dataset_names``
    each dataset id's name."""
    import tempfile

    from lde import starter
    from lde.store import Store
    from predictor.table import Table

    if not starter.available():
        raise FileNotFoundError(f"the starter LDE is not built yet (no manifest in "
                                f"{starter.STARTER_DIR}); run the nb201 suite or pass --table")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "starter.duckdb")
        try:
            starter.seed_starter(store)
            es = store.filter_by_dcn(0.5, tau=1.0).mean_over_seeds()
            names = {d.id: d.name for d in store.datasets()}
            archs = store.architectures(es.arch_ids())
            runs = store.sql("""SELECT dataset_id, arch_id, seed, accuracy FROM experiments
                                ORDER BY dataset_id, arch_id, seed""").to_pylist()
        finally:
            store.close()
    table = Table([archs[a] for a in es.arch_id.tolist()], es.dataset_id, es.dcn, es.accuracy)
    table.noise_ceiling = noise_ceiling(runs)  # type: ignore[attr-defined]
    table.dataset_names = names  # type: ignore[attr-defined]
    return table


#: Fewer networks than this with two seeds on a dataset: no ceiling reported for it.
MIN_SEED_PAIRS = 20


def noise_ceiling(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Per dataset, Kendall tau between two independent labels of the same networks,
    each the mean over half of their seeds (rows ``{"dataset_id", "arch_id", "seed",
    "accuracy"}``; :func:`lde.starter.label_kendall`): how much of the ranking the bench
    scores against survives retraining."""
    from lde.starter import label_kendall

    rows = [(str(r["dataset_id"]), str(r["arch_id"]), r["seed"], r["accuracy"]) for r in runs]
    return {d: tau for d, (tau, _) in sorted(label_kendall(rows, MIN_SEED_PAIRS).items())}


def run_benchmark(suite: str = "nb201", data_dir: Path | None = None, threads: int = 1,
                  limit: int | None = None, scenarios: str = "ABC", n_train_a: int = 1000,
                  max_train: int = 10_000, min_datasets: int | None = None, seed: int = 0,
                  tap_kwargs: dict[str, Any] | None = None, table: Any = None,
                  log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the suite and return one JSON-ready dict (stable keys; see the CLI help).

    Scenario C selects training datasets with the LDE's own rule and constants
    (:mod:`lde.selection`); ``min_datasets`` overrides its minimum number of datasets.
    """
    from functools import partial

    import torch

    from benchmarks.evaluate import (
        few_shot,
        scenario_a,
        scenario_b,
        scenario_c,
        scenario_n,
        zero_cost_kendall,
    )
    from lde.selection import MIN_DATASETS, MIN_EXPERIMENTS, TAU, select_adaptive

    torch.set_num_threads(threads)
    say = log or (lambda s: None)
    t_all = time.perf_counter()
    if table is None:
        say(f"loading suite {suite}")
        table = load_suite(suite, data_dir, limit)
    dd = table.dataset_dcn()
    models = default_models(seed, tap_kwargs)
    # copying another dataset's accuracy is undefined when only the target is seen
    models_a = {k: v for k, v in models.items() if k not in ("nearest", "mean_rank_other")}
    select = partial(select_adaptive, min_experiments=MIN_EXPERIMENTS,
                     min_datasets=MIN_DATASETS if min_datasets is None else min_datasets,
                     tau=TAU)
    results = []
    for ds in dd:
        if "A" in scenarios:
            say(f"scenario A on {ds}")
            results += scenario_a(table, ds, models_a, n_train=n_train_a, seed=seed)
        if len(dd) > 1 and "B" in scenarios:
            say(f"scenario B, {ds} left out")
            results += scenario_b(table, ds, models, max_train=max_train, seed=seed)
        if len(dd) > 1 and "C" in scenarios:
            say(f"scenario C, {ds} left out")
            results += scenario_c(table, ds, models, select, max_train=max_train, seed=seed)
        if len(dd) > 1 and "N" in scenarios:
            say(f"scenario N, {ds} and half its families left out")
            results += scenario_n(table, ds, models, select, max_train=max_train, seed=seed)

    def maps(model: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for sc, key in SCENARIO_KEYS.items():
            out[key] = {r.target: r.metrics["kendall"] for r in results
                        if r.model == model and r.scenario == sc}
        c = [r for r in results if r.model == model and r.scenario == "C"]
        out["scenario_c_kendall_mean"] = (float(np.mean([r.metrics["kendall"] for r in c]))
                                          if c else None)
        out["scenario_c_mae_mean"] = (float(np.mean([r.metrics["mae"] for r in c]))
                                      if c else None)
        ceil = [(r.metrics["kendall"], ceiling[r.target]) for r in c if r.target in ceiling]
        out["scenario_c_fraction_of_ceiling"] = (
            float(np.mean([k for k, _ in ceil]) / np.mean([v for _, v in ceil]))
            if ceil else None)
        return out

    ceiling: dict[str, float] = dict(getattr(table, "noise_ceiling", None) or {})

    report: dict[str, Any] = {"suite": suite, "threads": threads, "dcn": dd,
                              "n_rows": len(table.archs)}
    report.update(maps("tap"))
    tap_c = [r for r in results if r.model == "tap" and r.scenario == "C"]
    parts = [k[8:] for k in (tap_c[0].metrics if tap_c else {}) if k.startswith("kendall_")]
    # TAP's parts alone (``predictor.stacking``) beside the model, scenario C means
    report["tap_parts_scenario_c_kendall_mean"] = {
        p: float(np.mean([r.metrics[f"kendall_{p}"] for r in tap_c])) for p in parts}
    cov = {r.target: r.metrics.get("coverage") for r in results
           if r.model == "tap" and r.scenario == "C"}
    report["coverage_90_by_dataset"] = cov
    report["coverage_90"] = float(np.mean(list(cov.values()))) if cov else None
    widths = [float(np.median(r.interval[1] - r.interval[0])) for r in results
              if r.model == "tap" and r.scenario == "C" and r.interval is not None]
    report["interval_width_median"] = float(np.median(widths)) if widths else None
    report["noise_ceiling_kendall"] = ceiling
    report["noise_ceiling_mean"] = float(np.mean(list(ceiling.values()))) if ceiling else None
    report["coverage_90_scenario_a"] = {r.target: r.metrics.get("coverage") for r in results
                                        if r.model == "tap" and r.scenario == "A"}
    report["baselines"] = {m: maps(m) for m in models if m != "tap"}
    names = getattr(table, "dataset_names", None)
    if suite == "starter" and "C" in scenarios and len(dd) > 1 and names:
        from benchmarks.zero_cost import zero_cost_baselines

        say("zero-cost proxies on each left-out dataset")
        zc = zero_cost_baselines(table, list(dd), ceiling, seed=seed, log=say)
        report["baselines"].update(
            {p: {**{k: {} for k in SCENARIO_KEYS.values()}, **v} for p, v in zc.items()})
    # predicted vs true for the plot: TAP on each left-out dataset (C), else seen (A)
    shown = [r for r in results if r.model == "tap" and r.scenario == "C"] or [
        r for r in results if r.model == "tap" and r.scenario == "A"]
    report["scatter"] = [
        {"scenario": r.scenario, "target": r.target, "kendall": r.metrics["kendall"],
         "true": table.accuracies[r.test_index].tolist(), "pred": r.predictions.tolist(),
         "lower": r.interval[0].tolist() if r.interval else None,
         "upper": r.interval[1].tolist() if r.interval else None}
        for r in shown if r.predictions is not None and r.test_index is not None]
    report["details"] = [
        {"scenario": r.scenario, "target": r.target, "model": r.model, "n_train": r.n_train,
         "n_test": r.n_test, "fit_seconds": round(r.fit_seconds, 3),
         "train_datasets": r.train_datasets, **{k: round(v, 4) for k, v in r.metrics.items()}}
        for r in results]
    if "C" in scenarios:
        say("few-shot adaptation")
        shots = few_shot(table, results)
        report["few_shot_kendall"] = shots.pop("tap", {})
        report["few_shot_baselines"] = shots
    if suite == "nb201" and "C" in scenarios:
        d = Path(data_dir) if data_dir else SHARED_DATA
        if (d / "nb201_zero_cost.csv").exists():
            report["zero_cost_kendall"] = zero_cost_kendall(d, table, results)

    # speed: scoring throughput and training on 10,000 experiments
    say("measuring throughput and training time")
    from predictor import TAPRegressor

    first = next(iter(dd))
    rows = np.flatnonzero(table.datasets == first)[:5000]
    archs = [table.archs[i] for i in rows]
    n10 = min(10_000, len(table.archs))
    idx = np.sort(np.random.default_rng(seed).choice(len(table.archs), n10, replace=False))
    a10, d10, y10 = table.take(idx)
    clear_encodings(a10)
    t0 = time.perf_counter()
    tap = TAPRegressor(seed=seed, **(tap_kwargs or {})).fit(a10, d10, y10)
    train_s = time.perf_counter() - t0
    warm, cold = measure_throughput(tap, archs, dd[first])
    report["throughput_archs_per_s"] = warm
    report["throughput_cold_archs_per_s"] = cold
    report["throughput_batch"] = len(archs)
    report["train_seconds_10k"] = train_s
    report["train_rows"] = n10
    report["total_seconds"] = time.perf_counter() - t_all
    return report


def plot(report: dict[str, Any], path: Path, max_points: int = 600) -> None:
    """Predicted vs true accuracy of TAP per left-out dataset (intervals as error bars,
    identity line, Kendall tau in each title), then Kendall tau of TAP beside the
    baselines per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = report.get("scatter", [])
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(4.2 * (len(panels) + 1), 4.2),
                             squeeze=False)
    rng = np.random.default_rng(0)
    for ax, p in zip(axes[0], panels, strict=False):
        y, m = np.asarray(p["true"]), np.asarray(p["pred"])
        keep = np.sort(rng.choice(len(y), min(max_points, len(y)), replace=False))
        if p["lower"] is not None:
            lo, hi = np.asarray(p["lower"])[keep], np.asarray(p["upper"])[keep]
            ax.errorbar(y[keep], m[keep], yerr=[m[keep] - lo, hi - m[keep]], fmt="none",
                        ecolor="tab:blue", alpha=0.15, lw=0.8)
        ax.scatter(y[keep], m[keep], s=6, c="tab:blue")
        lim = [min(y.min(), m.min()) - 0.02, max(y.max(), m.max()) + 0.02]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        what = "left out" if p["scenario"] == "C" else "seen"
        ax.set_title(f"{p['target']} ({what}): Kendall tau {p['kendall']:.3f}", fontsize=9)
        ax.set_xlabel("true accuracy")
        ax.set_ylabel("predicted accuracy")
    ax = axes[0][-1]
    models = {"tap": report, **report["baselines"]}
    groups = [(sc, ds) for sc, key in SCENARIO_KEYS.items() for ds in report[key]]
    w = 0.8 / len(models)
    for j, (name, rep) in enumerate(models.items()):
        vals = [rep[SCENARIO_KEYS[sc]].get(ds, 0.0) for sc, ds in groups]
        ax.bar(np.arange(len(groups)) + j * w, vals, w, label=name)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - w / 2,
                  [f"{sc}:{ds}" for sc, ds in groups], rotation=30, ha="right", fontsize=7)
    ax.axhline(0.9, ls="--", c="gray", lw=0.8)
    ax.axhline(0.86, ls=":", c="gray", lw=0.8)
    ax.set_ylabel("Kendall tau")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=6, ncol=2)
    ax.set_title(f"suite {report['suite']}: TAP vs baselines", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table_problem(tab: Any, scenarios: str, n_train_a: int = 1000) -> str | None:
    """Why ``tab`` cannot give the requested scenarios a meaningful Kendall tau (a test set
    of at least two networks), or None."""
    import numpy as np

    counts = {d: int(np.sum((tab.datasets == d) & ~tab.reference))
              for d in tab.dataset_dcn()}
    if "A" in scenarios:
        small = {d: n for d, n in counts.items() if n < n_train_a + 2}
        if small:
            d, n = next(iter(small.items()))
            return (f"scenario A trains on {n_train_a:,} experiments of a dataset and tests on "
                    f"the rest, but dataset {d!r} has {n:,}; give a larger table, or "
                    "--scenarios BC with two or more datasets")
    if set(scenarios) & set("BCN"):
        if len(counts) < 2:
            return (f"scenarios B, C and N leave one dataset out and need two or more; the table "
                    f"holds {len(counts)}")
        few = {d: n for d, n in counts.items() if n < 2}
        if few:
            return f"dataset {next(iter(few))!r} has fewer than two experiments to test on"
    return None



def main(
    suite: Annotated[str, typer.Option(
        help="nb201, starter or sealed (the sealed test suite, with --db: "
             "benchmarks.sealed; to report a change after it is chosen, never to choose)."
    )] = "nb201",
    db: Annotated[Path | None, typer.Option(
        help="--suite sealed: the sealed suite's database.")] = None,
    table: Annotated[Path | None, typer.Option(
        help="Any experiments table (.parquet/.csv) instead of a built-in suite.")] = None,
    threads: Annotated[int, typer.Option(help="torch threads (stated in the report).")] = 1,
    limit: Annotated[int | None, typer.Option(
        help="Use a seeded subset of N cells (quick runs; default all).")] = None,
    scenarios: Annotated[str, typer.Option(
        help="Any of A, B, C, N (C on network families the LDE holds nowhere).")] = "ABC",
    min_datasets: Annotated[int | None, typer.Option(
        help="Scenario C: datasets the DCN selection must keep (default: the LDE's "
             "production rule, 2).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Write a PNG chart.")] = None,
    first_prediction: Annotated[bool, typer.Option(
        "--first-prediction", help="Also time a new user's first predictions on a fresh "
        "default database (as tapas bench first-prediction): adds first_prediction_s and "
        "first_prediction_phases.")] = False,
) -> None:
    """Quality (scenarios A/B/C/N, baselines, zero-cost proxies) and speed of the predictor."""
    if suite == "sealed":
        from benchmarks import sealed

        if db is None:
            fail("--suite sealed needs --db, the sealed suite's database (lde/sealed/DATA_CARD.md)")
        sealed.main(db=db, seed=seed, as_json=as_json)
        return
    if suite not in ("nb201", "starter"):
        fail(f"unknown suite {suite!r}; expected nb201, starter or sealed")
    if not set(scenarios) <= set("ABCN") or not scenarios:
        fail(f"--scenarios must be letters from A, B, C, N; got {scenarios!r}")
    tab = None
    if table is not None:
        try:
            tab = load_table_file(table)
        except (ValueError, OSError) as e:
            fail(str(e))
        problem = _table_problem(tab, scenarios)
        if problem:
            fail(f"--table {table}: {problem}")
    try:
        rep = run_benchmark(suite=suite, threads=threads, limit=limit, scenarios=scenarios,
                            min_datasets=min_datasets, seed=seed, table=tab,
                            log=(lambda s: err_console.print(f"[dim]{s}[/]")))
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    if plot_path is not None:
        plot(rep, plot_path)
    rep.pop("scatter", None)  # per-network data for the plot only
    if first_prediction:
        first = first_prediction_report(as_json, threads=threads, seed=seed)
        rep["first_prediction_s"] = first["first_prediction_s"]
        rep["first_prediction_phases"] = first["first_prediction_phases"]
        rep["first_prediction"] = first
    if as_json:
        print_json(rep)
        return
    from rich.table import Table

    t = Table(title=f"predictor quality, suite {rep['suite']} (Kendall tau)")
    t.add_column("scenario")
    t.add_column("dataset")
    models = ["tap", *rep["baselines"]]
    for m in models:
        t.add_column(m, justify="right")
    t.add_column("TAP MAE", justify="right")
    t.add_column("TAP top-10", justify="right")
    t.add_column("TAP coverage", justify="right")
    det = {(d["scenario"], d["target"], d["model"]): d for d in rep["details"]}
    for sc, key in SCENARIO_KEYS.items():
        for ds in rep[key]:
            vals = [rep[key].get(ds) if m == "tap" else rep["baselines"][m][key].get(ds)
                    for m in models]
            d = det[(sc, ds, "tap")]
            t.add_row(sc, ds, *[f"{v:.3f}" if v is not None else "-" for v in vals],
                      f"{d['mae']:.4f}", f"{d['top10']:.1f}",
                      f"{d['coverage']:.3f}" if "coverage" in d else "-")
    console.print(t)
    if "zero_cost_kendall" in rep:
        z = Table(title="Kendall tau on the 725 zero-cost cells per dataset")
        z.add_column("ranking by")
        dss = list(rep["zero_cost_kendall"])
        for ds in dss:
            z.add_column(ds, justify="right")
        names = [k for k in rep["zero_cost_kendall"][dss[0]] if k != "n_cells"]
        for n in names:
            z.add_row(n, *[f"{rep['zero_cost_kendall'][ds].get(n, float('nan')):.3f}"
                           for ds in dss])
        console.print(z)
    console.print(
        f"scoring: {rep['throughput_archs_per_s']:,.0f} networks/s (encodings cached), "
        f"{rep['throughput_cold_archs_per_s']:,.0f}/s cold, batch {rep['throughput_batch']}, "
        f"{rep['threads']} thread(s); training on {rep['train_rows']:,} experiments: "
        f"{rep['train_seconds_10k']:.1f} s; C mean tau {rep['scenario_c_kendall_mean']}, "
        f"C MAE {rep['scenario_c_mae_mean']}, coverage {rep['coverage_90']}")
    if first_prediction:
        print_first_prediction(rep["first_prediction"])


if __name__ == "__main__":
    run_cli(main)
