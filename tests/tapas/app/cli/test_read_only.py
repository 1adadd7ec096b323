"""Commands that only read (issue 36): ``tapas lde stats``, ``tapas predictor list|show``
open the LDE read-only, so they never seed, never take the write lock and answer beside a
reader; on a fresh home they say what the shipped data holds without creating anything.
``tapas arch show`` never opens the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from lde import Store
from lde.schema import MIGRATIONS

ROOT = Path(__file__).resolve().parents[4]
CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
        "skip_connect~2|")


def _cli(*args: str):  # noqa: ANN202
    from tapas.app.cli.main import app

    return CliRunner().invoke(app, list(args))


def _hold_reader(db: Path) -> subprocess.Popen:
    """Another process with ``db`` open read-only (as a second `tapas lde stats` would)."""
    code = ("import sys, time; from lde import Store; s = Store(sys.argv[1], read_only=True); "
            "print('ready', flush=True); time.sleep(60)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPAS_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE,
                            env=env, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_fresh_home_reads_create_nothing(tapas_home: Path) -> None:
    from lde.default_data import shipped_counts

    r = _cli("lde", "stats", "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["exists"] is False and s["path"] == str(tapas_home / "lde.duckdb")
    shipped = shipped_counts()
    assert s["shipped"] == shipped
    assert shipped["experiments"] == sum(x["experiments"] for x in shipped["sources"])
    r = _cli("lde", "stats")
    assert r.exit_code == 0 and "no experiment database" in r.stdout
    assert "first command that needs one" in r.stdout
    r = _cli("predictor", "list", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"items": []}
    r = _cli("predictor", "show", "p_0123456789abcdef")
    assert r.exit_code == 1 and "no predictor" in r.output and "Traceback" not in r.output
    r = _cli("predictor", "show", "../x")
    assert r.exit_code == 1 and "not a predictor id" in r.output
    r = _cli("arch", "show", CELL, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["layers"]
    assert not tapas_home.exists() or not any(tapas_home.iterdir())  # nothing was seeded


def test_reads_run_beside_another_reader(tapas_home: Path) -> None:
    """A writable open fails while another process holds the file (DuckDB: one writer, or
    any number of readers); a read-only command answers."""
    db = tapas_home / "lde.duckdb"
    tapas_home.mkdir(parents=True)
    Store(db).close()
    proc = _hold_reader(db)
    try:
        r = _cli("lde", "stats", "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["exists"] is True
        r = _cli("predictor", "list", "--json")
        assert r.exit_code == 0 and json.loads(r.stdout) == {"items": []}, r.output
        r = _cli("predictor", "show", "p_0123456789abcdef")
        assert r.exit_code == 1 and "no predictor" in r.output
    finally:
        proc.kill()
        proc.wait()


def test_stats_finishes_a_database_a_reader_cannot_use(tapas_home: Path, tmp_path: Path
                                                       ) -> None:
    """An older schema is migrated and a first seeding cut short is finished (once, by
    a writable open) before the read; a reader never reports a half-seeded database."""
    old = tmp_path / "old.duckdb"
    con = duckdb.connect(str(old))
    for stmt in MIGRATIONS[1]:
        con.execute(stmt)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.close()
    r = _cli("lde", "stats", "--db", str(old), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["schema_version"] == 2

    from lde.default_data import shipped_counts

    pending = tapas_home / "lde.duckdb"
    tapas_home.mkdir(parents=True)
    with Store(pending) as s, s.transaction() as c:
        c.execute("INSERT OR REPLACE INTO meta VALUES ('starter', 'pending')")
    r = _cli("lde", "stats", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["experiments"] == shipped_counts()["experiments"]
    with Store(pending, read_only=True) as s:
        assert s.sql("SELECT value FROM meta WHERE key = 'starter'").column(
            0).to_pylist() == ["done"]


def test_the_registry_commands_import_neither_sklearn_nor_torch() -> None:
    """``tapas.app.pipeline`` and ``predictor`` import cheaply: scikit-learn (about a second
    of a read-only command's start) and torch load when a model is built or loaded."""
    code = ("import sys, tapas.app.pipeline, tapas.app.cli.main, predictor; "
            "print(sorted(m for m in ('sklearn', 'torch') if m in sys.modules)); "
            "predictor.TAPRegressor; print('sklearn' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout.split("\n")
    assert out[:2] == ["[]", "True"]
