"""The CLI, the one-writer lock, and SIGKILL during an ingest (all or none of the batch)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lde import LockedError, Store
from tests.lde.conftest import small_arch

ROOT = Path(__file__).resolve().parents[4]


def _cli(*args: str):
    from tapas.app.cli.main import app

    return CliRunner().invoke(app, list(args))


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPAS_")}
    env["TAPAS_HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _records_file(path: Path, n: int) -> Path:
    a = small_arch()
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"arch": a.to_dict(), "dataset": "toy", "accuracy": 0.5,
                                "seed": i}) + "\n")
    return path


def test_cli_ingest_stats_export_import(tapas_home: Path, tmp_path: Path) -> None:
    p = _records_file(tmp_path / "r.jsonl", 25)
    with p.open("a") as f:
        f.write('{"arch": "|nope|", "dataset": "toy", "accuracy": 0.5}\n')
    r = _cli("ingest", str(p), "--dcn", "toy=0.4", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["added"] == 25 and rep["n_rejected"] == 1
    assert rep["rejected"][0]["where"] == 26
    r = _cli("ingest", str(p))  # table output, idempotent
    assert r.exit_code == 0 and "skipped" in r.stdout and "line 26" in r.stdout
    # a database the CLI creates starts with the shipped data (when it is installed): the
    # starter experiments and the published tables (lde.default_data)
    from lde.default_data import shipped_counts

    n0 = shipped_counts()["experiments"]
    r = _cli("lde", "stats", "--json")
    s = json.loads(r.stdout)
    toy = [d for d in s["per_dataset"] if d["name"] == "toy"]
    assert s["experiments"] == n0 + 25 and toy and toy[0]["dcn"] == 0.4
    assert sum(v["experiments"] for v in s["spaces"].values()) == n0 + 25
    assert s["spaces"]["nb101"] == {"datasets": 1, "experiments": 1000}
    text = _cli("lde", "stats").stdout
    assert "toy" in text and "spaces (experiments on datasets): chain" in text
    r = _cli("lde", "export", str(tmp_path / "ex"), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["counts"]["experiments"] == n0 + 25
    r = _cli("lde", "import", str(tmp_path / "ex"), "--db", str(tmp_path / "b.duckdb"), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["added"] == 25
    r = _cli("ingest", str(tmp_path / "ex"), "--db", str(tmp_path / "b.duckdb"), "--json")
    assert json.loads(r.stdout)["skipped"] == n0 + 25


def test_cli_errors_are_one_line(tapas_home: Path, tmp_path: Path,
                                 instant_retries: list[float]) -> None:
    r = _cli("ingest", str(tmp_path / "missing.jsonl"))
    assert r.exit_code == 1 and "not found" in r.output and "Traceback" not in r.output
    r = _cli("ingest", str(tmp_path), "--dcn", "toy")
    assert r.exit_code == 1 and "NAME=VALUE" in r.output
    bad = tmp_path / "b.csv"
    bad.write_text("arch,accuracy\nx,1\n")
    r = _cli("ingest", str(bad))
    assert r.exit_code == 1 and "missing column" in r.output and "Traceback" not in r.output
    r = _cli("lde", "export", str(tmp_path / "e"), "--db", str(tmp_path / "none.duckdb"))
    assert r.exit_code == 1 and "no experiment database" in r.output
    # --url: nothing listens on port 9 -> a one-line error, and no local database is opened
    p = _records_file(tmp_path / "r.jsonl", 2)
    r = _cli("ingest", str(p), "--url", "http://127.0.0.1:9")
    assert r.exit_code == 1 and "127.0.0.1:9" in r.output and "Traceback" not in r.output
    assert instant_retries  # it retried before it gave up
    r = _cli("ingest", str(tmp_path), "--url", "http://127.0.0.1:9")
    assert r.exit_code == 1 and "own experiment records" in r.output


def test_cli_nb201(tapas_home: Path, tmp_path: Path, shared_data: Path) -> None:
    with (shared_data / "nb201.csv").open() as f:
        lines = [next(f) for _ in range(21)]
    p = tmp_path / "nb.csv"
    p.write_text("".join(lines))
    dcn = tmp_path / "dcn.json"
    dcn.write_text('{"cifar10": 0.91, "cifar100": 0.62}')
    # an existing, empty database (a new default one is seeded with these NAS-Bench-201
    # results already, so the rows would be duplicates)
    db = tmp_path / "empty.duckdb"
    Store(db).close()
    r = _cli("ingest", str(p), "--columns", "cifar10_test,cifar100_test", "--dcn-file",
             str(dcn), "--json", "--db", str(db))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["added"] == 40
    r = _cli("ingest", str(p), "--columns", "imagenet16_test",  # no DCN: note printed
             "--db", str(db))
    assert r.exit_code == 0 and "no DCN yet for ImageNet16-120" in r.output


def _hold_writer(db: Path) -> subprocess.Popen:
    code = ("import sys, time; from lde import Store; s = Store(sys.argv[1]); "
            "print('ready', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE,
                            env=_env(db.parent), text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_locked_database_is_reported(tapas_home: Path, tmp_path: Path) -> None:
    from tapas.core.config import get_settings

    db = get_settings().database
    p = _records_file(tmp_path / "r.jsonl", 3)
    proc = _hold_writer(db)
    try:
        with pytest.raises(LockedError) as e:
            Store(db)
        assert str(db) in str(e.value) and f"PID {proc.pid}" in str(e.value)
        with pytest.raises(LockedError):
            Store(db, read_only=True)
        r = _cli("ingest", str(p), "--dcn", "toy=0.5")
        assert r.exit_code == 1 and "locked by another process" in r.output
        assert "tapas serve" in r.output and "Traceback" not in r.output
        r = _cli("lde", "stats")
        assert r.exit_code == 1 and "locked" in r.output
    finally:
        proc.kill()
        proc.wait()
    r = _cli("ingest", str(p), "--dcn", "toy=0.5", "--json")  # free again
    assert r.exit_code == 0 and json.loads(r.stdout)["added"] == 3


_KILL_SCRIPT = """
import sys, time
import numpy as np
from lde import Store
from lde.archs import arch_row
from lde.store import experiment_table
from tests.lde.conftest import small_arch

