"""The flat module names of before the two floors still import, as the same modules."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize(("old", "new"), [("tapas.client", "tapas.app.client"),
                                          ("tapas.arch.ir", "tapas.core.arch.ir"),
                                          ("tapas.search", "tapas.app.search")])
def test_old_name_is_the_new_module_with_a_warning(old: str, new: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning) as caught:  # a moved parent warns too
        module = importlib.import_module(old)
    assert f"{old} is now {new}" in [str(w.message).split(";")[0] for w in caught]
    assert module is importlib.import_module(new)  # one copy, not a second module


def test_a_submodule_of_an_old_package_is_not_loaded_twice() -> None:
    import tapas.core.arch.ir as ir

    sys.modules.pop("tapas.arch", None)
    sys.modules.pop("tapas.arch.ir", None)
    with pytest.warns(DeprecationWarning):
        from tapas.arch.ir import Architecture
    assert Architecture is ir.Architecture


def test_from_import_of_an_old_name_in_a_fresh_interpreter() -> None:
    code = ("import warnings; warnings.simplefilter('error')\n"
            "try:\n    from tapas.client import Client\nexcept DeprecationWarning as e:\n"
            "    print('warned', e)\n"
            "import warnings; warnings.simplefilter('ignore')\n"
            "from tapas.client import Client\nfrom tapas.app.client import Client as C\n"
            "print(Client is C)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, check=True)
    assert r.stdout.split("\n")[:2] == [
        "warned tapas.client is now tapas.app.client; the old name goes in 0.2", "True"]


def test_unknown_names_still_fail() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("tapas.nonexistent")
