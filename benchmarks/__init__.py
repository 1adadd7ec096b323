"""Research benchmarks and ablations behind BENCHMARKS.md and docs/research/.

Not part of the installed package (the wheel ships ``tapas``, ``probenet``, ``lde``,
``predictor`` and ``service`` only, and none of them imports this folder): run them from
a checkout's root, e.g. ``python -m benchmarks.predictor --suite nb201 --json``. The
speed and health checks a user runs on an install stay ``tapas bench ...``
(:mod:`tapas.app.bench`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def run_cli(command: Callable[..., Any]) -> None:
    """Run one bench's command as ``python -m benchmarks.<name>``: a bad ``TAPAS_*``
    setting is one line, and the thread budget applies before torch loads, as ``tapas``
    does for its own commands."""
    import typer

    from tapas.app.cli.common import fail
    from tapas.core.config import SettingsError, get_settings
    from tapas.core.device import apply_threads

    try:
        get_settings()
    except SettingsError as e:
        try:
            fail(str(e))
        except typer.Exit as done:  # outside a Typer app: exit as the command would
            raise SystemExit(done.exit_code) from None
    apply_threads()
    typer.run(command)
