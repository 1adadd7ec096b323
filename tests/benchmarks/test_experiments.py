"""``python -m benchmarks.experiments``: without Ray installed, its backend bench says how
to get it in one line."""

from __future__ import annotations

import sys

import pytest

import benchmarks.experiments as be
from tests.benchmarks.conftest import bench


def test_ray_backend_without_ray_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    r = bench(be, "--backend", "ray", "--json")
    assert r.exit_code == 1, r.output
    assert "pip install 'tapas-nas[ray]'" in r.output and "Traceback" not in r.output
