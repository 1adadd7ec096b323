"""``tapas train``, ``tapas predict``, the predictor registry and the predictor's speed
checks (``tapas bench first-prediction``, ``tapas bench devices``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tapas.app.bench.load import busy
from tapas.app.cli.arch import read_sources, where_invalid
from tapas.app.cli.common import (
    FORMAT_HELP,
    InputShapeOpt,
    LegacyInputOpt,
    console,
    emit,
    fail,
    input_shape_arg,
    open_pipeline,
    plain,
    print_json,
    progress_bar,
    resolve_format,
    result_caveats,
)
from tapas.core.errors import InvalidArchitecture
from tapas.core.lazy import LazyImport

# numpy, torch, scikit-learn and the application: loaded when a command runs
np = LazyImport("numpy")
predictor_pkg = LazyImport("predictor")
predictor_table = LazyImport("predictor.table")
pipeline = LazyImport("tapas.app.pipeline")
core_arch = LazyImport("tapas.core.arch")
core_types = LazyImport("tapas.core.types")
core_spaces = LazyImport("tapas.core.spaces")
fp_bench = LazyImport("tapas.app.bench.first_prediction")
devices_bench = LazyImport("tapas.app.bench.devices")

if TYPE_CHECKING:
    from tapas.app.cli.arch import Source
    from tapas.core.types import Prediction


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
        "--nb201", help="Train on the NAS-Bench-201 table (nb201.csv in --data-dir) instead "
                        "of a table.")] = False,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="Folder holding nb201.csv for --nb201 (default: ../shared/data "
                           "beside the repository).")] = None,
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
    if (table is None) == (not nb201):
        fail("give an experiments table file or --nb201 (exactly one)")
    if data_dir is not None and not nb201:
        fail("--data-dir goes with --nb201")
    try:
        if nb201:
            names = datasets.split(",") if datasets else None
            for n in names or []:
                if n not in predictor_table.NB201_DATASETS:
                    fail(f"unknown NAS-Bench-201 dataset {n!r}; known: "
                         f"{', '.join(predictor_table.NB201_DATASETS)}")
            folder = data_dir or predictor_table.SHARED_DATA
            if not (folder / "nb201.csv").is_file():
                fail(f"no nb201.csv in {folder}; point --data-dir at the folder that holds it")
            with console.status("expanding NAS-Bench-201 cells"):
                tab = predictor_table.load_nb201(
                    folder, names or tuple(predictor_table.NB201_DATASETS), limit=max_rows)
        else:
            if not table.exists():
                fail(f"experiments table {table} does not exist")
            tab = predictor_table.load_table_file(table)
            if datasets:
                keep = np.isin(tab.datasets, datasets.split(","))
                if not keep.any():
                    fail(f"no rows of dataset(s) {datasets} in {table}")
                idx = np.flatnonzero(keep)
                tab = predictor_table.Table([tab.archs[i] for i in idx], tab.datasets[idx],
                                            tab.dcns[idx], tab.accuracies[idx])
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    idx = np.flatnonzero(~tab.reference)
    if max_rows is not None and len(idx) > max_rows:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_rows, replace=False))
    archs, dcns, y = tab.take(idx)
    try:
        model = predictor_pkg.TAPRegressor(**_tap_kwargs(epochs, members, seed, device))
        with progress_bar(as_json) as bar:
            task = bar.add_task(f"training TAP on {len(y):,} experiments (epochs)", total=None)
            model.fit(archs, dcns, y, progress=lambda e, n: bar.update(task, completed=e,
                                                                          total=n))
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
        help="[MODEL.tap] then architectures: each in any notation (tapas arch notations) "
             "or a file holding one. Without a model file the LDE's predictor for the "
             "target answers (as in the service).")] = None,
    dcn: Annotated[float | None, typer.Option(
        help="The target dataset's DCN in [0, 1].")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="A characterised dataset in the LDE (its DCN, classes and input shape).")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="A text file of architectures, one a line: a notation or a file "
                       "path ('#' comments).")] = None,
    classes: Annotated[int | None, typer.Option("--classes", help="Number of classes.")] = None,
    input_shape: InputShapeOpt = None,
    legacy_input: LegacyInputOpt = None,
    predictor_id: Annotated[str | None, typer.Option(
        "--predictor", help="Without a model file: pin a registered predictor by id "
                            "(tapas predictor list) instead of the one covering the DCN.")
    ] = None,
    train_: Annotated[bool, typer.Option(
        "--train", help="Without a model file: train the predictor when none covers the "
                        "target yet (else that is an error).")] = False,
    db: Annotated[Path | None, typer.Option(
        "--db", help="LDE database file (default: TAPAS_DB_PATH or TAPAS_HOME/lde.duckdb).")
    ] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the predictions (.json, .csv or .parquet).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help=FORMAT_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object "
                                          "(= --format json).")] = False,
) -> None:
    """Predict accuracies (mean, ensemble spread, conformal interval) for architectures."""
    shape = input_shape_arg(input_shape, legacy_input)
    args = list(archs or [])
    model_path = Path(args.pop(0)) if args and args[0].endswith(".tap") else None
    if not args and file is None:
        fail("no architectures given (pass notations / files or --file)")
    if (dcn is None) == (dataset is None):
        fail("give exactly one of --dcn and --dataset")
    if dcn is not None and not 0.0 <= dcn <= 1.0:
        fail(f"--dcn must lie in [0, 1], got {dcn}")
    sources = read_sources(args, file)
    if not sources:
        fail(f"{file}: no architectures (one a line, in any notation of tapas arch notations)")
    dest = resolve_format(fmt, out, as_json)
    if model_path is not None:
        if dataset is not None:
            fail("--dataset needs the LDE's predictor: leave out the model file, or give --dcn")
        if predictor_id is not None:
            fail("--predictor pins a registered predictor: leave out the model file")
        summary, preds = _predict_with_file(model_path, sources, dcn, classes, shape)
    else:
        summary, preds = _predict_with_pipeline(sources, dcn, dataset, classes, shape,
                                                train_, db, predictor_id, dest.quiet)
    rows = [{"arch": s.label, **p.row()} for s, p in zip(sources, preds, strict=True)]

    def table() -> None:
        t = Table(title=f"predicted accuracy (DCN {summary['dcn']}, "
                  f"{summary['coverage']:.0%} interval, predictor {summary['predictor']})")
        for col in ("architecture", "mean", "interval", "spread", "in_domain"):
            t.add_column(col, justify="left" if col == "architecture" else "right",
                         overflow="fold" if col == "architecture" else "ellipsis")
        for r in rows:
            t.add_row(plain(r["arch"]), f"{r['mean']:.4f}",
                      f"[{r['lower']:.4f}, {r['upper']:.4f}]", f"{r['spread']:.4f}",
                      "yes" if r["in_domain"] else "[yellow]no[/]")
        console.print(t)

    emit(dest, obj={**summary, "predictions": rows}, rows=rows, table=table)
    result_caveats(rows)


def _predict_with_file(model_path: Path, sources: list[Source], dcn: float | None,
                       classes: int | None, input_shape: tuple[int, int, int] | None
                       ) -> tuple[dict[str, Any], Sequence[Prediction]]:
    """A saved model file answers (no database): the answer's fields (the file names the
    predictor) and a prediction per network."""
    ArchError, parse_archs = core_arch.ArchError, core_spaces.parse_archs
    try:
        model = predictor_pkg.load(model_path)
    except predictor_pkg.ModelFileError as e:
        fail(str(e))
    try:
        nets = parse_archs([s.value for s in sources], classes or core_types.DEFAULT_NUM_CLASSES,
                           input_shape or core_types.DEFAULT_INPUT_SHAPE)
    except ArchError as e:
        fail(where_invalid(e, sources))
    out = model.predict_interval(nets, dcn)
    summary = {"predictor": str(model_path), "dcn": dcn, "coverage": float(out.coverage)}
    return summary, pipeline.to_predictions(nets, out, str(model_path), float(dcn))


def _train_if_uncovered(app: Any, dcn: float | None, dataset: str | None,
                        classes: int | None, shape: Any, quiet: bool) -> None:
    """Train the target's predictor, its epochs on the progress display, when none covers
    it yet (what ``Pipeline.predict(train=True)`` would do, silently)."""
    value = app.target(dcn=dcn, dataset=dataset, num_classes=classes,
                       input_shape=shape).value
    try:
        app.select(value)
    except core_types.NoPredictorError:
        with progress_bar(quiet) as bar:
            task = bar.add_task("training the predictor (epochs)", total=None)
            app.train(value, progress=lambda e, n: bar.update(task, completed=e, total=n))


def _predict_with_pipeline(sources: list[Source], dcn: float | None, dataset: str | None,
                           classes: int | None, shape: tuple[int, int, int] | None,
                           train: bool,
                           db: Path | None, predictor: str | None = None,
                           quiet: bool = False,
                           ) -> tuple[dict[str, Any], Sequence[Prediction]]:
    """The LDE's predictor answers, chosen by the pipeline's one rule (as for the service
    and the in-process scorer): the answer's fields and a prediction per network; with
    ``train``, a predictor trained first shows its epochs."""
    items = [s.value for s in sources]
    with open_pipeline(db) as app:
        try:
            if train and predictor is None:
                _train_if_uncovered(app, dcn, dataset, classes, shape, quiet)
            answer = app.answer(app.query(items, dcn=dcn, dataset=dataset, num_classes=classes,
                                          input_shape=shape, train=train,
                                          predictor=predictor))
        except core_types.NoPredictorError as e:
            fail(f"no trained predictor covers DCN {e.dcn:.4f} yet; add --train to train one "
                 "(on the experiments the DCN filter selects) and predict")
        except InvalidArchitecture as e:
            fail(where_invalid(e, sources))
        except ValueError as e:  # not only domain errors: bad numbers in the input too
            fail(str(e))
    return answer.summary(), answer.predictions


def first_prediction_report(quiet: bool, **kwargs: Any) -> dict[str, Any]:
    """Run :func:`tapas.app.bench.first_prediction.run_first_prediction` with the one progress
    display (phase, bar, done/total, elapsed, eta on stderr; hidden when ``quiet``)."""
    labels = {"characterize": "characterising the dataset (probe epochs)",
              "train": "loading or training the predictor (epochs)",
              "score": "scoring networks"}
    with progress_bar(quiet) as bar:
        task = bar.add_task("starting", total=None)

        def tick(phase: str, done: int, total: int | None) -> None:
            bar.update(task, description=labels.get(phase, phase), completed=done,
                       total=total)

        try:
            return fp_bench.run_first_prediction(progress=tick, log=lambda s: bar.console.print(
                f"[dim]{s}[/]", highlight=False), **kwargs)
        except (ValueError, OSError) as e:
            fail(str(e))


def print_first_prediction(r: dict[str, Any]) -> None:
    ph = r["first_prediction_phases"]
    console.print(
        f"first prediction: [bold]{r['first_prediction_s']:.1f} s[/] for {r['n_networks']:,} "
        f"{r['space']} networks on {r['dataset']} (characterise {ph['characterize']:.1f} s, "
        f"predictor {ph['train']:.1f} s ({r['predictor_origin']}, {r['n_train']:,} "
        f"experiments), score "
        f"{ph['score']:.2f} s); seeding the new database {r['seed_s']:.1f} s; "
        f"{r['threads']} thread(s), {r.get('load_processes', 0)} busy process(es) beside, "
        f"load average {r['load_average']['start'][0]:.2f}",
        highlight=False)


def bench_first_prediction(
    dataset: Annotated[list[str] | None, typer.Option(
        help="A dataset the new database does not hold (built-in spec, .npz); repeat it for "
             "several. Default: a variant of digits whose selection stays small, then "
             "digits itself, whose selection reaches the NAS-Bench-201 tables.")] = None,
    networks: Annotated[int, typer.Option(
        "--networks", "-n", min=1, help="Networks to score.")] = 1000,
    space: Annotated[str, typer.Option(help="Search space they are sampled from.")] = "chain",
    threads: Annotated[int | None, typer.Option(
        help="torch threads (default: 1 within the TAPAS_THREADS budget; stated in "
             "the report).")] = None,
    load: Annotated[int, typer.Option(
        "--load", min=0, max=64, help="CPU-bound processes kept busy beside the bench (a "
        "busy laptop: --load 2 on 2 cores).")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    shipped: Annotated[bool, typer.Option(
        "--shipped/--no-shipped", help="Register the predictors shipped with tapas in the "
        "new database, as a first start does (--no-shipped: always train, the cost they "
        "save).")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Time to first prediction: characterise a new dataset, get its predictor (shipped or
    trained) and score networks on a fresh default database (each phase and the total),
    per dataset. One dataset gives one report; several give ``runs`` (one report each)
    and ``first_prediction_s`` by dataset."""
    datasets = dataset or [fp_bench.DEFAULT_DATASET, fp_bench.NB201_DATASET]
    with busy(load):
        runs = [{**first_prediction_report(as_json, dataset=d, n_networks=networks, space=space,
                                     threads=threads, seed=seed, shipped=shipped),
                 "load_processes": load}
                for d in datasets]
    out: dict[str, Any] = runs[0] if len(runs) == 1 else {
        "runs": runs, "first_prediction_s": {r["dataset"]: r["first_prediction_s"]
                                             for r in runs}, "load_processes": load}
    if as_json:
        print_json(out)
        return
    for r in runs:
        print_first_prediction(r)



