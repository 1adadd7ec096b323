"""The ``tapas`` command line: one module per part, each adding its own commands.

:func:`main` is the installed entry point: without the ``server`` extra (the
client-only install) it says what to install in one line instead of a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the ``tapas`` command line."""
    try:  # inside: a client-only install lacks typer, and must get the line below
        from tapas.app.cli.main import app
    except ModuleNotFoundError as e:
        sys.stderr.write(f"error: the tapas command line needs the server extra (missing "
                         f"module {e.name!r}): pip install 'tapas-nas[server]'\n")
        raise SystemExit(1) from None
    app()
