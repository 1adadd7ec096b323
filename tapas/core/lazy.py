"""The one way a module imports a heavy dependency lazily.

``torch = LazyImport("torch")`` at module top names the dependency where a reader looks
for it, while the library loads on first use, so ``tapas --help`` and the HTTP client do
not pay seconds for what they never call (Optuna's ``_LazyImport``). The same holds for a
project module whose import pulls such a library in (``LazyImport("tapas.app.pipeline")``
in the CLI). import-linter does not see these imports; ``tests/test_layers.py`` checks
them against the same contracts.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyImport(types.ModuleType):
    """A module that imports ``name`` on first attribute access, then stands for it.

    Each access reads the real module's attribute, so a later rebinding there (a test's
    ``monkeypatch``, a module-level setting) shows through, as with a plain import.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._name = name
        self._module: types.ModuleType | None = None

    def __getattr__(self, item: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, item)