n = int(sys.argv[2])
store = Store(sys.argv[1])
archs = [small_arch(w) for w in range(4, 24)]
table = experiment_table({
    "arch_id": [archs[i % 20].id for i in range(n)], "dataset_id": ["toy"] * n,
    "split": ["test"] * n, "seed": np.arange(n) + int(sys.argv[3]), "source": ["kill"] * n,
    "accuracy": np.full(n, 0.5)})
with store.transaction():
    store.ingest_rows([arch_row(a) for a in archs], table, kind="kill")
    print("inserted", flush=True)
    if sys.argv[4] == "hold":
        time.sleep(60)  # killed here: the batch is written but not committed
print("committed", flush=True)
time.sleep(60)
"""


#: The ingest ``tapas ingest FILE`` runs (``lde.ingest.ingest_records``), announcing on
#: stdout when every record is validated: its transaction is open and the rows go in next.
_INGEST_SCRIPT = """
import sys
from lde import Store
from lde.ingest import ingest_records

def progress(phase, done, total):
    if phase == "validate" and done == total:
        print("writing", flush=True)

with Store(sys.argv[1]) as store:
    ingest_records(store, sys.argv[2], source="big", progress=progress)
print("committed", flush=True)
"""


def _start(db: Path, n: int, offset: int, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(db), str(n), str(offset),
                             mode], stdout=subprocess.PIPE, env=_env(db.parent), text=True,
                            cwd=ROOT)


@pytest.mark.slow
def test_sigkill_mid_batch_keeps_all_or_none(tmp_path: Path) -> None:
    db = tmp_path / "k.duckdb"
    with Store(db) as s:
        s.upsert_dataset("toy", None, None, 10, (3, 8, 8), 0.5)
    # a committed batch survives a kill after the commit
    proc = _start(db, 5_000, 0, "commit")
    assert proc.stdout.readline().strip() == "inserted"
    assert proc.stdout.readline().strip() == "committed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # a batch killed after writing its rows but before the commit leaves nothing
    proc = _start(db, 200_000, 10_000, "hold")
    assert proc.stdout.readline().strip() == "inserted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Store(db) as s:
        assert s.counts()["experiments"] == 5_000
        assert s.counts()["architectures"] == 20
    # killed while a large file ingest writes its rows (its transaction is under way, not
    # before it began): all or none
    big = _records_file(tmp_path / "big.jsonl", 60_000)
    proc = subprocess.Popen([sys.executable, "-c", _INGEST_SCRIPT, str(db), str(big)],
                            env=_env(tmp_path), cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed, not finished
    with Store(db) as s:
        n = s.sql("SELECT count(*) FROM experiments WHERE source = 'big'").column(0)[0].as_py()
        assert n in (0, 60_000)
        assert s.counts()["experiments"] == 5_000 + n
