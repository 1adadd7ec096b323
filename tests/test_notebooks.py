"""The example notebooks run top to bottom against a fresh database.

Each notebook is executed with nbclient in a kernel whose ``TAPAS_HOME`` is a new
temporary directory, so the database is created and seeded from the shipped starter
data exactly as on a new user's machine. The executed copies go to the test's temp
directory; the committed notebooks (with their outputs) are never rewritten here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CELL_TIMEOUT_S = 600

#: What each notebook must show once run: text in its outputs and how many figures.
EXPECTED = {
    "quickstart.ipynb": (["DCN = ", "Kendall tau", "networks in"], 2),
    "search.ipynb": (["service at http://127.0.0.1:", "best predicted", "service stopped"], 2),
}


def _outputs(nb: nbformat.NotebookNode) -> tuple[str, int]:
    """All text the notebook printed, and the number of PNG figures it produced."""
    text, figures = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text.append(out.get("text", ""))
            data = out.get("data", {})
            text.append(data.get("text/plain", ""))
            figures += "image/png" in data
    return "".join(text), figures


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_committed_notebooks_show_their_results(name: str) -> None:
    """A reader of the repository sees every cell's result and the plots, no errors."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code cells"
    for i, cell in enumerate(code):
        assert cell.execution_count == i + 1, \
            f"{name}: code cell {i + 1} was not run in order from a fresh kernel"
        for out in cell.outputs:
            assert out.output_type != "error", f"{name}: code cell {i + 1} ends in an error"
    text, figures = _outputs(nb)
    must_show, n_figures = EXPECTED[name]
    for needle in must_show:
        assert needle in text, f"{name}: the committed outputs never show {needle!r}"
    assert figures >= n_figures, f"{name}: {figures} committed figures, expected {n_figures}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs(name: str, tapas_home: Path, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    from lde.starter import available

    if not available():
        pytest.skip("the starter data (lde/starter/*.parquet) is not in this checkout; "
                    "the notebooks need it to seed their database")
    # The kernel inherits this environment: the isolated TAPAS_HOME of the fixture (no
    # TAPAS_DB_PATH/TAPAS_MODEL_DIR), no API token, one torch thread (the work is small
    # and CI machines are shared), and a non-interactive matplotlib.
    monkeypatch.delenv("TAPAS_API_TOKEN", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:  # run from a clean slate, not the committed outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, tmp_path / name)  # the executed copy, for inspection

    text, figures = _outputs(nb)
    must_show, n_figures = EXPECTED[name]
    for needle in must_show:
        assert needle in text, f"{name}: the output never shows {needle!r}"
    assert figures >= n_figures, f"{name}: {figures} figures, expected {n_figures}"
    assert (tapas_home / "lde.duckdb").is_file(), \
        f"{name}: no database was created in the isolated TAPAS_HOME"
    assert list((tapas_home / "models").glob("*.tap")), \
        f"{name}: no predictor was trained and saved in the isolated TAPAS_HOME"
    if name == "quickstart.ipynb":
        # the held-out ranking must be far from chance (0); the committed run shows ~0.63
        m = re.search(r"Kendall tau (-?\d+\.\d+)", text)
        assert m, "quickstart: no Kendall tau printed for the held-out experiments"
        assert float(m.group(1)) >= 0.3, f"quickstart: held-out Kendall tau {m.group(1)}"
