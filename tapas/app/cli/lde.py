"""CLI of the LDE: ``tapas ingest``, ``tapas lde stats|export|import`` and ``tapas bench lde``."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from tapas.app.cli.common import (
    console,
    err_console,
    fail,
    open_pipeline,
    print_json,
    print_metrics,
    progress_bar,
)
from tapas.core.lazy import LazyImport

# duckdb, httpx, pydantic: loaded when a command runs
http_client = LazyImport("tapas.app.client")
records = LazyImport("tapas.core.records")
config = LazyImport("tapas.core.config")
lde_ingest = LazyImport("lde.ingest")
default_data = LazyImport("lde.default_data")
lde_bench = LazyImport("tapas.app.bench.lde")

lde_app = typer.Typer(help="The Lifelong Database of Experiments (DuckDB).",
                      no_args_is_help=True)

_DB = typer.Option(None, "--db", help="Database file (default: TAPAS_DB_PATH or "
                                     "TAPAS_HOME/lde.duckdb).")


@contextmanager
def _progress(enabled: bool) -> Any:
    """The CLI's progress display (:func:`~tapas.app.cli.common.progress_bar`) fed by
    ``progress(phase, done, total)`` callbacks, one task per phase."""
    if not enabled:
        yield None
        return
    with progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def cb(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=max(total, 1))
            bar.update(tasks[phase], completed=done, total=max(total, 1))

        yield cb


def _print_report(rep: Any, as_json: bool, show: int, title: str) -> None:
    """An ingest report (``IngestReport`` or its ``to_dict()`` form) as a table or JSON."""
    d = rep if isinstance(rep, dict) else rep.to_dict()
    if as_json:
        print_json(d)
        return
    t = Table(title=title, show_header=False)
    rejected = d.get("rejected", [])
    for label, key in (("experiments added", "added"), ("skipped (already present)", "skipped"),
                       ("architectures added", "architectures_added"),
                       ("datasets added", "datasets_added")):
        if key in d:
            t.add_row(label, f"{d[key]:,}")
    t.add_row("rejected", f"{len(rejected):,}")
    if "seconds" in d:
        t.add_row("seconds", f"{d['seconds']:.2f}")
    console.print(t)
    for r in rejected[:show]:
        where = r["where"]
        label = f"line {where}" if isinstance(where, int) else str(where)
        console.print(f"  [yellow]rejected[/] {label}: {r['reason']}", highlight=False)
    if len(rejected) > show:
        console.print(f"  ... and {len(rejected) - show:,} more (use --json for all)")


def _ingest_remote(url: str, path: Path, token: str | None, source: str | None,
                   as_json: bool, show: int) -> None:
    """``tapas ingest --url``: send own records to a running server (which holds the LDE)."""
    if path.is_dir() or path.suffix.lower() not in records.RECORD_SUFFIXES:
        fail(f"--url sends own experiment records (.jsonl, .csv, .parquet); {path} is not one. "
             "Stop the server to ingest NAS-Bench-201 tables or exports locally.")
    with _progress(not as_json) as cb:
        try:
            with http_client.Client(url, token) as client:
                rep = client.ingest_file(path, source=source,
                                         progress=(lambda done, total: cb("send", done, total))
                                         if cb else None)
        except (http_client.TapasError, records.RecordError, ValueError) as e:
            fail(str(e))
    _print_report(rep, as_json, show, f"ingest {path.name} -> {url}")
    _fail_if_all_rejected(rep)


def _fail_if_all_rejected(rep: Any) -> None:
    """Exit 1 when records were given and every one was rejected (scripts must notice)."""
    d = rep if isinstance(rep, dict) else rep.to_dict()
    if d.get("rejected") and not d.get("added") and not d.get("skipped"):
        fail(f"every record was rejected ({len(d['rejected']):,}); nothing was stored")


def ingest(
    path: Path = typer.Argument(..., help="Records (.jsonl/.csv/.parquet), a NAS-Bench-201 "
                                          "table (.csv with arch_str) or an export folder."),
    fmt: str = typer.Option("auto", "--format", "-f",
                            help="auto | records | nb201 | lde (an export folder)."),
    dcn: list[str] = typer.Option([], "--dcn", help="NAME=VALUE: the DCN of a dataset "
                                                    "(repeatable), e.g. --dcn cifar10=0.91."),
    dcn_file: Path | None = typer.Option(None, "--dcn-file", help="JSON object or "
                                         "'name,dcn' lines giving DCNs."),
    column: list[str] = typer.Option([], "--column", help="NB201 tables: COLUMN=DATASET"
                                     "[:SPLIT] mapping an accuracy column (repeatable)."),
    columns: str | None = typer.Option(None, "--columns", help="NB201 tables: comma-separated "
                                       "accuracy columns to ingest (default: all that map)."),
    source: str | None = typer.Option(None, "--source", help="Where the records came from "
                                      "(default: file name / nas-bench-201)."),
    verify: bool = typer.Option(False, "--verify", help="Exports: re-expand every "
                                "NAS-Bench-201 architecture instead of a sample."),
    workers: int = typer.Option(0, "--workers", help="NB201 tables: processes expanding "
                                "cells (0: one per thread of TAPAS_THREADS, up to 4)."),
    db: Path | None = _DB,
    url: str | None = typer.Option(None, "--url", help="Send the records to a running "
                                   "`tapas serve` at this URL instead of opening the file."),
    token: str | None = typer.Option(None, "--token", envvar="TAPAS_API_TOKEN",
                                     help="Bearer token for --url."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    show: int = typer.Option(20, "--show-rejected", help="How many rejections to list."),
) -> None:
    """Ingest experiments: idempotent, one transaction, rejected rows listed with line numbers."""
    if not path.exists():
        fail(f"{path} not found")
    if url:
        if dcn or dcn_file:
            fail("--dcn/--dcn-file cannot be sent with --url: a server registers a dataset and "
                 "its DCN through POST /v1/datasets (upload it there first), or ingest locally "
                 "with the server stopped")
        _ingest_remote(url, path, token, source, as_json, show)
        return
    dcns = lde_ingest.read_dcn_file(dcn_file) if dcn_file else {}  # IngestError: root exits
    dcns.update(lde_ingest.parse_dcn_items(dcn))
    mapping = lde_ingest.parse_column_items(column)
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    with open_pipeline(db) as app, _progress(not as_json) as cb:
        rep = app.ingest_file(path, fmt, verify=verify, dcn=dcns, mapping=mapping,
                              columns=cols, source=source, progress=cb, workers=workers or None)
        missing = [d.name for d in app.datasets() if d.dcn is None]
    _print_report(rep, as_json, show, f"ingest {path.name}")
    _fail_if_all_rejected(rep)
    if missing and not as_json:
        err_console.print(f"[yellow]note:[/] no DCN yet for {', '.join(missing)}; DCN filters "
                          "skip them until one is given (--dcn NAME=VALUE).", highlight=False)


def stats(db: Path | None = _DB,
          as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """Datasets, their DCNs and experiment counts (read-only; on a fresh home, what the
    shipped data will hold once the first command that needs the database seeds it)."""
    with open_pipeline(db, read_only=True, upgrade=True, missing_ok=True) as app:
        s = None if app is None else {**app.store.stats(), "exists": True}
        path = app.database if app is not None else _database(db)
    if s is None:
        _no_database(path, as_json)
        return
    if as_json:
        print_json(s)
        return
    t = Table(title=f"LDE {s['path']} (schema {s['schema_version']}, snapshot {s['snapshot']})")
    t.add_column("dataset", overflow="fold", min_width=12)
    for c in ("DCN", "classes", "input", "experiments", "archs", "mean acc", "max acc"):
        t.add_column(c, justify="right", no_wrap=True)
    for d in s["per_dataset"]:
        t.add_row(d["name"], "-" if d["dcn"] is None else f"{d['dcn']:.3f}",
                  str(d["n_classes"]), "x".join(map(str, d["input_shape"])),
                  str(d["experiments"]), str(d["architectures"]),
                  "-" if d["mean_accuracy"] is None else f"{d['mean_accuracy']:.3f}",
                  "-" if d["max_accuracy"] is None else f"{d['max_accuracy']:.3f}")
    console.print(t)
    console.print(f"{s['datasets']:,} datasets, {s['architectures']:,} architectures "
                  f"({s['families']:,} families), {s['experiments']:,} experiments, "
                  f"{s['predictors']:,} predictors")
    if s["dcn_min"] is not None:
        shapes = ", ".join(f"{k} ({n})" for k, n in s["input_shapes"].items())
        console.print(f"DCN {s['dcn_min']:.3f} .. {s['dcn_max']:.3f}; input shapes "
                      f"(datasets): {shapes}", highlight=False)
    if s["spaces"]:
        spaces = ", ".join(f"{k} ({v['experiments']:,} on {v['datasets']:,})"
                           for k, v in s["spaces"].items())
        console.print(f"spaces (experiments on datasets): {spaces}", highlight=False)


def _database(db: Path | None) -> Path:
    return db.expanduser() if db is not None else config.get_settings().database


def _no_database(path: Path, as_json: bool) -> None:
    """``tapas lde stats`` before any database exists: what the shipped data holds,
    without seeding it (the first command that needs the database does)."""
    shipped = default_data.shipped_counts()
    if as_json:
        print_json({"path": str(path), "exists": False, "shipped": shipped})
        return
    parts = "; ".join(f"{x['name']} {x['datasets']:,} datasets, {x['experiments']:,} "
                      "experiments" for x in shipped["sources"])
    console.print(f"no experiment database at {path} yet. The first command that needs one "
                  "(tapas search, rank, predict, dcn, ingest, serve) creates it with the "
                  f"shipped data: {shipped['datasets']:,} datasets, "
                  f"{shipped['experiments']:,} experiments ({parts or 'none shipped'}).",
                  highlight=False, soft_wrap=True)


def export(directory: Path = typer.Argument(..., help="New folder to write."),
           force: bool = typer.Option(False, "--force", help="Replace a non-empty folder."),
           db: Path | None = _DB,
           as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """Write the whole LDE as partitioned Parquet (to share it or query it elsewhere)."""
    with open_pipeline(db, read_only=True) as app, _progress(not as_json) as cb:
        out = app.export(directory, progress=cb, overwrite=force)
    if as_json:
        print_json(out)
    else:
        c = out["counts"]
        console.print(f"exported {c['experiments']:,} experiments, {c['architectures']:,} "
                      f"architectures, {c['datasets']:,} datasets and {out['models']:,} "
                      f"predictor files to {out['path']}")


def import_(directory: Path = typer.Argument(..., help="A folder written by tapas lde export."),
            verify: bool = typer.Option(False, "--verify", help="Re-expand every "
                                        "NAS-Bench-201 architecture instead of a sample."),
            db: Path | None = _DB,
            as_json: bool = typer.Option(False, "--json", help="One JSON object."),
            show: int = typer.Option(20, "--show-rejected")) -> None:
    """Merge an export into the LDE (idempotent, one transaction)."""
    if not directory.is_dir():
        fail(f"{directory} is not a folder written by `tapas lde export`")
    with open_pipeline(db) as app, _progress(not as_json) as cb:
        rep = app.ingest_file(directory, "lde", progress=cb, verify=verify)
    _print_report(rep, as_json, show, f"import {directory.name}")


def bench_lde(rows: int = typer.Option(1_000_000, help="Synthetic experiments."),
              datasets: int = typer.Option(50, help="Synthetic datasets."),
              repeats: int = typer.Option(50, help="Filter queries timed."),
              nb201: Path | None = typer.Option(None, help="NAS-Bench-201 table (default "
                                                "../shared/data/nb201.csv when present)."),
              as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """Parquet ingest rate, DCN filter latency over 1M experiments, NB201 ingest time."""
    with _progress(not as_json) as cb:
        res = lde_bench.run(rows=rows, n_datasets=datasets, repeats=repeats, nb201=nb201,
                            progress=cb)
    if as_json:
        print_json(res)
        return
    print_metrics("tapas bench lde", res,
                  {"ingest_rows_per_s": ">= 100,000", "filter_p50_ms": "<= 50"}, fmt=",.1f")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this part's commands to ``app`` and its benchmark to ``bench``."""
    app.command("ingest")(ingest)
    lde_app.command("stats")(stats)
    lde_app.command("export")(export)
    lde_app.command("import")(import_)
    app.add_typer(lde_app, name="lde")
    bench.command("lde")(bench_lde)
