"""CLI commands of this part (filled in by its issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this part's commands to ``app`` and its benchmark to ``bench``."""
