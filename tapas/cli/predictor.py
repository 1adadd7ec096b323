"""``tapas train``, ``tapas predict`` and ``tapas bench predictor``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tapas.cli.common import console, err_console, fail, print_json


def _tap_kwargs(epochs: int | None, members: int | None, seed: int, device: str | None
                ) -> dict[str, Any]:
    kw: dict[str, Any] = {"seed": seed}
    if epochs is not None:
        kw["epochs"] = epochs
    if members is not None:
        kw["n_members"] = members
    if device is not None:
        kw["device"] = device
    return kw


def train(
    table: Annotated[Path | None, typer.Argument(
        help="Experiments table (.parquet/.csv: arch, dataset, dcn, accuracy).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write.")] = Path(
        "predictor.tap"),
    nb201: Annotated[bool, typer.Option(
        "--nb201", help="Train on ../shared/data/nb201.csv instead of a table.")] = False,
    datasets: Annotated[str | None, typer.Option(
        help="Comma-separated datasets to keep (e.g. cifar10,cifar100).")] = None,
    max_rows: Annotated[int | None, typer.Option(help="Seeded sample of at most N rows.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs.")] = None,
    members: Annotated[int | None, typer.Option(help="Ensemble members K.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train a TAP ensemble on a table of experiments and save it (no pickle)."""
    import numpy as np

    from predictor import TAPRegressor
    from predictor.evaluate import Table, load_nb201, load_table_file

    if (table is None) == (not nb201):
        fail("give an experiments table file or --nb201 (exactly one)")
    try:
        if nb201:
            from tapas.bench.predictor import SHARED_DATA

            names = datasets.split(",") if datasets else None
            from predictor.evaluate import NB201_DATASETS

            for n in names or []:
                if n not in NB201_DATASETS:
                    fail(f"unknown NAS-Bench-201 dataset {n!r}; known: "
                         f"{', '.join(NB201_DATASETS)}")
            with console.status("expanding NAS-Bench-201 cells"):
                tab = load_nb201(SHARED_DATA, names or tuple(NB201_DATASETS), limit=max_rows)
        else:
            if not table.exists():
                fail(f"experiments table {table} does not exist")
            tab = load_table_file(table)
            if datasets:
                keep = np.isin(tab.datasets, datasets.split(","))
                if not keep.any():
                    fail(f"no rows of dataset(s) {datasets} in {table}")
                idx = np.flatnonzero(keep)
                tab = Table([tab.archs[i] for i in idx], tab.datasets[idx], tab.dcns[idx],
                            tab.accuracies[idx])
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    idx = np.flatnonzero(~tab.reference)
    if max_rows is not None and len(idx) > max_rows:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_rows, replace=False))
    archs, dcns, y = tab.take(idx)
    try:
        model = TAPRegressor(**_tap_kwargs(epochs, members, seed, device))
        with console.status(f"training TAP on {len(y):,} experiments"):
            model.fit(archs, dcns, y)
    except (ValueError, TypeError, RuntimeError) as e:
        fail(f"training failed: {e}")
    prov = {"source": str(table) if table else "nb201", "n": len(y),
            "datasets": sorted(set(tab.datasets[idx].tolist())),
            "dcn": sorted(set(np.round(dcns, 6).tolist())), "tau": None, "lde_snapshot": None,
            "metrics": {"train_loss_last": model.loss_curve_[-1]}}
    model.save(out, provenance=prov)
    info = {"model": str(out), "n_train": model.n_train_,
            "n_calibration": model.n_calibration_, "fit_seconds": model.fit_seconds_,
            "datasets": prov["datasets"]}
    if as_json:
        print_json(info)
    else:
        console.print(f"saved [bold]{out}[/] ({model.n_train_:,} training rows, "
                      f"{model.n_calibration_:,} calibration rows, "
                      f"{model.fit_seconds_:.1f} s)")


