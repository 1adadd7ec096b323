"""Run a research bench's command as ``python -m benchmarks.<name>`` would, in process."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import typer
from typer.testing import CliRunner


def bench(module: ModuleType, *args: str) -> Any:
    """Invoke ``module.main`` (the command ``python -m benchmarks.<name>`` runs) with
    ``args`` through Typer's test runner; the result has ``exit_code`` and ``output``."""
    app = typer.Typer(add_completion=False)
    app.command()(module.main)
    return CliRunner().invoke(app, list(args))
