"""Helpers shared by CLI modules: JSON output, clean error exits, plain-text labels and
the one way results are written (``--format table|json|csv|parquet`` and ``--out``)."""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from tapas.core.lazy import LazyImport
from tapas.core.tables import csv_text, write_parquet, write_text

# numpy, pydantic and the whole application: loaded when a command runs
core_types = LazyImport("tapas.core.types")
pipeline = LazyImport("tapas.app.pipeline")

console = Console()
#: Errors are never wrapped: on a narrow terminal or a pipe (80 columns) a long path
#: would otherwise be split mid-phrase across lines.
err_console = Console(stderr=True, soft_wrap=True)

#: The one input-shape option of every command that builds networks.
InputShapeOpt = Annotated[str | None, typer.Option(
    "--input-shape", help="Input C x H x W of the networks, e.g. 3x32x32 (default: the "
                          "dataset's, else 3x32x32).")]
#: ``--input C,H,W``, the older spelling of ``tapas arch show`` and ``tapas predict``.
LegacyInputOpt = Annotated[str | None, typer.Option(
    "--input", hidden=True, help="Deprecated: use --input-shape.")]


def input_shape_arg(text: str | None, legacy: str | None = None) -> tuple[int, int, int] | None:
    """The parsed ``--input-shape`` (or the deprecated ``--input``, with a warning);
    a one-line error naming the flag and the value when it is not C x H x W."""
    flag = "--input-shape"
    if legacy is not None:
        if text is not None:
            fail("give --input-shape only (--input is its deprecated spelling)")
        err_console.print("warning: --input is deprecated; use --input-shape, e.g. "
                          "--input-shape 3x32x32", highlight=False)
        text, flag = legacy, "--input"
    try:
        return None if text is None else core_types.parse_input_shape(text, flag)
    except core_types.TargetError as e:
        fail(str(e))


FORMATS = ("table", "json", "csv", "parquet")
FORMAT_HELP = ("Output: table (default), json, csv or parquet; with --out, taken from the "
               "file's suffix unless given.")


