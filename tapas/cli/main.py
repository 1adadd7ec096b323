"""Entry point of ``tapas``. Each part's module registers its commands and benchmark.

Modules import their heavy dependencies inside the commands, so ``tapas --help``
stays fast.
"""

from __future__ import annotations

import typer

from tapas.cli import arch, dcn, experiments, lde, predictor, search, serve

app = typer.Typer(
    name="tapas",
    help="Train-less accuracy predictor for neural architecture search.",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(help="Measure speed and quality; --json for scripts.", no_args_is_help=True)

for part in (arch, lde, dcn, experiments, predictor, serve, search):
    part.register(app, bench_app)

app.add_typer(bench_app, name="bench")

if __name__ == "__main__":  # pragma: no cover
    app()
