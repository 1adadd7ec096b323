"""The layers contract (``[tool.importlinter]`` in pyproject.toml) names every module, and
every contract holds for the imports import-linter cannot see (``LazyImport``).

``lint-imports`` checks only the modules a layer names: a new package left out of the
list would be free to import anything, unseen. This test keeps the list whole.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

import grimp
import pytest
from importlinter.adapters.building import GraphBuilder
from importlinter.application.app_config import settings
from importlinter.application.use_cases import SUCCESS, lint_imports
from importlinter.configuration import configure

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


def lazy_imports() -> list[tuple[str, str, int]]:
    """Every ``LazyImport("x")`` of the project: (importing module, x, line)."""
    found = []
    for pkg in _config()["root_packages"]:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "LazyImport"
                        and isinstance(node.args[0], ast.Constant)):
                    found.append((module, node.args[0].value, node.lineno))
    return found


class _WithLazyImports(GraphBuilder):
    """grimp's graph plus an edge for each ``LazyImport`` (third-party ones squashed to
    their package, as grimp shows external imports)."""

    def build(self, root_package_names: list[str], *args: Any, **kwargs: Any) -> grimp.ImportGraph:
        graph = super().build(root_package_names, *args, **kwargs)
        for module, target, line in lazy_imports():
            if target.split(".")[0] not in root_package_names:
                target = target.split(".")[0]
            graph.add_import(importer=module, imported=target, line_number=line,
                             line_contents=f'LazyImport("{target}")')
        return graph


def test_contracts_hold_with_lazy_imports(capsys: pytest.CaptureFixture[str]) -> None:
    """``LazyImport("x")`` is invisible to import-linter: every contract of pyproject.toml
    must hold on the import graph with those imports added (e.g. no torch in lde, no
    upward import in a layer)."""
    lazy = lazy_imports()
    assert ("probenet.dcn", "torch") in [(m, t) for m, t, _ in lazy]  # the scan reads the tree
    configure()
    saved = settings.copy()
    settings.configure(GRAPH_BUILDER=_WithLazyImports())
    try:
        result = lint_imports(str(ROOT / "pyproject.toml"), cache_dir=None, is_debug_mode=True,
                              no_logo=True)
    finally:
        settings.configure(**saved._config)
    assert result == SUCCESS, f"a lazy import breaks a contract: {capsys.readouterr().out}"
