"""``tapas search`` (architecture search with the predictor) and ``tapas bench search``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tapas.cli.common import console, err_console, fail, print_json


def _shape(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        fail(f"--input-shape must look like 3x32x32, got {text!r}")
    if len(shape) != 3 or min(shape) < 1:
        fail(f"--input-shape must be three positive sizes C x H x W, got {text!r}")
    return shape  # type: ignore[return-value]


def _remote_dataset(client: Any, spec: str, quiet: bool) -> str:
    """The stored dataset called ``spec`` on the server, characterised there if needed."""
    from tapas.client import TapasError

    try:
        return client.dataset(spec).name
    except TapasError as e:
        if e.status != 404:
            raise
    path = Path(spec)
    kind = "file" if path.suffix.lower() == ".npz" and path.is_file() else "spec"
    if not quiet:
        err_console.print(f"characterising {spec} on the server ...", highlight=False)
    info = (client.characterize(file=path) if kind == "file"
            else client.characterize(spec=spec))
    return info.name


def _local_dataset(scorer: Any, spec: str, quiet: bool) -> str:
    info = scorer.pipeline.dataset(spec)
    if info is not None and info.dcn is not None:
        return info.name
    if not quiet:
        err_console.print(f"characterising {spec} (computing its DCN) ...", highlight=False)
    info, _ = scorer.pipeline.characterize(spec)
    return info.name


def _print_result(res: Any, saved: Path | None) -> None:
    from rich.table import Table

    t = res.target
    tgt = (f"dataset {t.dataset}" if t.dataset else f"DCN {t.dcn:.4f}") + (
        f", {t.num_classes} classes, input {'x'.join(map(str, t.input_shape))}")
    table = Table(title=f"{res.strategy} on {res.space}: best of {res.queries} predictor "
                  f"queries ({tgt})", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("architecture")
    table.add_column("predicted acc.", justify="right")
    table.add_column(f"{res.best[0].coverage:.0%} interval", justify="right")
    table.add_column("spread", justify="right")
    table.add_column("query", justify="right")
    for i, c in enumerate(res.best, 1):
        table.add_row(str(i), c.label, f"{c.mean:.4f}", f"[{c.lower:.4f}, {c.upper:.4f}]",
                      f"{c.spread:.4f}", str(c.query))
    console.print(table)
    console.print(f"seed {res.seed}, {res.seconds:.2f} s, predictor "
                  f"{', '.join(res.predictors)}" + (f"; saved to {saved}" if saved else ""),
                  highlight=False)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``search`` to ``app`` and ``search`` to ``bench``."""

    @app.command("search")
    def search_cmd(
        dataset: str = typer.Option(None, "--dataset", "-d", help="Target dataset: a stored "
                                    "name/id, a built-in spec (digits, mnist1d?label_noise=0.2)"
                                    " or an .npz file; characterised first if needed."),
        dcn: float = typer.Option(None, "--dcn", min=0.0, max=1.0,
                                  help="Target DCN instead of a dataset."),
        space: str = typer.Option("nb201", "--space", "-s",
                                  help="Search space: nb201 (NAS-Bench-201 cells), chain "
                                       "(chain CNNs) or nb201-small."),
        budget: int = typer.Option(1000, "--budget", "-b", min=1, max=10_000_000,
                                   help="Predictor queries (distinct architectures scored)."),
        strategy: str = typer.Option("rea", help="rea (regularized evolution) or random."),
        seed: int = typer.Option(0, min=0, help="Seed of the search."),
        population: int = typer.Option(50, min=2, help="REA population size."),
        sample_size: int = typer.Option(10, min=1, help="REA tournament size."),
        batch_size: int = typer.Option(None, min=1, help="Architectures scored per call "
                                       "(default 10 for rea, 100 for random)."),
        objective: str = typer.Option("mean", help="Maximise the predicted mean, or the "
                                      "interval's lower/upper bound."),
        top: int = typer.Option(10, min=1, max=1000, help="How many best architectures to list."),
        num_classes: int = typer.Option(None, min=2, help="Classes of the networks (with "
                                        "--dcn; default 10)."),
        input_shape: str = typer.Option(None, help="Input C x H x W of the networks (with "
                                        "--dcn; default 3x32x32)."),
        url: str = typer.Option(None, "--url", help="Score through this tapas service "
                                "(default: in process, with the local database)."),
        token: str = typer.Option(None, "--token", envvar="TAPAS_API_TOKEN",
                                  help="Bearer token for the service's write routes."),
        out: Path = typer.Option(None, "--out", "-o", help="Save the result as JSON here."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Search architectures with the predictor instead of training them."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from tapas.client import TapasError
        from tapas.search import OBJECTIVES, SPACE_NAMES, STRATEGIES

        if (dataset is None) == (dcn is None):
            fail("give exactly one of --dataset and --dcn")
        if space not in SPACE_NAMES:
            fail(f"--space must be one of {', '.join(SPACE_NAMES)}, got {space!r}")
        if strategy not in STRATEGIES:
            fail(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        if objective not in OBJECTIVES:
            fail(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        if strategy == "rea" and sample_size > population:
            fail(f"--sample-size ({sample_size}) cannot exceed --population ({population})")
        shape = _shape(input_shape)
        if out is not None and out.is_dir():
            fail(f"--out {out} is a folder; give a file name")
        kw: dict[str, Any] = {"budget": budget, "seed": seed, "objective": objective,
                              "top_k": top, "num_classes": num_classes, "input_shape": shape,
                              "batch_size": batch_size or (10 if strategy == "rea" else 100)}
        if strategy == "rea":
            kw.update(population=population, sample_size=sample_size)

        scorer: Any
        if url:
            from tapas.client import Client

            try:
                scorer = Client(url, token)
            except ValueError as e:
                fail(str(e))
        else:
            from tapas.pipeline import LDEError
            from tapas.scorer import LocalScorer

            scorer = LocalScorer()
            try:
                scorer.pipeline.open()  # a locked database fails cleanly here
            except LDEError as e:
                fail(f"{e} (while a service holds the database, search through it with --url)")
        try:
            with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
                    "{task.completed}/{task.total}"), TimeElapsedColumn(),
                    console=err_console, transient=True, disable=json_out) as bar:
                task = bar.add_task("preparing", total=None)
                if dataset is not None:
                    name = (_remote_dataset(scorer, dataset, json_out) if url
                            else _local_dataset(scorer, dataset, json_out))
                    kw["dataset"] = name
                    bar.update(task, description="loading or training the predictor")
                    scorer.train_predictor(dataset=name)
                else:
                    kw["dcn"] = dcn
                    bar.update(task, description="loading or training the predictor")
                    scorer.train_predictor(dcn=dcn)

                def progress(done: int, total: int, best: float) -> None:
                    bar.update(task, description=f"{strategy}: best {best:.4f}",
                               completed=done, total=total)

                res = STRATEGIES[strategy](scorer, space, progress=progress, **kw)
        except TapasError as e:
            fail(str(e))
        except (ValueError, LookupError) as e:
            fail(str(e))
        except Exception as e:
            from tapas.pipeline import LDEError

            if isinstance(e, LDEError):
                fail(str(e))
            raise
        finally:
            scorer.close()
        obj = res.to_dict()
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(obj, indent=1) + "\n")
        if json_out:
            print_json(obj)
        else:
            _print_result(res, out)

    @bench.command("search")
    def bench_search(
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
        from rich.progress import Progress
        from rich.table import Table

        from tapas.bench.search import BenchError, run_benchmark

        with Progress(console=err_console, transient=True, disable=json_out) as bar:
            task = bar.add_task("starting", total=None)

            def progress(phase: str, done: int, total: int) -> None:
                bar.update(task, description=phase, completed=done, total=total)

            try:
                res = run_benchmark(seeds=seeds, budget=budget,
                                    targets=[t.strip() for t in targets.split(",") if t.strip()],
                                    data=data, train_cells=train_cells, progress=progress)
            except BenchError as e:
                fail(str(e))
        if json_out:
            print_json(res)
            return
        table = Table(title=f"tapas bench search: NAS-Bench-201, target unseen, {budget} "
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