def print_json(obj: Any) -> None:
    """One JSON object on stdout, for scripts."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error (no traceback) and exit non-zero."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", str(message)), highlight=False,
                      soft_wrap=True)
    raise typer.Exit(code)


#: Seconds between the plain progress lines written when stderr is not a terminal.
PLAIN_PROGRESS_EVERY = 5.0


def progress_bar(quiet: bool = False, console: Console | None = None, *,
                 info: bool = False, every: float | None = None) -> Any:
    """The one progress display: phase, bar, done/total, elapsed and remaining time (and
    each task's ``info`` field with ``info``). Hidden when stdout carries data
    (``quiet``); drawn on stderr by default. Where that stream is not a terminal (a log
    file, CI, a notebook, a pipe), a live bar would print nothing until the end, so plain
    lines are written instead (:class:`PlainProgress`): one when a phase starts and one
    every ``every`` seconds (:data:`PLAIN_PROGRESS_EVERY`) while it runs."""
    con = console or err_console
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    if info:
        columns.append(TextColumn("{task.fields[info]}"))
    columns += [TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    if not quiet and not con.is_terminal:
        return PlainProgress(*columns, console=con,
                             every=PLAIN_PROGRESS_EVERY if every is None else every)
    return Progress(*columns, console=con, transient=True, disable=quiet)


@contextmanager
def phase_progress(quiet: bool, labels: dict[str, str] | None = None
                   ) -> Iterator[Callable[[str, int, int | None], None]]:
    """:func:`progress_bar` with one task that follows a bench's phases: yields the
    ``progress(phase, done, total)`` callback the benches take (``labels`` renames
    phases for the display)."""
    with progress_bar(quiet) as bar:
        task = bar.add_task("starting", total=None)

        def progress(phase: str, done: int, total: int | None) -> None:
            bar.update(task, description=(labels or {}).get(phase, phase), completed=done,
                       total=total)

        yield progress


def print_metrics(title: str, res: dict[str, Any], targets: dict[str, str] | None = None,
                  fmt: str = ",.2f", name: str = "metric") -> None:
    """A bench's flat results as a table: each measure, its value (floats as ``fmt``) and,
    with ``targets``, its target; nested results are left to ``--json``."""
    t = Table(title=title)
    t.add_column(name)
    t.add_column("value", justify="right")
    if targets is not None:
        t.add_column("target", justify="right")
    for k, v in res.items():
        if isinstance(v, dict | list):
            continue
        row = [k, format(v, fmt) if isinstance(v, float) else str(v)]
        t.add_row(*row, *([targets.get(k, "")] if targets is not None else []))
    console.print(t)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def plain_progress_line(task: Any) -> str:
    """One rich task as a line: ``phase: done/total (pct%) info, m:ss elapsed, eta m:ss``."""
    parts = [str(task.description)]
    if task.total is not None:
        parts.append(f": {int(task.completed):,}/{int(task.total):,} ({task.percentage:.0f}%)")
    elif task.completed:
        parts.append(f": {int(task.completed):,}")
    extra = str(task.fields.get("info") or "")
    if extra:
        parts.append(f" {extra}")
    parts.append(f", {_clock(task.elapsed or 0.0)} elapsed")
    if task.total is not None and not task.finished:
        parts.append(f", eta {_clock(task.time_remaining)}")
    return "".join(parts)


class PlainProgress(Progress):
    """A rich ``Progress`` that draws nothing live and writes plain lines: when a task
    starts or changes phase, when it finishes, and for unfinished tasks every
    ``every`` seconds (from ``update`` calls, and from a timer between them, so a long
    step without callbacks still shows it is alive)."""

    def __init__(self, *columns: Any, console: Console, every: float) -> None:
        super().__init__(*columns, console=console, disable=True)
        self.every = float(every)
        self._last = time.monotonic()
        self._said: dict[TaskID, tuple[str, bool]] = {}
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._report_lock = threading.Lock()  # the timer and the caller both report

    def _say(self, task: Any) -> None:
        self._said[task.id] = (str(task.description), task.finished)
        self.console.print(plain_progress_line(task), markup=False, highlight=False,
                           soft_wrap=True)

    def _report(self, force: bool = False) -> None:
        with self._lock:
            tasks = [t for t in self.tasks if t.visible]
        with self._report_lock:
            due = force or time.monotonic() - self._last >= self.every
            for t in tasks:
                said = self._said.get(t.id)
                changed = said is None or said[0] != str(t.description) or (
                    t.finished and not said[1])
                if changed or (due and not t.finished):
                    self._say(t)
            if due:
                self._last = time.monotonic()

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> TaskID:
        kwargs.setdefault("info", "")
        tid = super().add_task(description, *args, **kwargs)
        self._report()
        return tid

    def update(self, task_id: TaskID, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(task_id, **kwargs)
        self._report()

    def _tick(self) -> None:
        while not self._stop.wait(min(1.0, self.every)):
            if time.monotonic() - self._last >= self.every:
                self._report(force=True)

    def start(self) -> None:
        super().start()
        if self._timer is None and self.every > 0:
            self._timer = threading.Thread(target=self._tick, daemon=True,
                                           name="tapas-progress")
            self._timer.start()

    def stop(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
            self._timer = None
        self._report()  # tasks that finished since the last line
        super().stop()


def warn_out_of_domain(rows: Sequence[dict[str, Any]]) -> None:
    """One warning line on stderr when some predictions (rows with ``in_domain`` and
    ``domain_reasons``) extrapolate beyond the predictor's training experiments: how
    many, and the most common reason."""
    out = [r for r in rows if not r.get("in_domain", True)]
    if not out:
        return
    reasons = Counter(w for r in out for w in r.get("domain_reasons") or ())
    top = f"; most common: {reasons.most_common(1)[0][0]}" if reasons else ""
    err_console.print(Text.assemble(
        ("warning:", "bold yellow"), f" {len(out):,} of {len(rows):,} predictions lie outside "
        f"the predictor's training domain (extrapolated, intervals widened){top}"),
        highlight=False, soft_wrap=True)


#: Median interval width above which the CLI says where the width comes from.
WIDE_INTERVAL = 0.5


def note_wide_intervals(rows: Sequence[dict[str, Any]]) -> None:
    """One note on stderr when the median interval (rows with ``lower``/``upper``) spans
    more than :data:`WIDE_INTERVAL`. Trained on two or more datasets, a predictor is
    calibrated as for datasets it did not train on (leave-one-dataset-out), so its
    intervals hold the error in a whole dataset's accuracy level, which shifts every
    network alike and leaves the ranking alone."""
    if not rows:
        return
    width = statistics.median(r["upper"] - r["lower"] for r in rows)
    if width <= WIDE_INTERVAL:
        return
    err_console.print(Text.assemble(
        ("note:", "bold"), f" the intervals are wide (median width {width:.2f}): on a "
        "dataset the predictor did not train on they include the error in its overall "
        "accuracy level, which shifts every network alike and leaves their order "
        "unchanged"),
        highlight=False, soft_wrap=True)


def result_caveats(rows: Sequence[dict[str, Any]]) -> None:
    """What the CLI says on stderr after printing predictions: extrapolation, then
    wide intervals (each one line, only when it applies)."""
    warn_out_of_domain(rows)
    note_wide_intervals(rows)


def plain(value: Any) -> Text:
    """``value`` as literal text: an architecture label such as ``24[r5,r5]`` is never
    read as rich markup (which would silently drop the brackets)."""
    return Text(str(value))


class Output:
    """Where a result goes: ``file`` format for ``--out`` (None without it) and what
    stdout shows (``table``, ``json`` or ``csv``)."""

    def __init__(self, file: str | None, out: Path | None, stdout: str) -> None:
        self.file, self.out, self.stdout = file, out, stdout

    @property
    def quiet(self) -> bool:
        """stdout carries data for a script: no progress bars or notes on the terminal."""
        return self.stdout != "table"


def resolve_format(fmt: str | None, out: Path | None, as_json: bool = False) -> Output:
    """``--format``/``--out``/``--json`` as one :class:`Output`.

    With ``--out`` the file's format is ``--format``, else the file's suffix; stdout then
    shows the table (or JSON with ``--json``). Without ``--out``, ``--format json|csv``
    (or ``--json``) prints the data to stdout instead of the table.
    """
    if fmt is not None:
        fmt = fmt.lower()
        if fmt not in FORMATS:
            fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if out is None:
        if fmt == "parquet":
            fail("--format parquet writes a binary file: give --out FILE.parquet")
        if as_json and fmt not in (None, "json"):
            fail(f"--json conflicts with --format {fmt}")
        return Output(None, None, "json" if as_json else (fmt or "table"))
    if out.is_dir():
        fail(f"--out {out} is a folder; give a file name")
    if fmt is None or fmt == "table":
        fmt = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(
            out.suffix.lower(), "json")
    return Output(fmt, out, "json" if as_json else "table")


def emit(dest: Output, *, obj: dict[str, Any], rows: list[dict[str, Any]],
         table: Callable[[], None]) -> None:
    """Write a result: the whole ``obj`` as JSON, ``rows`` as CSV or Parquet (``obj`` in
    the Parquet file's metadata), and show the table, JSON or CSV on stdout."""
    if dest.out is not None:
        dest.out.parent.mkdir(parents=True, exist_ok=True)
        if dest.file == "parquet":
            write_parquet(rows, dest.out, metadata=obj)
        elif dest.file == "csv":
            write_text(csv_text(rows), dest.out)
        else:
            write_text(json.dumps(obj, indent=1, default=str) + "\n", dest.out)
    if dest.stdout == "json":
        print_json(obj)
    elif dest.stdout == "csv":
        sys.stdout.write(csv_text(rows))
    else:
        table()
        if dest.out is not None:
            err_console.print(f"saved {dest.file} to {dest.out}", highlight=False)


@contextmanager
def open_pipeline(db: Path | None = None, *, read_only: bool = False, lazy: bool = False,
                  missing_ok: bool = False, hint: str | None = None,
                  unavailable: Callable[[Exception], None] | None = None,
                  **kwargs: Any) -> Iterator[Any]:
    """The one way a command opens the application (a :class:`~tapas.app.pipeline.Pipeline`)
    on the LDE at ``db`` (default: the settings' database); closed at the end whatever
    happens in the block.

    A new database is created and seeded with the shipped data unless ``read_only`` or
    ``seed=False``. ``read_only``: no write lock, no seeding, no migration, for commands
    that only read (they answer in about a second; ``upgrade=True`` finishes a database
    that needs one write first: an older schema, a first seeding cut short).
    ``missing_ok``: None instead when there is no database yet (the first command that
    needs one creates it). ``lazy``: opened when first used, not here (so a command can
    refuse bad input before a new home is seeded). ``unavailable``: for commands that can
    do without the database, called with the reason when it cannot be opened, and None
    yielded. An LDE error (a locked database) exits with its one line and ``hint`` after
    it; other domain errors exit from the root command (:class:`tapas.app.cli.main.Commands`).
    """
    app = pipeline.Pipeline(db, read_only=read_only, **kwargs)
    if missing_ok and not app.database.exists():
        yield None
        return
    try:
        if unavailable is not None:
            try:
                app.open()
            except Exception as e:  # noqa: BLE001 - any open failure: go on without it
                unavailable(e)
                yield None
                return
        elif not lazy:
            app.open()
        yield app
    except pipeline.LDEError as e:
        fail(f"{e} ({hint})" if hint else str(e))
    finally:
        app.close()
