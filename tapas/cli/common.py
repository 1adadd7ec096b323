"""Helpers shared by CLI modules: JSON output and clean error exits."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from tapas.pipeline import Pipeline

console = Console()
#: Errors are never wrapped: on a narrow terminal or a pipe (80 columns) a long path
#: would otherwise be split mid-phrase across lines.
err_console = Console(stderr=True, soft_wrap=True)


def print_json(obj: Any) -> None:
    """One JSON object on stdout, for scripts."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error (no traceback) and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def open_pipeline(db: Path | None = None, *, read_only: bool = False,
                  **kwargs: Any) -> Iterator[Pipeline]:
    """The application on the LDE at ``db`` (default: the settings' database; a new one is
    created and seeded with the starter data unless ``read_only``); every LDE error, on
    opening or inside the block, becomes a one-line exit. Closed at the end."""
    from tapas.pipeline import LDEError, Pipeline

    app = Pipeline(db, read_only=read_only, **kwargs)
    try:
        app.open()
        yield app
    except LDEError as e:
        app.close()
        fail(str(e))
    app.close()
