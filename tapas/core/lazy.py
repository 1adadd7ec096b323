"""The one way a module imports a heavy library (torch, duckdb, pyarrow, scipy) lazily.

``torch = LazyImport("torch")`` at module top names the dependency where a reader (and
import-linter) looks for it, while the library loads on first use, so ``tapas --help``
and the HTTP client do not pay seconds for what they never call (Optuna's
``_LazyImport``).
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyImport(types.ModuleType):
    """A module that imports ``name`` on first attribute access, then stands for it."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._name = name

    def _load(self) -> types.ModuleType:
        module = importlib.import_module(self._name)
        self.__dict__.update(module.__dict__)
        return module

    def __getattr__(self, item: str) -> Any:
        return getattr(self._load(), item)
