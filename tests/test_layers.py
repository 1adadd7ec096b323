"""The layers contract (``[tool.importlinter]`` in pyproject.toml) names every module.

``lint-imports`` checks only the modules a layer names: a new package left out of the
list would be free to import anything, unseen. This test keeps the list whole.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["tool"]["importlinter"]


def test_every_module_lies_in_a_layer() -> None:
    cfg = _config()
    (layers,) = [c["layers"] for c in cfg["contracts"] if c["type"] == "layers"]
    named = [m.strip() for layer in layers for m in layer.replace("|", ":").split(":")]
    graph = grimp.build_graph(*cfg["root_packages"], cache_dir=None)
    assert len(graph.modules) > 100  # the whole project was found, not an empty tree
    outside = sorted(m for m in graph.modules
                     if not any(m == n or m.startswith(n + ".") for n in named))
    # the root package ``tapas`` (its __init__: the version) holds the layers named
    # tapas.*; it cannot be a layer itself, so it must import none of them
    assert outside == ["tapas"], f"modules in no layer of pyproject.toml: {outside}"
    assert graph.find_modules_directly_imported_by("tapas") == set()
