"""``tapas experiments``: plan and run training experiments into the LDE.

``tapas experiments run --preset starter --workers 2 --db /tmp/starter.duckdb`` is
the exact command that generated the shipped starter data (see
``lde/starter/DATA_CARD.md``); ``--slice A:B`` runs part of a plan (e.g. one Slurm
array task), and running the same command again trains only what is missing.
``--backend ray`` runs one Ray task per job on a local Ray instance or, with
``--address``, on a running cluster; this process alone writes the LDE.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tapas.app.cli.common import console, fail, open_pipeline, print_json, progress_bar
from tapas.core.lazy import LazyImport

# torch, duckdb and the experiment runner: loaded when a command runs
experiments = LazyImport("tapas.app.experiments")
backends = LazyImport("tapas.app.experiments.backends")
exp_plan = LazyImport("tapas.app.experiments.plan")
exp_verify = LazyImport("tapas.app.experiments.verify")
probenet_datasets = LazyImport("probenet.datasets")
starter = LazyImport("lde.starter")
config = LazyImport("tapas.core.config")
core_spaces = LazyImport("tapas.core.spaces")

experiments_app = typer.Typer(help="Train sampled architectures on datasets, into the LDE.",
                              no_args_is_help=True)

DatasetsOpt = Annotated[list[str] | None, typer.Option(
    "--dataset", "-d", help="Dataset spec (repeatable), e.g. 'digits?label_noise=0.3'.")]
SpaceOpt = Annotated[list[str] | None, typer.Option(
    "--space", "-s", help="Search space (repeatable): chain, nb201-small (the starter's "
                          "NAS-Bench-201 cells), darts or nb101; optionally NAME:N archs.")]
NArchsOpt = Annotated[int, typer.Option("--n-archs", "-n", min=1,
                                        help="Architectures per space (unless NAME:N).")]
PerArchOpt = Annotated[int, typer.Option("--datasets-per-arch", "-k", min=1,
                                         help="Datasets each architecture trains on.")]
PresetOpt = Annotated[str | None, typer.Option(
    "--preset", help="'starter': the plan of the shipped starter data, four seeds per "
                     "network; 'starter-noise': its first 60 networks per dataset with four "
                     "seeds more; 'starter-v2': the 16x16/28x28 gray and 32x32 RGB datasets, "
                     "four seeds; 'families': DARTS, NAS-Bench-101, NAS-Bench-Macro and ResNet "
                     "families, 150 networks each on six v2 datasets, two seeds (four for the "
                     "first 60); 'sealed': the sealed test suite (issue 39), only into a --db "
                     "of its own, never the default database (other options except "
                     "--slice/--workers/--db are ignored).")]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", min=1,
                                               help="Override the recipe's epochs.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Sampling seed.")]
SliceOpt = Annotated[str | None, typer.Option(
    "--slice", help="Only jobs A:B of the plan (0-based, end excluded).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
BackendOpt = Annotated[str, typer.Option(
    "--backend", help="Where jobs run: local (a process pool of --workers) or ray (one Ray "
                      "task per job; needs the 'ray' extra).")]
AddressOpt = Annotated[str | None, typer.Option(
    "--address", help="Ray cluster to join with --backend ray: 'auto' or 'ray://host:10001' "
                      "(default: start a local Ray instance of --workers CPUs).")]


@contextmanager
def _backend(backend: str, address: str | None, workers: int) -> Iterator[None]:
    """Check the backend and, for Ray, hold one session for the whole command."""
    try:
        backends.check_backend(backend)
        if backend == "ray":
            with backends.ray_session(address, workers):
                yield
        else:
            if address:
                fail("--address is for --backend ray")
            yield
    except backends.BackendError as e:
        fail(str(e))


def _parse_spaces(spaces: list[str] | None, n_archs: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in spaces or ["chain"]:
        name, _, n = item.partition(":")
        if name not in core_spaces.SPACES:
            fail(f"--space {item!r}: unknown space {name!r}; expected one of "
                 f"{', '.join(core_spaces.SPACES)}")
        try:
            out[name] = int(n) if n else n_archs
        except ValueError:
            fail(f"--space {item!r}: the count after ':' must be an integer")
        if out[name] < 1:
            fail(f"--space {item!r}: the count must be at least 1")
    return out


def _slice(jobs: list[Any], text: str | None) -> list[Any]:
    if not text:
        return jobs
    try:
        a, _, b = text.partition(":")
        lo = int(a) if a else 0
        hi = int(b) if b else len(jobs)
    except ValueError:
        fail(f"--slice must be A:B with integers, got {text!r}")
    if lo < 0 or hi < lo:
        fail(f"--slice {text!r}: need 0 <= A <= B")
    return jobs[lo:hi]


def _make_plan(preset: str | None, datasets: list[str] | None, spaces: list[str] | None,
               n_archs: int, per_arch: int, epochs: int | None, seed: int, source: str | None):
    try:
        if preset is not None:
            presets = {"starter": exp_plan.starter_plan,
                       "starter-noise": exp_plan.starter_noise_plan,
                       "starter-v2": exp_plan.starter_v2_plan,
                       "families": exp_plan.families_plan,
                       "sealed": exp_plan.sealed_plan}
            if preset not in presets:
                fail(f"unknown --preset {preset!r}; expected one of {', '.join(presets)}")
            return presets[preset]()
        if not datasets:
            fail("give at least one --dataset (or --preset starter)")
        recipe = dict(exp_plan.STARTER_RECIPE)
        if epochs:
            recipe["epochs"] = epochs
        return exp_plan.plan_jobs(datasets, _parse_spaces(spaces, n_archs), per_arch, recipe,
                           seed=seed, source=source or "tapas-experiments")
    except probenet_datasets.DatasetError as e:
        fail(str(e))
    except ValueError as e:
        fail(str(e))


def _progress(disable: bool = False):  # noqa: ANN202
    """The CLI's progress display with each task's ``info`` (the last result)."""
    return progress_bar(disable, info=True)


def _check_sealed_db(db: Path | None) -> None:
    """The sealed suite lives apart from the training data: refuse the default database
    (the LDE every predictor trains on) as its destination."""
    default = Path(config.get_settings().database).expanduser().resolve()
    if db is None or db.expanduser().resolve() == default:
        fail("--preset sealed writes the sealed test suite, which must never be in the "
             f"database predictors train on ({default}); give --db a file of its own, "
             "e.g. --db /work/sealed/lde.duckdb (lde/sealed/DATA_CARD.md)")


@experiments_app.command("plan")
def plan_cmd(dataset: DatasetsOpt = None, space: SpaceOpt = None, n_archs: NArchsOpt = 20,
             datasets_per_arch: PerArchOpt = 8, preset: PresetOpt = None,
             epochs: EpochsOpt = None, seed: SeedOpt = 0, slice_: SliceOpt = None,
             as_json: JsonOpt = False) -> None:
    """Show what a run would train: jobs per dataset and space, architectures."""
    p = _make_plan(preset, dataset, space, n_archs, datasets_per_arch, epochs, seed, None)
    p = exp_plan.Plan(_slice(p.jobs, slice_), p.datasets)
    s = p.summary()
    if as_json:
        print_json(s)
        return
    t = Table(title=f"{s['jobs']} jobs, {s['architectures']} architectures, "
                    f"{s['datasets']} datasets")
    t.add_column("dataset")
    t.add_column("shape")
    t.add_column("classes", justify="right")
    t.add_column("jobs", justify="right")
    for spec, n in s["per_dataset"].items():
        info = p.datasets[spec]
        t.add_row(spec, "x".join(map(str, info["input_shape"])), str(info["num_classes"]), str(n))
    console.print(t)
    console.print(f"per space: {s['per_space']}; architectures on >= 8 datasets: "
                  f"{s['archs_on_8_or_more_datasets']}")


@experiments_app.command("run")
def run_cmd(dataset: DatasetsOpt = None, space: SpaceOpt = None, n_archs: NArchsOpt = 20,
            datasets_per_arch: PerArchOpt = 8, preset: PresetOpt = None,
            epochs: EpochsOpt = None, seed: SeedOpt = 0, slice_: SliceOpt = None,
            workers: Annotated[int | None, typer.Option(
                "--workers", "-w", min=0, help="Worker processes, one torch thread each "
                "(0: in this one; default: the TAPAS_THREADS budget).")] = None,
            db: Annotated[Path | None, typer.Option("--db", help="LDE file (default: the "
                                                    "configured database).")] = None,
            source: Annotated[str | None, typer.Option(help="Source tag of the records.")] = None,
            device: Annotated[str, typer.Option(help="cpu|cuda|auto for training.")] = "cpu",
            skip_dcn: Annotated[bool, typer.Option(
                "--skip-dcn", help="Register datasets without computing DCNs (e.g. one "
                "slice of a cluster run; characterise once, centrally).")] = False,
            datasets_only: Annotated[bool, typer.Option(
                "--datasets-only", help="Register and characterise all the plan's datasets, "
                "train nothing.")] = False,
            backend: BackendOpt = "local", address: AddressOpt = None,
            batch_size: Annotated[int, typer.Option(
                "--batch-size", min=1, help="Results per LDE write (a killed run loses at "
                "most one unwritten batch).")] = 64,
            as_json: JsonOpt = False) -> None:
    """Train the planned jobs not yet in the LDE (resumable) and record the results."""
    workers = config.thread_budget() if workers is None else workers
    if preset == "sealed":
        _check_sealed_db(db)
    p = _make_plan(preset, dataset, space, n_archs, datasets_per_arch, epochs, seed, source)
    jobs = [] if datasets_only else _slice(p.jobs, slice_)
    src = p.jobs[0].source if p.jobs else (source or "tapas-experiments")
    wanted = sorted(p.datasets) if datasets_only else sorted({j.dataset for j in jobs})
    # the default database starts with the starter data; a new --db file empty
    with open_pipeline(db, seed=db is None) as app, _backend(backend, address, workers), \
            _progress(disable=as_json) as bar:
        store = app.store
        task = bar.add_task("datasets (DCN)", total=None, info="")

        def ds_cb(done: int, total: int, r: dict[str, Any] | None) -> None:
            info = f"{r['name']}: DCN {r['dcn']:.3f}" if r else ""
            bar.update(task, completed=done if total else 1, total=total or 1, info=info)

        try:
            experiments.ensure_datasets(store, wanted, workers=workers, source=src,
                                        device=device, callback=ds_cb, dcn=not skip_dcn,
                                        backend=backend, address=address)
        except ValueError as e:
            fail(str(e))
        jt = bar.add_task("experiments", total=None, info="")
        accs: list[float] = []

        def job_cb(done: int, total: int, r: dict[str, Any] | None) -> None:
            if r is not None:
                accs.append(r["accuracy"])
            info = f"last acc {accs[-1]:.3f}" if accs else ""
            bar.update(jt, completed=done, total=total, info=info)

        rep = experiments.run_jobs(jobs, store, workers=workers, device=device, callback=job_cb,
                       batch_size=batch_size, backend=backend, address=address)
        stats = store.counts()
    out = {**rep.to_dict(), "backend": backend, "db": str(store.path), "store": stats}
    if as_json:
        print_json(out)
    else:
        console.print(f"trained {rep.trained}, already done {rep.already_done}, "
                      f"written {rep.written}, failed {len(rep.failed)} in {rep.seconds:.0f} s "
                      f"(compute {rep.compute_seconds:.0f} s); database {store.path}: "
                      f"{stats['experiments']} experiments")
        for key, err in rep.failed[:10]:
            console.print(f"[red]failed[/] {key}: {err}", highlight=False)
    if rep.interrupted:
        raise typer.Exit(130)
    if rep.failed:
        raise typer.Exit(1)


@experiments_app.command("verify")
def verify_cmd(
        directory: Annotated[Path | None, typer.Argument(
            help="LDE export to check (default: the shipped starter data).")] = None,
        slice_: Annotated[str, typer.Option("--slice", help="Rows A:B (in write order).")
                          ] = "0:20",
        workers: Annotated[int | None, typer.Option(
            "--workers", "-w", min=0, help="Worker processes, one torch thread each (0: in "
            "this one; default: the TAPAS_THREADS budget).")] = None,
        seed_offset: Annotated[int, typer.Option(
            help="Re-run with seed + this (0: the stored seed, measures reproducibility; "
                 "1: another seed, measures seed-to-seed noise).")] = 0,
        backend: BackendOpt = "local", address: AddressOpt = None,
        as_json: JsonOpt = False) -> None:
    """Re-train stored experiments from their recorded jobs and compare accuracies."""
    workers = config.thread_budget() if workers is None else workers

    d = directory or starter.STARTER_DIR
    if not starter.available(d):
        fail(f"{d} is not an LDE export with experiments")
    lo_s, _, hi_s = slice_.partition(":")
    try:
        lo, hi = int(lo_s or 0), (int(hi_s) if hi_s else None)
    except ValueError:
        fail(f"--slice must be A:B with integers, got {slice_!r}")
    with _backend(backend, address, workers):
        out = exp_verify.verify(d, lo, hi, workers, seed_offset, backend, address)
    if as_json:
        print_json(out)
        return
    console.print(f"{out['n']} re-run (seed offset {seed_offset}): {out['identical']} "
                  f"identical, max |diff| {out['max_abs_diff']}, mean |diff| "
                  f"{out['mean_abs_diff']}")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``tapas experiments`` to ``app`` (its benchmark is ``python -m
    benchmarks.experiments``)."""
    app.add_typer(experiments_app, name="experiments")
