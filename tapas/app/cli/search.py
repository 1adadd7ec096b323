"""``tapas search`` (architecture search with the predictor), ``tapas rank`` (score a
file of architectures once)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from tapas.app.cli.arch import read_folder, read_genotypes, read_sources, where_invalid
from tapas.app.cli.common import (
    FORMAT_HELP,
    InputShapeOpt,
    console,
    emit,
    err_console,
    fail,
    input_shape_arg,
    plain,
    progress_bar,
    resolve_format,
    result_caveats,
)
from tapas.core.errors import DatasetNotFound, InvalidArchitecture
from tapas.core.lazy import LazyImport

# numpy, httpx, torch and the application: loaded when a command runs
app_search = LazyImport("tapas.app.search")
search_plot = LazyImport("tapas.app.search.plot")
http_client = LazyImport("tapas.app.client")
local_scorer = LazyImport("tapas.app.scorer")
app_loop = LazyImport("tapas.app.loop")
pipeline = LazyImport("tapas.app.pipeline")
core_arch = LazyImport("tapas.core.arch")


def _remote_dataset(client: Any, spec: str, quiet: bool) -> str:
    """The stored dataset called ``spec`` on the server, characterised there if needed."""
    try:
        return client.dataset(spec).name
    except DatasetNotFound:
        pass
    path = Path(spec)
    kind = "file" if path.suffix.lower() == ".npz" and path.is_file() else "spec"
    if not quiet:
        err_console.print(f"characterising {spec} on the server ...", highlight=False)
    info = (client.characterize(file=path) if kind == "file"
            else client.characterize(spec=spec))
    return info.name


def _local_dataset(scorer: Any, spec: str, quiet: bool, bar: Any = None, task: Any = None
                   ) -> str:
    """The stored dataset ``spec``, characterised here if needed, its ProbeNet epochs on
    ``bar`` (a log shows them too: :func:`~tapas.app.cli.common.progress_bar`)."""
    info = scorer.pipeline.dataset(spec)
    if info is not None and info.dcn is not None:
        return info.name
    if not quiet:
        err_console.print(f"characterising {spec} (computing its DCN) ...", highlight=False)
    progress = None
    if bar is not None:
        label = f"characterising {spec} (ProbeNet epochs)"
        bar.update(task, description=label, completed=0, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

    info, _ = scorer.pipeline.characterize(spec, progress=progress)
    return info.name


def _open_scorer(url: str | None, token: str | None, quiet: bool = False) -> Any:
    """The HTTP client for ``--url``, else the in-process scorer on the local database."""
    if url:
        try:
            return http_client.Client(url, token)
        except ValueError as e:
            fail(str(e))
    scorer = local_scorer.LocalScorer()
    if not quiet and not scorer.pipeline.database.exists():
        err_console.print(f"creating the experiment database {scorer.pipeline.database} with "
                          "the shipped data (once) ...", highlight=False)
    try:
        scorer.pipeline.open()  # a locked database fails cleanly here
    except pipeline.LDEError as e:
        fail(f"{e} (while a service holds the database, score through it with --url)")
    return scorer


def train_with_progress(scorer: Any, bar: Any, task: Any, **target: Any) -> Any:
    """``scorer.train_predictor(**target)`` with its training shown on ``bar``: epochs in
    process, the job's progress and message through a service."""
    bar.update(task, description="loading or training the predictor", total=None)
    if isinstance(scorer, http_client.Client):
        def on_job(job: Any) -> None:
            bar.update(task, description=job.message or "training the predictor (service)",
                       completed=round(100 * job.progress), total=100)

        return scorer.train_predictor(progress=on_job, **target)

    def on_epoch(epoch: int, epochs: int) -> None:
        bar.update(task, description="training the predictor (epochs)", completed=epoch,
                   total=epochs)

    return scorer.train_predictor(progress=on_epoch, **target)


def _prepare_target(scorer: Any, bar: Any, task: Any, *, url: str | None, dataset: str | None,
                    dcn: float | None, quiet: bool, train: bool) -> dict[str, Any]:
    """``{"dataset": name}`` (the dataset on the server at ``url``, else the local one,
    characterised if needed) or ``{"dcn": dcn}``; with ``train``, its predictor trained."""
    if dataset is not None:
        name = (_remote_dataset(scorer, dataset, quiet) if url
                else _local_dataset(scorer, dataset, quiet, bar, task))
        target: dict[str, Any] = {"dataset": name}
    else:
        target = {"dcn": dcn}
    if train:
        info = train_with_progress(scorer, bar, task, **target)
        prov = (info.get("provenance") if isinstance(info, dict)
                else getattr(info, "provenance", None)) or {}
        if not quiet and prov.get("origin") == "shipped":
            pid = info["id"] if isinstance(info, dict) else info.id
            bar.console.print(f"predictor {pid}: shipped with tapas (trained at release on "
                              "the default database, the same model a training here would "
                              "give), nothing trained", highlight=False)
    return target


