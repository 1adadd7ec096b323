"""Helpers shared by CLI modules: JSON output and clean error exits."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def print_json(obj: Any) -> None:
    """One JSON object on stdout, for scripts."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error (no traceback) and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)
