"""The layers contract (``[tool.importlinter]`` in pyproject.toml) names every module.

``lint-imports`` checks only the modules a layer names: a new package left out of the
list would be free to import anything, unseen. This test keeps the list whole.
"""

from __future__ import annotations

import re
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
    # the package ``tapas`` and its two floors hold the layers named tapas.*; they
    # cannot be layers themselves, so they must import none of them
    floors = ["tapas", "tapas.app", "tapas.core"]
    assert outside == floors, f"modules in no layer of pyproject.toml: {outside}"
    for floor in floors:
        assert graph.find_modules_directly_imported_by(floor) == set()


def test_lazy_imports_keep_the_forbidden_contracts() -> None:
    """``LazyImport("x")`` is invisible to import-linter: no module may load that way a
    library a forbidden contract keeps from it (e.g. torch in lde)."""
    cfg = _config()
    forbidden = [(c["source_modules"], c["forbidden_modules"]) for c in cfg["contracts"]
                 if c["type"] == "forbidden"]
    lazy = []
    for pkg in cfg["root_packages"]:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for target in re.findall(r'LazyImport\("([\w.]+)"\)', path.read_text()):
                lazy.append((module, target))
    assert ("probenet.dcn", "torch") in lazy  # the scan reads the tree
    bad = [(m, t) for m, t in lazy for sources, banned in forbidden
           if any(_within(m, s) for s in sources) and any(_within(t, b) for b in banned)]
    assert bad == [], f"lazy imports a forbidden contract rules out: {bad}"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")