def bench_devices(
    device: Annotated[list[str] | None, typer.Option(
        "--device", help="cpu and/or cuda, in order (default: every available one); "
        "the first is the reference the others are compared with.")] = None,
    train_rows: Annotated[int, typer.Option(min=10, help="Experiments to train on.")] = 10_000,
    networks: Annotated[int, typer.Option("--networks", "-n", min=10,
                                          help="Networks to score.")] = 10_000,
    threads: Annotated[int | None, typer.Option(
        help="torch threads (default: 1 within the TAPAS_THREADS budget; stated in "
             "the report).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The DCN, predictor training and scoring timed on each device, and whether the
    devices agree (DCN, score ranking, a GPU-trained model loaded on the CPU)."""
    with progress_bar(as_json) as bar:
        task = bar.add_task("starting", total=None)
        r = devices_bench.run_device_comparison(device, train_rows=train_rows, networks=networks,
                                  seed=seed, threads=threads,
                                  progress=lambda step: bar.update(task, description=step))
    if as_json:
        print_json(r)
        return
    for dev, m in r["devices"].items():
        console.print(f"{dev}: DCN {m['dcn']:.4f} in {m['dcn_s']:.1f} s; trained on "
                      f"{r['train_rows']:,} experiments in {m['train_s']:.1f} s; "
                      f"{m['score_cold_per_s']:,.0f} networks/s cold, "
                      f"{m['score_warm_per_s']:,.0f} cached", highlight=False)
    for dev, a in r["agreement"].items():
        if dev != "versus":
            console.print(f"{dev} vs {r['agreement']['versus']}: DCN differs by "
                          f"{a['dcn_abs_diff']:.4f}, Kendall tau of the scores "
                          f"{a['kendall_tau_scores']:.3f}, moved model max difference "
                          f"{a['portable_max_abs']:.2e}", highlight=False)


# ------------------------------------------------------------------ the registry
registry = typer.Typer(help="The registered predictors: list, show, export, import, delete.",
                       no_args_is_help=True)


def _open(read_only: bool = False, lazy: bool = False) -> Any:
    """The application for the registry commands (:func:`open_pipeline`): ``read_only``
    (list, show, export) yields None when there is no database yet (so no registered
    predictor); ``lazy`` (import) opens it only when first needed, so a bad file is
    refused before a new home is seeded."""
    return open_pipeline(read_only=read_only, upgrade=read_only, missing_ok=read_only,
                         lazy=lazy, hint="stop the service to manage predictors locally")


def _row_dict(app: Any, info: Any) -> dict[str, Any]:
    try:
        path: Any = app.model_path(info.artifact)
    except pipeline.ModelFileError:  # an older registry entry naming a file outside the model dir
        path = None
    return {"id": info.id, "dcn": info.dcn, "tau": info.tau, "dcn_lo": info.dcn_lo,
            "dcn_hi": info.dcn_hi, "n_train": info.n_train, "snapshot": info.snapshot,
            "created": str(info.created), "file": None if path is None else str(path),
            "file_exists": path is not None and path.is_file(),
            "origin": "shipped" if pipeline.is_shipped(info) else "trained",
            "datasets": list(info.datasets), "metrics": info.metrics,
            "provenance": info.provenance}


@registry.command("list")
def predictor_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Every registered predictor: id, DCN range, training size, origin, file (a shipped
    predictor's file is unpacked from the package when first used: "packed" until then)."""
    with _open(read_only=True) as app:
        rows = [] if app is None else [_row_dict(app, i) for i in app.predictors()]
    if as_json:
        print_json({"items": rows})
        return
    t = Table(title=f"{len(rows)} registered predictor(s)", title_justify="left")
    for col in ("id", "DCN", "DCN range", "experiments", "datasets", "created", "origin",
                "file"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["id"], f"{r['dcn']:.4f}", f"{r['dcn_lo']:.3f}..{r['dcn_hi']:.3f}",
                  f"{r['n_train']:,}", plain(", ".join(r["datasets"])), r["created"][:19],
                  r["origin"], "ok" if r["file_exists"] else
                  "packed" if r["origin"] == "shipped" else "missing")
    console.print(t)


@registry.command("show")
def predictor_show(
    ident: Annotated[str, typer.Argument(help="Predictor id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """One predictor's registry entry, metrics and provenance."""
    core_types.check_predictor_id(ident)
    with _open(read_only=True) as app:
        info = None if app is None else app.predictor(ident)
        d = None if info is None else _row_dict(app, info)
    if d is None:
        fail(f"no predictor {ident!r} in the registry (tapas predictor list)")
    if as_json:
        print_json(d)
        return
    t = Table(title=f"predictor {ident}", show_header=False, title_justify="left")
    for k, v in d.items():
        t.add_row(k, plain(json.dumps(v, default=str) if isinstance(v, dict | list) else v))
    console.print(t)


@registry.command("export")
def predictor_export(
    ident: Annotated[str, typer.Argument(help="Predictor id.")],
    dest: Annotated[Path, typer.Argument(help="Model file to write (.tap).")],
) -> None:
    """Write a predictor as one self-contained file (model and registry entry)."""
    if dest.is_dir():
        fail(f"{dest} is a folder; give a file name")
    with _open(read_only=True) as app:
        if app is None:
            fail(f"no predictor {ident!r} in the registry (no experiment database yet)")
        app.export_predictor(ident, dest)
    console.print(f"exported {ident} to {dest}", highlight=False)


@registry.command("import")
def predictor_import(
    src: Annotated[Path, typer.Argument(help="A file written by tapas predictor export.")],
    replace: Annotated[bool, typer.Option(
        "--replace", help="Overwrite a registered predictor of the same id that has other "
                          "weights (predictions pinned to it change).")] = False,
) -> None:
    """Register an exported predictor (verified, then copied into the model directory).
    An id already registered with other weights needs --replace; the same file again
    changes nothing."""
    if not src.is_file():
        fail(f"{src}: no such file")
    with _open(lazy=True) as app:  # the file is verified before a new home is seeded
        try:
            info = app.import_predictor(src, replace=replace)
        except ValueError as e:  # a model file refused, or not one at all
            fail(str(e))
    if info.cached:
        console.print(f"{info.id} is already registered with these weights; nothing changed",
                      highlight=False)
        return
    console.print(f"imported {info.id} (DCN {info.dcn:.4f}, {info.n_train:,} experiments)",
                  highlight=False)


@registry.command("delete")
def predictor_delete(
    ident: Annotated[str, typer.Argument(help="Predictor id.")],
) -> None:
    """Remove a predictor from the registry and its file from the model directory."""
    with _open() as app:
        gone = app.delete_predictor(ident)
    if not gone:
        fail(f"no predictor {ident!r} in the registry (tapas predictor list)")
    console.print(f"deleted {ident}", highlight=False)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this part's commands to ``app`` and its benchmark to ``bench``."""
    app.command("train")(train)
    app.command("predict")(predict)
    app.add_typer(registry, name="predictor")
    bench.command("first-prediction")(bench_first_prediction)
    bench.command("devices")(bench_devices)
