"""The ``tapas`` command line: one module per part, each adding its own commands."""
