"""``tapas train`` and ``tapas predict`` end to end on a small table, with clean errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from tapas.app.cli.main import app
from tapas.core.arch import all_cells

runner = CliRunner()


def _table(path: Path, n: int = 24) -> list[str]:
    cells = all_cells()[:: len(all_cells()) // n][:n]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "dataset", "dcn", "accuracy"])
        for i, c in enumerate(cells):
            w.writerow([c, "a" if i % 2 else "b", 0.4 if i % 2 else 0.8, 0.3 + 0.02 * (i % 20)])
    return cells


def test_train_then_predict(tmp_path: Path, tapas_home: Path) -> None:
    cells = _table(tmp_path / "t.csv")
    model = tmp_path / "m.tap"
    r = runner.invoke(app, ["train", str(tmp_path / "t.csv"), "--out", str(model),
                            "--epochs", "2", "--members", "2", "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["n_train"] + info["n_calibration"] == 24
    r = runner.invoke(app, ["predict", str(model), cells[0], cells[1], "--dcn", "0.5", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert len(out["predictions"]) == 2
    p = out["predictions"][0]
    assert 0.0 <= p["lower"] <= p["mean"] <= p["upper"] <= 1.0


def test_clean_errors(tmp_path: Path, tapas_home: Path) -> None:
    r = runner.invoke(app, ["train", str(tmp_path / "missing.csv")])
    assert r.exit_code == 1 and "does not exist" in r.output and "Traceback" not in r.output
    bad = tmp_path / "bad.tap"
    bad.write_bytes(b"not a model")
    r = runner.invoke(app, ["predict", str(bad), "|none~0|+|none~0|none~1|+|none~0|none~1|"
                            "none~2|", "--dcn", "0.5"])
    assert r.exit_code == 1 and "bad magic" in r.output
    r = runner.invoke(app, ["predict", str(bad), "x", "--dcn", "1.5"])
    assert r.exit_code == 1 and "--dcn" in r.output
