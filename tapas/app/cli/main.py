"""Entry point of ``tapas``. Each part's module registers its commands and benchmark.

Modules name their heavy dependencies with ``LazyImport`` at the top, loaded when a
command runs, so ``tapas --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from tapas import __version__
from tapas.app.cli import arch, dcn, experiments, lde, predictor, search, serve
from tapas.app.cli.common import fail
from tapas.core.device import apply_threads
from tapas.core.errors import TapasError
from tapas.core.lazy import LazyImport

config = LazyImport("tapas.core.config")


class Commands(TyperGroup):
    """The root command: the one place where a domain error of any command (a dataset or
    predictor not found, a conflict, invalid input, no predictor, a locked database)
    becomes its one-line message and exit status 1, without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TapasError as e:
            fail(str(e))


app = typer.Typer(
    name="tapas",
    cls=Commands,
    help="Train-less accuracy predictor for neural architecture search.",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(help="Measure speed and quality; --json for scripts.", no_args_is_help=True)



def _version(value: bool) -> None:
    if value:
        typer.echo(f"tapas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print the version and exit.")] = False) -> None:
    """Train-less accuracy predictor for neural architecture search."""
    try:  # a bad TAPAS_* variable: one line naming it, before any command starts
        config.get_settings()
    except config.SettingsError as e:
        fail(str(e))
    apply_threads()  # the thread budget (TAPAS_THREADS), before torch loads


for part in (arch, lde, dcn, experiments, predictor, serve, search):
    part.register(app, bench_app)

app.add_typer(bench_app, name="bench")

if __name__ == "__main__":  # pragma: no cover
    app()
