"""tapas: a train-less accuracy predictor for neural architecture search.

The package has two floors: ``tapas.core`` (IR, spaces, shared types, settings) and
``tapas.app`` (pipeline, CLI, client, search, benches). Heavy parts (torch, duckdb) are
imported lazily by the modules that need them, so ``import tapas`` and
``tapas.app.client`` stay light.

The modules moved into the floors in 0.1.0 still import under their old names
(``tapas.client``, ``tapas.arch``, ...), with a :class:`DeprecationWarning`, so search
loops written against the flat layout keep working until they are updated.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__version__ = "0.1.0"

#: old top-level module -> its floor
MOVED = {
    **dict.fromkeys(("arch", "config", "device", "errors", "lazy", "records", "spaces",
                     "tables", "types"), "core"),
    **dict.fromkeys(("adapters", "bench", "cli", "client", "experiments", "pipeline",
                     "release", "scorer", "search"), "app"),
}


def _new_name(name: str) -> str | None:
    parts = name.split(".")
    if len(parts) < 2 or parts[0] != __name__ or parts[1] not in MOVED:
        return None
    return ".".join([parts[0], MOVED[parts[1]], *parts[1:]])


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``tapas.X...`` as the module it became (the same object, not a copy)."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ANN201
        new = _new_name(fullname)
        return None if new is None else importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):  # noqa: ANN001, ANN201
        new = _new_name(spec.name)
        warnings.warn(f"{spec.name} is now {new}; the old name goes in 0.2",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:  # noqa: ANN001
        """The module already ran under its new name."""


# first: after ``tapas.arch`` (the new package) the path finder would load ``tapas.arch.ir``
# again from its folder, a second copy of the module under the old name
if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())
