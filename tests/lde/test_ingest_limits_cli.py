"""``tapas ingest`` of hostile numbers and duplicated runs, through the real CLI (issue 15):
one line per bad record naming the line and field, never a traceback; a run's identity
does not depend on the file it came in; an ingest that stores nothing exits 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
ROOT = Path(__file__).resolve().parents[2]


def tapas(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TAPAS_HOME": str(home), "COLUMNS": "250", "PYTHONPATH": str(ROOT)}
    env.pop("TAPAS_API_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "tapas.cli.main", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_overflowing_numbers_are_one_line_each(tmp_path: Path) -> None:
    from lde import Store

    db = tmp_path / "lde.duckdb"
    Store(db).close()
    good = {"arch": CELL, "dataset": "cifar10", "accuracy": 0.9, "epochs": 200, "seed": 1}
    lines = [json.dumps(good),
             json.dumps({**good, "seed": 2}).replace('"epochs": 200', '"epochs": Infinity'),
             json.dumps({**good, "seed": 3}).replace('"epochs": 200', '"epochs": 1e999'),
             json.dumps({**good, "seed": 2**63}),
             json.dumps({**good, "seed": 5, "curve": [0.5, 1e999]}),
             json.dumps({**good, "seed": 6, "hparams": {"blob": "x" * 100_000}})]
    runs = tmp_path / "runs.jsonl"
    runs.write_text("\n".join(lines) + "\n")
    r = tapas("ingest", str(runs), "--db", str(db), "--dcn", "cifar10=0.9", home=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Traceback" not in out
    assert "line 2: epochs must be a finite number" in out
    assert "line 3: epochs must be a finite number" in out
    assert "line 4: seed must lie in" in out
    assert "line 5: curve[1] must be a finite number" in out
    assert "line 6: hparams take" in out

    # the same run from a CSV file is the same run: skipped, not stored twice
    csv = tmp_path / "runs.csv"
    csv.write_text(f"arch,dataset,accuracy,epochs,seed\n{CELL},cifar10,0.9,200,1\n")
    r = tapas("ingest", str(csv), "--db", str(db), "--json", home=tmp_path)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["added"] == 0 and rep["skipped"] == 1, rep

    # nothing stored at all: exit 1 with one line
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines[1] + "\n" + lines[3] + "\n")
    r = tapas("ingest", str(bad), "--db", str(db), home=tmp_path)
    assert r.returncode == 1 and "every record was rejected" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_url_refuses_dcn_it_cannot_send(tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    runs.write_text(json.dumps({"arch": CELL, "dataset": "x", "accuracy": 0.5}) + "\n")
    r = tapas("ingest", str(runs), "--url", "http://127.0.0.1:9", "--dcn", "x=0.5",
              home=tmp_path)
    assert r.returncode == 1 and "--dcn" in r.stderr and "Traceback" not in r.stderr
