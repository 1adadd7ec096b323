"""``LazyImport`` loads its module on first use and then reads it live."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tapas.core.lazy import LazyImport


def test_loads_on_first_attribute_only() -> None:
    code = ("import sys; from tapas.core.lazy import LazyImport\n"
            "m = LazyImport('tapas.app.pipeline')\n"
            "assert 'tapas.app.pipeline' not in sys.modules\n"
            "assert m.Pipeline.__name__ == 'Pipeline'\n"
            "assert 'tapas.app.pipeline' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reads_the_module_live(monkeypatch: pytest.MonkeyPatch) -> None:
    import tapas.core.errors as real

    lazy = LazyImport("tapas.core.errors")
    assert lazy.NotFound is real.NotFound
    monkeypatch.setattr(real, "NotFound", KeyError)
    assert lazy.NotFound is KeyError  # a rebinding in the module shows through


def test_missing_attribute_raises() -> None:
    with pytest.raises(AttributeError):
        LazyImport("tapas.core.errors").no_such_name  # noqa: B018