def predict(
    archs: Annotated[list[str] | None, typer.Argument(
        help="[MODEL.tap] then NAS-Bench-201 cell strings or IR JSON files. Without a model "
             "file the LDE's predictor for the target answers (as in the service).")] = None,
    dcn: Annotated[float | None, typer.Option(
        help="The target dataset's DCN in [0, 1].")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="A characterised dataset in the LDE (its DCN, classes and input shape).")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="A text file with one cell string or JSON file path per line.")] = None,
    classes: Annotated[int | None, typer.Option("--classes", help="Number of classes.")] = None,
    input_shape: Annotated[str | None, typer.Option("--input", help="Input shape C,H,W.")] = None,
    train_: Annotated[bool, typer.Option(
        "--train", help="Without a model file: train the predictor when none covers the "
                        "target yet (else that is an error).")] = False,
    db: Annotated[Path | None, typer.Option(
        "--db", help="LDE database file (default: TAPAS_DB_PATH or TAPAS_HOME/lde.duckdb).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Predict accuracies (mean, ensemble spread, conformal interval) for architectures."""
    sources = list(archs or [])
    model_path = Path(sources.pop(0)) if sources and sources[0].endswith(".tap") else None
    if file is not None:
        try:
            sources += [ln.strip() for ln in file.read_text().splitlines() if ln.strip()]
        except (OSError, UnicodeDecodeError) as e:
            fail(f"cannot read {file}: {e}")
    if not sources:
        fail("no architectures given (pass cell strings / JSON files or --file)")
    if (dcn is None) == (dataset is None):
        fail("give exactly one of --dcn and --dataset")
    if dcn is not None and not 0.0 <= dcn <= 1.0:
        fail(f"--dcn must lie in [0, 1], got {dcn}")
    if model_path is not None:
        if dataset is not None:
            fail("--dataset needs the LDE's predictor: leave out the model file, or give --dcn")
        rows, coverage, pid = _predict_with_file(model_path, sources, dcn, classes, input_shape)
    else:
        rows, coverage, pid, dcn = _predict_with_pipeline(sources, dcn, dataset, classes,
                                                          input_shape, train_, db)
    if as_json:
        out = {"dcn": dcn, "coverage": coverage, "predictions": rows}
        if pid is not None:
            out["predictor"] = pid
        print_json(out)
        return
    from rich.table import Table

    by = f", predictor {pid}" if pid else ""
    t = Table(title=f"predicted accuracy (DCN {dcn}, {coverage:.0%} interval{by})")
    for col in ("architecture", "accuracy", "spread", "interval"):
        t.add_column(col, justify="left" if col == "architecture" else "right")
    for r in rows:
        name = r["arch"] if len(r["arch"]) <= 60 else r["arch"][:57] + "..."
        t.add_row(name, f"{r['accuracy']:.4f}", f"{r['spread']:.4f}",
                  f"[{r['lower']:.4f}, {r['upper']:.4f}]")
    console.print(t)


def _predict_with_file(model_path: Path, sources: list[str], dcn: float | None,
                       classes: int | None, input_shape: str | None
                       ) -> tuple[list[dict[str, Any]], float, None]:
    """A saved model file answers (no database)."""
    from predictor import ModelFileError, load
    from tapas.cli.arch import resolve_arch

    try:
        model = load(model_path)
    except ModelFileError as e:
        fail(str(e))
    nets = [resolve_arch(s, classes, input_shape) for s in sources]
    p = model.predict_interval(nets, dcn)
    rows = [{"arch": s, "id": a.id, "accuracy": float(m), "spread": float(sd),
             "lower": float(lo), "upper": float(hi)}
            for s, a, m, sd, lo, hi in zip(sources, nets, p.mean, p.spread, p.lower, p.upper,
                                           strict=True)]
    return rows, float(p.coverage), None


def _predict_with_pipeline(sources: list[str], dcn: float | None, dataset: str | None,
                           classes: int | None, input_shape: str | None, train: bool,
                           db: Path | None) -> tuple[list[dict[str, Any]], float, str, float]:
    """The LDE's predictor answers, chosen by the pipeline's one rule (as for the service
    and the in-process scorer)."""
    from tapas.arch import ArchError, is_nb201_string
    from tapas.cli.arch import resolve_arch
    from tapas.cli.common import open_pipeline
    from tapas.types import NoPredictorError

    shape = None
    if input_shape is not None:
        try:
            shape = tuple(int(p) for p in input_shape.split(","))
        except ValueError:
            fail(f"--input must be C,H,W (three integers), got {input_shape!r}")
    items = [s if is_nb201_string(s) else resolve_arch(s, classes, input_shape)
             for s in sources]
    with open_pipeline(db) as app:
        try:
            preds = app.predict(items, dcn=dcn, dataset=dataset, num_classes=classes,
                                input_shape=shape, train=train)
        except NoPredictorError as e:
            fail(f"no trained predictor covers DCN {e.dcn:.4f} yet; add --train to train one "
                 "(on the experiments the DCN filter selects) and predict")
        except (ArchError, LookupError, ValueError) as e:
            fail(str(e))
    rows = [{"arch": s, "id": p.arch_id, "accuracy": p.mean, "spread": p.spread,
             "lower": p.lower, "upper": p.upper} for s, p in zip(sources, preds, strict=True)]
    return rows, preds[0].coverage, preds[0].predictor, preds[0].dcn


def bench_predictor(
    suite: Annotated[str, typer.Option(help="nb201 or starter.")] = "nb201",
    table: Annotated[Path | None, typer.Option(
        help="Any experiments table (.parquet/.csv) instead of a built-in suite.")] = None,
    threads: Annotated[int, typer.Option(help="torch threads (stated in the report).")] = 1,
    limit: Annotated[int | None, typer.Option(
        help="Use a seeded subset of N cells (quick runs; default all).")] = None,
    scenarios: Annotated[str, typer.Option(help="Any of A, B, C.")] = "ABC",
    min_datasets: Annotated[int, typer.Option(
        help="Scenario C: datasets the adaptive DCN filter must keep.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Write a PNG chart.")] = None,
) -> None:
    """Quality (scenarios A/B/C, baselines, zero-cost proxies) and speed of the predictor."""
    from tapas.bench.predictor import SCENARIO_KEYS, plot, run_benchmark

    if suite not in ("nb201", "starter"):
        fail(f"unknown suite {suite!r}; expected nb201 or starter")
    if not set(scenarios) <= set("ABC") or not scenarios:
        fail(f"--scenarios must be letters from A, B, C; got {scenarios!r}")
    tab = None
    if table is not None:
        from predictor.evaluate import load_table_file

        try:
            tab = load_table_file(table)
        except (ValueError, OSError) as e:
            fail(str(e))
    try:
        rep = run_benchmark(suite=suite, threads=threads, limit=limit, scenarios=scenarios,
                            min_datasets=min_datasets, seed=seed, table=tab,
                            log=(lambda s: err_console.print(f"[dim]{s}[/]")))
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    if plot_path is not None:
        plot(rep, plot_path)
    rep.pop("scatter", None)  # per-network data for the plot only
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



def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this part's commands to ``app`` and its benchmark to ``bench``."""
    app.command("train")(train)
    app.command("predict")(predict)
    bench.command("predictor")(bench_predictor)