def _print_result(res: Any) -> None:
    t = res.target
    tgt = (f"dataset {escape(t.dataset)}" if t.dataset else f"DCN {t.dcn:.4f}") + (
        f", {t.num_classes} classes, input {'x'.join(map(str, t.input_shape))}")
    table = Table(title=f"{res.strategy} on {res.space}: best of {res.queries} predictor "
                  f"queries ({tgt})", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("architecture", overflow="fold")
    table.add_column("predicted acc.", justify="right")
    table.add_column(f"{res.best[0].coverage:.0%} interval", justify="right")
    table.add_column("spread", justify="right")
    table.add_column("query", justify="right")
    for i, c in enumerate(res.best, 1):
        table.add_row(str(i), plain(c.label), f"{c.mean:.4f}", f"[{c.lower:.4f}, {c.upper:.4f}]",
                      f"{c.spread:.4f}", str(c.query))
    console.print(table)
    console.print(f"seed {res.seed}, {res.seconds:.2f} s, stop: {res.stop}, predictor "
                  f"{', '.join(res.predictors)}", highlight=False)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``search`` and ``rank`` to ``app`` (their benchmark is ``python -m
    benchmarks.search``)."""
    app.command("rank")(rank_cmd)

    @app.command("search")
    def search_cmd(
        dataset: str = typer.Option(None, "--dataset", "-d", help="Target dataset: a stored "
                                    "name/id, a built-in spec (digits, mnist1d?label_noise=0.2)"
                                    " or an .npz file; characterised first if needed."),
        dcn: float = typer.Option(None, "--dcn", min=0.0, max=1.0,
                                  help="Target DCN instead of a dataset."),
        space: str = typer.Option("nb201", "--space", "-s",
                                  help="Search space: nb201 (NAS-Bench-201 cells), chain "
                                       "(chain CNNs), nb201-small, darts (DARTS / "
                                       "NAS-Bench-301 cells) or nb101 (NAS-Bench-101)."),
        budget: int = typer.Option(1000, "--budget", "-b", min=1, max=10_000_000,
                                   help="Predictor queries (distinct architectures scored)."),
        strategy: str = typer.Option("rea", help="rea (regularized evolution), random, or "
                                     "thompson (BANANAS-style Thompson sampling on the "
                                     "ensemble)."),
        seed: int = typer.Option(0, min=0, help="Seed of the search."),
        start: Path = typer.Option(None, "--start", help="A file of genotypes of --space, "
                                   "one a line in any notation (tapas arch notations): "
                                   "scored first, the start of the population."),
        population: int = typer.Option(50, min=2, help="REA population size (thompson: "
                                       "random architectures scored first)."),
        parents: int = typer.Option(10, min=1, help="thompson: sampled parents per round."),
        sample_size: int = typer.Option(10, min=1, help="REA tournament size."),
        batch_size: int = typer.Option(None, min=1, help="Architectures scored per call "
                                       "(default 100 for random, else 10)."),
        objective: str = typer.Option("mean", help="Maximise the predicted mean, the "
                                      "interval's lower/upper bound (clipped to [0, 1]), or "
                                      "ucb: mean + spread of the ensemble (never clipped)."),
        top: int = typer.Option(10, min=1, max=1000, help="How many best architectures to list."),
        num_classes: int = typer.Option(None, min=2, help="Classes of the networks (with "
                                        "--dcn; default 10)."),
        input_shape: InputShapeOpt = None,
        url: str = typer.Option(None, "--url", help="Score through this tapas service "
                                "(default: in process, with the local database)."),
        predictor: str = typer.Option(None, "--predictor", "-p", help="Pin a registered "
                                      "predictor by id (tapas predictor list): the same "
                                      "answers whatever is trained meanwhile."),
        token: str = typer.Option(None, "--token", envvar="TAPAS_API_TOKEN",
                                  help="Bearer token for the service's write routes."),
        out: Path = typer.Option(None, "--out", "-o", help="Save the result: .json or "
                                 ".parquet load back with SearchResult.load; .csv holds the "
                                 "table of best architectures."),
        fmt: str = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
        plot: Path = typer.Option(None, "--plot", help="Draw best-so-far and every query's "
                                  "prediction into this PNG."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object "
                                      "(= --format json)."),
        train: int = typer.Option(None, "--train", help="The lifelong loop: train this many "
                                  "of the most promising networks per round for real (the "
                                  "experiment runner, into the LDE), adapt the predictor to "
                                  "them, repeat (--rounds). --budget is then each round's "
                                  "predictor queries."),
        rounds: int = typer.Option(None, "--rounds", help="Rounds of the loop (with --train; "
                                   "default 3). Networks already trained by an earlier loop "
                                   "on the dataset count: a stopped loop resumes."),
        lookup: Path = typer.Option(None, "--lookup", help="With --train: look the accuracies "
                                    "up in a NAS-Bench-201 table (nb201.csv) instead of "
                                    "training (datasets cifar10, cifar100, ImageNet16-120)."),
        workers: int = typer.Option(0, "--workers", min=0, help="With --train: training "
                                    "processes (0: this one)."),
    ) -> None:
        """Search architectures with the predictor instead of training them (with --train:
        train a few per round and learn from them)."""
        OBJECTIVES, SPACES, STRATEGIES = (app_search.OBJECTIVES, app_search.SPACES,
                                          app_search.STRATEGIES)
        if (dataset is None) == (dcn is None):
            fail("give exactly one of --dataset and --dcn")
        if space not in SPACES:
            fail(f"--space must be one of {', '.join(SPACES)}, got {space!r}")
        if strategy not in STRATEGIES:
            fail(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        if objective not in OBJECTIVES:
            fail(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        if strategy == "rea" and sample_size > population:
            fail(f"--sample-size ({sample_size}) cannot exceed --population ({population})")
        shape = input_shape_arg(input_shape)
        dest = resolve_format(fmt, out, json_out)
        quiet = dest.quiet
        if train is not None or rounds is not None or lookup is not None:
            _loop(dataset=dataset, space=space, train=train, rounds=rounds, lookup=lookup,
                  strategy=strategy, seed=seed, budget=budget, workers=workers, url=url,
                  predictor=predictor, plot=plot, dest=dest,
                  search_kw=({"population": population, "sample_size": sample_size}
                             if strategy == "rea" else {"population": population,
                                                        "parents": parents}
                             if strategy == "thompson" else {}))
            return
        if plot is not None and (plot.is_dir() or plot.suffix.lower() != ".png"):
            fail(f"--plot needs a .png file name, got {plot}")
        kw: dict[str, Any] = {"budget": budget, "seed": seed, "objective": objective,
                              "top_k": top, "num_classes": num_classes, "input_shape": shape,
                              "batch_size": batch_size or (100 if strategy == "random" else 10)}
        if start is not None:
            if not start.is_file():
                fail(f"--start {start}: no such file")
            kw["start"] = read_genotypes(start, space)
        if strategy == "rea":
            kw.update(population=population, sample_size=sample_size)
        elif strategy == "thompson":
            kw.update(population=population, parents=parents)

        scorer = _open_scorer(url, token, quiet)
        try:
            with progress_bar(quiet) as bar:
                task = bar.add_task("preparing", total=None)
                kw.update(_prepare_target(scorer, bar, task, url=url, dataset=dataset,
                                          dcn=dcn, quiet=quiet, train=predictor is None))

                def progress(done: int, total: int, best: float) -> None:
                    bar.update(task, description=f"{strategy}: best {best:.4f}",
                               completed=done, total=total)

                pinned = app_search.Pinned(scorer, predictor) if predictor else scorer
                res = STRATEGIES[strategy](pinned, space, progress=progress, **kw)
        except ValueError as e:  # not only domain errors (those exit from the root command)
            fail(str(e))
        finally:
            scorer.close()
        if plot is not None:
            search_plot.plot_search(res, plot)
            if not quiet:
                err_console.print(f"plot saved to {plot}", highlight=False)
        rows = res.rows()
        emit(dest, obj=res.to_dict(), rows=rows, table=lambda: _print_result(res))
        result_caveats(rows)


def _loop_trainer(name: str, space: str, lookup: Path | None,
                  workers: int) -> Any:
    """The loop's trainer for stored dataset ``name``: a lookup in ``lookup``, else the
    experiment runner on the dataset's spec."""
    if lookup is not None:
        try:
            table = app_loop.nb201_table(lookup, name)
        except (ValueError, FileNotFoundError) as e:
            fail(f"--lookup {lookup}: {e}")
        if space != "nb201":
            fail(f"--lookup reads NAS-Bench-201 cells: use --space nb201, not {space!r}")
        return app_loop.LookupTrainer(table, name, app_search.get_space(space),
                                      name=f"nb201-table:{lookup.name}", epochs=200)
    try:
        trainer = app_loop.RunnerTrainer(name, workers=workers)
    except (ValueError, OSError) as e:
        fail(f"--train cannot train on dataset {name!r}: {e} (give a built-in spec or an "
             ".npz file as --dataset, or --lookup with a table of results)")
    if trainer.dataset != name:
        fail(f"--train: the spec {name!r} loads as dataset {trainer.dataset!r}; give that name")
    return trainer


def _loop(*, dataset: str | None, space: str, train: int | None, rounds: int | None,
          lookup: Path | None, strategy: str, seed: int, budget: int, workers: int,
          url: str | None, predictor: str | None, plot: Path | None, dest: Any,
          search_kw: dict[str, Any]) -> None:
    """``tapas search --train K --rounds R``: the lifelong loop, in process."""
    if train is None:
        fail("--rounds and --lookup belong to the loop: give --train K (networks per round)")
    rounds = 3 if rounds is None else rounds
    if dataset is None:
        fail("--train needs --dataset (the networks are trained on it), not --dcn")
    if url:
        fail("--train runs in process (it writes the trained networks to the local LDE); "
             "drop --url")
    if plot is not None:
        fail("--plot draws a search without --train")
    try:
        app_loop.check_loop(train, rounds, app_search.get_space(space))
    except ValueError as e:
        fail(f"--train/--rounds: {e}")
    quiet = dest.quiet
    scorer = _open_scorer(None, None, quiet)
    try:
        with progress_bar(quiet) as bar:
            task = bar.add_task("preparing", total=None)
            target = _prepare_target(scorer, bar, task, url=None, dataset=dataset, dcn=None,
                                     quiet=quiet, train=False)
            bar.update(task, description="loading or training the predictor", total=None)
            trainer = _loop_trainer(target["dataset"], space, lookup, workers)

            def progress(st: Any) -> None:
                what = {"search": "proposing", "train": "training",
                        "round": "done"}[st.phase]
                best = "-" if st.best != st.best else f"{st.best:.4f}"
                part = f" {st.done}/{st.total}" if st.phase == "train" and st.total else ""
                bar.update(task, description=f"round {st.round}/{st.rounds} {what}{part}: "
                           f"{st.trained}/{st.budget} trained, best true {best}",
                           completed=st.trained, total=st.budget)

            res = app_loop.lifelong_search(scorer, trainer, space, train=train,
                                           rounds=rounds, seed=seed, strategy=strategy,
                                           search_budget=max(budget, train),
                                           predictor=predictor, progress=progress,
                                           **search_kw)
    except (ValueError, app_loop.TrainingFailed) as e:
        fail(str(e))
    finally:
        scorer.close()
    rows = res.rows()
    emit(dest, obj=res.to_dict(), rows=rows, table=lambda: _print_loop(res))


def _print_loop(res: Any) -> None:
    table = Table(title=f"lifelong loop on {res.space}, dataset {escape(res.dataset)}: "
                  f"{len(res.trained)} networks ({res.new} trained now), {res.train} a round",
                  title_justify="left")
    for col in ("#", "round", "architecture", "true acc.", "predicted", "zero-shot", "from"):
        table.add_column(col, justify="left" if col == "architecture" else "right",
                         overflow="fold" if col == "architecture" else "ellipsis")
    for r in res.rows():
        pred = "-" if r["predicted"] is None else f"{r['predicted']:.4f}"
        base = "-" if r["base"] is None else f"{r['base']:.4f}"
        table.add_row(str(r["order"]), str(r["round"]), plain(r["label"]),
                      f"{r['accuracy']:.4f}", pred, base, "LDE" if r["reused"] else "trained")
    console.print(table)
    per = ", ".join("-" if b is None else f"{b:.4f}" for b in res.to_dict()["best_per_round"])
    console.print(f"best true accuracy {res.best.accuracy:.4f} ({plain(res.best.label)}); "
                  f"after each round: {per}; predictor {res.predictor}, seed {res.seed}, "
                  f"{res.seconds:.1f} s", highlight=False)


def rank_cmd(
    dataset: str = typer.Option(None, "--dataset", "-d", help="Target dataset (stored name/id, "
                                "built-in spec or .npz); characterised first if needed."),
    dcn: float = typer.Option(None, "--dcn", min=0.0, max=1.0,
                              help="Target DCN instead of a dataset."),
    archs: Path = typer.Option(..., "--archs", "-a", help="A text file of architectures, one "
                               "a line in any notation (tapas arch notations; '#' comments),"
                               " or a folder of .json files."),
    out: Path = typer.Option(None, "--out", "-o", help="Write every ranked architecture "
                             "(.parquet, .csv or .json)."),
    fmt: str = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
    top: int = typer.Option(20, min=1, help="Rows shown in the table (files get all)."),
    num_classes: int = typer.Option(None, min=2, help="Classes the genotypes are built for "
                                    "(default: the dataset's, else 10)."),
    input_shape: InputShapeOpt = None,
    url: str = typer.Option(None, "--url", help="Score through this tapas service."),
    token: str = typer.Option(None, "--token", envvar="TAPAS_API_TOKEN",
                              help="Bearer token for the service's write routes."),
    predictor: str = typer.Option(None, "--predictor", "-p", help="Pin a registered "
                                  "predictor by id (tapas predictor list)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Score a file of architectures once and rank them by predicted accuracy."""
    if (dataset is None) == (dcn is None):
        fail("give exactly one of --dataset and --dcn")
    dest = resolve_format(fmt, out, json_out)
    quiet = dest.quiet
    shape = input_shape_arg(input_shape)
    if archs.is_dir():
        sources = read_folder(archs)
    elif archs.is_file():
        sources = read_sources(file=archs)
    else:
        fail(f"--archs {archs}: no such file or folder")
    if not sources:
        fail(f"{archs}: no architectures (one a line, in any notation of tapas arch "
             "notations)")
    items = [s.value for s in sources]
    scorer = _open_scorer(url, token, quiet)
    preds: list[Any] = []
    try:
        with progress_bar(quiet) as bar:
            task = bar.add_task("preparing", total=None)
            target = _prepare_target(scorer, bar, task, url=url, dataset=dataset, dcn=dcn,
                                     quiet=quiet, train=predictor is None)
            bar.update(task, description="scoring", total=len(items), completed=0)
            step = 2_000
            pin = {} if predictor is None else {"predictor": predictor}
            for start in range(0, len(items), step):
                try:
                    preds += scorer.predict(items[start:start + step],
                                            num_classes=num_classes, input_shape=shape,
                                            **target, **pin)
                except InvalidArchitecture as e:
                    fail(where_invalid(e, sources, start))
                bar.update(task, completed=min(start + step, len(items)))
    except ValueError as e:  # not only domain errors (those exit from the root command)
        fail(str(e))
    finally:
        scorer.close()
    order = sorted(range(len(preds)), key=lambda i: (-preds[i].mean, i))
    rows = [{"rank": r, "arch": sources[i].label, **preds[i].row()}
            for r, i in enumerate(order, 1)]
    pid = preds[0].predictor if preds else predictor
    obj = {"target": target, "predictor": pid, "dcn": preds[0].dcn if preds else dcn,
           "coverage": preds[0].coverage if preds else None, "source": str(archs),
           "results": rows}

    def table() -> None:
        t = Table(title=f"{len(rows)} architectures from {archs} ranked by predicted "
                  f"accuracy ({next(iter(target.values()))}, predictor {pid})",
                  title_justify="left")
        for col in ("rank", "architecture", "mean", "interval", "spread", "in_domain"):
            t.add_column(col, justify="left" if col == "architecture" else "right",
                         overflow="fold" if col == "architecture" else "ellipsis")
        for r in rows[:top]:
            t.add_row(str(r["rank"]), plain(r["arch"]), f"{r['mean']:.4f}",
                      f"[{r['lower']:.4f}, {r['upper']:.4f}]", f"{r['spread']:.4f}",
                      "yes" if r["in_domain"] else "[yellow]no[/]")
        console.print(t)
        if len(rows) > top:
            console.print(f"... {len(rows) - top} more (--top, or --out FILE for all)",
                          highlight=False)

    emit(dest, obj=obj, rows=rows, table=table)
    result_caveats(rows)
