"""``tapas dcn DATASET`` (characterise a dataset) and ``tapas bench dcn``."""

from __future__ import annotations

from contextlib import ExitStack, nullcontext
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from tapas.app.cli.common import console, err_console, fail, open_pipeline, print_json, progress_bar
from tapas.core.lazy import LazyImport

# torch, pydantic and the application: loaded when a command runs
probenet = LazyImport("probenet")
pipeline = LazyImport("tapas.app.pipeline")
config = LazyImport("tapas.core.config")
dcn_bench = LazyImport("tapas.app.bench.dcn")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``dcn`` to ``app`` and ``dcn`` to ``bench``."""

    @app.command("dcn")
    def dcn(
        dataset: str = typer.Argument(..., help="A .npz file (arrays x, y), a folder of class "
                                      "sub-folders of images, or a built-in (digits|mnist5k|"
                                      "mnist1d|cmnist|photos), optionally with variants, e.g. "
                                      "'digits?label_noise=0.3&per_class=50'."),
        seed: int = typer.Option(0, help="Seed of the folds and probe initialisations."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
        device: str | None = typer.Option(None, help="auto|cpu|cuda (default: TAPAS_DEVICE)."),
        epochs: int | None = typer.Option(None, min=1, help="Probe epochs (default: setting)."),
        max_samples: int | None = typer.Option(None, min=100,
                                               help="Cap on images (default: setting)."),
        max_steps: int | None = typer.Option(
            None, min=0, help="Probe budget: optimizer steps per probe, so the cost stops "
            "growing with the dataset (default: TAPAS_PROBE_MAX_STEPS, 400; 0: no cap)."),
        store: bool = typer.Option(None, "--store/--no-store", show_default="store",
                                   help="Cache the DCN in the LDE (TAPAS_DB_PATH) by "
                                        "fingerprint, so the next search on these data "
                                        "reuses it (default: store when the database can "
                                        "be opened)."),
        force: bool = typer.Option(False, help="Re-probe even when a cached DCN exists; "
                                   "with --as, also replace a DCN whose dataset's stored "
                                   "input shape or class count differ from the images'."),
        as_name: str | None = typer.Option(None, "--as", metavar="NAME",
                                           help="Store the DCN as that of the stored dataset "
                                                "NAME (e.g. cifar10 of NAS-Bench-201), "
                                                "replacing its DCN; its experiments stay. "
                                                "The previous DCN is kept in dcn_meta."),
    ) -> None:
        """Compute the Dataset Characterization Number: the probe's chance-normalised,
        cross-validated accuracy in [0, 1] (higher = easier).

        With --as NAME, the images are those of a dataset already in the LDE (e.g.
        NAS-Bench-201's cifar10, cifar100, ImageNet16-120, whose DCNs follow the
        reference-cell convention): the probe's DCN replaces the stored one."""
        policy = device or config.get_settings().device
        if policy not in ("auto", "cpu", "cuda"):
            fail(f"--device must be auto, cpu or cuda, got {policy!r}")

        def cannot_open(e: Exception) -> None:
            fail(f"cannot open the experiment database: {e}")

        def note_unstored(e: Exception) -> None:
            if store:
                cannot_open(e)
            err_console.print(f"note: not storing the DCN (cannot open the experiment "
                              f"database: {e}); --no-store silences this",
                              highlight=False, soft_wrap=True)

        replaced = None
        with ExitStack() as opened:
            app = None
            if as_name is not None:  # check the name before loading the images
                if store is False:
                    fail("--as stores the DCN in the LDE; drop --no-store")
                app = opened.enter_context(open_pipeline(unavailable=cannot_open))
                if app.dataset(as_name) is None:
                    app.dataset_info(as_name)  # DatasetNotFound, with close names
            with err_console.status(f"loading {dataset}", spinner="dots") if not json_out \
                    else nullcontext():
                ds = probenet.load_dataset(dataset)
            if as_name is None and store is not False:
                app = opened.enter_context(open_pipeline(unavailable=note_unstored))
            try:
                with progress_bar(json_out) as bar:
                    task = bar.add_task(f"probing {ds.name} (probe epochs, all folds)",
                                        total=None)

                    def cb(done: int, total: int) -> None:
                        bar.update(task, completed=done, total=total)

                    probe = {"device": policy, "epochs": epochs, "max_samples": max_samples,
                             "max_steps": max_steps}
                    if as_name is not None:  # the DCN of a stored dataset, replaced
                        info, res = app.recharacterize(as_name, ds, seed=seed, force=force,
                                                       reprobe=force, progress=cb, **probe)
                        replaced = {"stored_as": info.name,
                                    "replaced": (info.dcn_meta or {}).get("replaced")}
                    elif app is not None:  # through the application: recorded in the LDE
                        _, res = app.characterize(ds, seed=seed, force=force, progress=cb,
                                                  **probe)
                    else:
                        res = probenet.characterize(ds, seed=seed, force=force, progress=cb,
                                                    **probe)
            except pipeline.DatasetConflict as e:
                fail(f"{e}; `tapas dcn` stores a file under its path, so copying the changed "
                     "file to a new path keeps both")
            except (RuntimeError, ValueError) as e:  # domain errors exit from the root command
                fail(str(e))
        out = {**res.to_dict(), "input_shape": list(ds.input_shape),
               "n_samples": ds.n_samples, **(replaced or {})}
        if json_out:
            print_json(out)
            return
        t = Table(title=f"DCN of {escape(ds.name)}", show_header=False)
        t.add_row("DCN (higher = easier)", f"[bold]{res.dcn:.4f}[/]")
        t.add_row("probe accuracy", f"{res.accuracy:.4f} (chance {res.chance:.4f})")
        budget = ("" if res.steps is None else f", {res.steps} steps"
                  + (f" (capped at {res.max_steps} per probe)" if res.capped else ""))
        t.add_row("how", f"{res.probe_version}: {res.repeats} x {res.n_folds}-fold CV, "
                         f"{res.epochs} epochs{budget}, {res.n_test} images, seed {res.seed}")
        t.add_row("device / time", f"{res.device} / {res.seconds:.1f} s"
                                   + (" (cached)" if res.cached else ""))
        t.add_row("fingerprint", res.fingerprint)
        t.add_row("data", f"{ds.n_samples} images {ds.input_shape}, {ds.num_classes} classes")
        if replaced is not None:
            prev = replaced["replaced"] or {}
            old = prev.get("dcn")
            t.add_row("stored as", escape(replaced["stored_as"]) + (
                "" if not prev else f" (replaced DCN {old:.4f}, method "
                f"{escape(str(prev.get('method')))})" if old is not None
                else " (had no DCN)"))
        console.print(t)

    @bench.command("dcn")
    def bench_dcn(
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
        quick: bool = typer.Option(False, help="Tiny settings (for tests; figures not "
                                               "comparable)."),
        speed_threads: int = typer.Option(2, min=1, help="torch threads for the speed run."),
    ) -> None:
        """DCN repeatability (3 seeds), speed on 10,000 images of 28x28 and of 3x32x32
        (under the probe budget, TAPAS_PROBE_MAX_STEPS), and Spearman correlation with a
        5-architecture panel over a family of datasets."""
        with progress_bar(json_out) as bar:
            tasks: dict[str, Any] = {}

            def cb(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total)
                bar.update(tasks[phase], completed=done, total=total)

            res = dcn_bench.run_benchmark(quick=quick, speed_threads=speed_threads, progress=cb)
        if json_out:
            print_json(res)
            return
        t = Table(title="tapas bench dcn" + (" (quick)" if quick else ""))
        t.add_column("metric")
        t.add_column("value", justify="right")
        t.add_column("target")
        t.add_row("dcn_seed_std_max", f"{res['dcn_seed_std_max']:.4f}", "<= 0.01")
        t.add_row("seconds_10k_28x28", f"{res['seconds_10k_28x28']:.1f}", "<= 30 s")
        t.add_row("seconds_10k_3x32x32", f"{res['seconds_10k_3x32x32']:.1f}", "<= 10 s")
        t.add_row("spearman_dcn_vs_panel", f"{res['spearman_dcn_vs_panel']:.3f}", ">= 0.9")
        t.add_row("dcn_spread", f"{res['dcn_spread']:.3f}", ">= 0.5")
        t.add_row("n_datasets", str(res["n_datasets"]), ">= 12")
        console.print(t)
        f = Table(title="family (DCN seed 0 vs mean panel accuracy)")
        for col in ("dataset", "DCN", "panel mean", *res["family"][0]["panel"]):
            f.add_column(col)
        for row in res["family"]:
            f.add_row(row["dataset"], f"{row['dcn']:.3f}", f"{row['panel_mean']:.3f}",
                      *(f"{v:.3f}" for v in row["panel"].values()))
        console.print(f)
