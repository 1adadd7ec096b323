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
ROOT = Path(__file__).resolve().parents[4]


def tapas(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TAPAS_HOME": str(home), "COLUMNS": "250", "PYTHONPATH": str(ROOT)}
    env.pop("TAPAS_API_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "tapas.app.cli.main", *args], env=env, cwd=ROOT,
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


def _datasets(db: Path) -> dict[str, tuple]:
    from lde import Store

    with Store(db, read_only=True) as s:
        return {d.name: (d.dcn, d.n_classes, d.input_shape, d.fingerprint, d.dcn_meta)
                for d in s.datasets()}


def test_rejected_batch_registers_no_dataset_and_a_given_dcn_never_overwrites(
        tmp_path: Path) -> None:
    """Issue 38 #7: every record rejected -> the dataset named by --dcn is not stored
    either; and (one identity rule) --dcn with another DCN for a stored name is an error
    naming it, with the database unchanged."""
    from lde import Store

    db = tmp_path / "lde.duckdb"
    Store(db).close()
    geo = {"num_classes": 10, "input_shape": [3, 32, 32]}
    bad = [{"arch": "|bogus~0|", "dataset": "fresh", "accuracy": 0.5, "seed": i, **geo}
           for i in range(3)]
    runs = tmp_path / "bad.jsonl"
    runs.write_text("".join(json.dumps(r) + "\n" for r in bad))
    r = tapas("ingest", str(runs), "--db", str(db), "--dcn", "fresh=0.4", "--json",
              home=tmp_path)
    assert r.returncode == 1 and "nothing was stored" in r.stderr, r.stdout + r.stderr
    assert json.loads(r.stdout)["datasets_added"] == 0
    assert _datasets(db) == {}

    # one dataset all rejected, another stored: only the second is registered
    good = {"arch": CELL, "dataset": "kept", "accuracy": 0.7, "seed": 1, **geo}
    runs.write_text("".join(json.dumps(x) + "\n" for x in [*bad, good]))
    r = tapas("ingest", str(runs), "--db", str(db), "--dcn", "fresh=0.4", "--dcn", "kept=0.6",
              "--json", home=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["added"] == 1 and rep["datasets_added"] == 1, rep
    stored = _datasets(db)
    assert set(stored) == {"kept"} and stored["kept"][0] == 0.6

    # the same DCN again is the same dataset; another DCN is a conflict, nothing changes
    r = tapas("ingest", str(runs), "--db", str(db), "--dcn", "kept=0.6", home=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    r = tapas("ingest", str(runs), "--db", str(db), "--dcn", "kept=0.8", home=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "'kept'" in r.stderr and "DCN 0.6000" in r.stderr and "0.8000" in r.stderr
    assert "--as kept" in r.stderr
    assert _datasets(db) == stored
