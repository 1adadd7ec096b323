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


def measure(json_out: bool, run: Callable[[Callable[[str, int, int | None], None]], Any],
            errors: tuple[type[BaseException], ...]) -> Any:
    """A bench command's common part: ``run(progress)`` under a phase progress bar (hidden
    with ``--json``); one of ``errors`` (the bench's own: missing data, bad input) ends the
    command with its message on one line. With ``json_out`` the result is printed and
    None returned; else the result is returned for the command's table."""
    from tapas.app.cli.common import fail, phase_progress, print_json

    with phase_progress(json_out) as progress:
        try:
            res = run(progress)
        except errors as e:
            fail(str(e))
    if json_out:
        print_json(res)
        return None
    return res
