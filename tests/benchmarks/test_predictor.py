"""``python -m benchmarks.predictor``: clear errors and scenario N from the command line,
and every research bench runnable as ``python -m benchmarks.<name>`` from a checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import benchmarks.predictor as bp
from tests.benchmarks.conftest import bench

ROOT = Path(__file__).resolve().parents[2]


def test_bad_scenarios_are_one_line() -> None:
    r = bench(bp, "--scenarios", "XYZ")
    assert r.exit_code == 1 and "--scenarios" in r.output


def test_bench_predictor_small_table_is_a_clear_error(tmp_path: Path,
                                                      tapas_home: Path) -> None:
    import csv

    from tests.tapas.app.cli.test_predictor import _table

    _table(tmp_path / "small.csv")
    r = bench(bp, "--table", str(tmp_path / "small.csv"))
    assert r.exit_code == 1 and "scenario A" in r.output and "has 12" in r.output
    assert "nan" not in r.output and "Warning" not in r.output
    with (tmp_path / "small.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    with (tmp_path / "one.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for r in rows if r["dataset"] == rows[0]["dataset"])
    r = bench(bp, "--table", str(tmp_path / "one.csv"), "--scenarios", "C")
    assert r.exit_code == 1 and "need two or more; the table holds 1" in r.output


def test_bench_predictor_scenario_n(tmp_path: Path, tapas_home: Path) -> None:
    """Scenario N (new families) runs from the CLI and reports TAP beside the baselines."""
    from tests.tapas.app.cli.test_predictor import _table

    _table(tmp_path / "small.csv", n=40)
    r = bench(bp, "--table", str(tmp_path / "small.csv"), "--scenarios", "N",
              "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out["scenario_n_kendall"]) == {"a", "b"}
    assert set(out["baselines"]["gbr"]["scenario_n_kendall"]) == {"a", "b"}
    assert {d["scenario"] for d in out["details"]} == {"N"}
    assert all(d["n_test"] == 10 for d in out["details"])  # half of each dataset's 20



def _from_checkout(name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks.NAME ARGS`` run from the repository root, as the docs and CI
    run it."""
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": path, **env}, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("name", ["predictor", "search", "soak", "spaces", "experiments",
                                  "knowledge"])
def test_each_bench_command_runs_from_the_checkout(name: str) -> None:
    """The flags the bench had as ``tapas bench NAME``."""
    r = _from_checkout(name, "--help")
    assert r.returncode == 0, r.stderr
    assert "--json" in r.stdout


def test_a_bad_setting_is_one_line_as_for_tapas() -> None:
    r = _from_checkout("search", "--json", TAPAS_DEVICE="gpu")
    assert r.returncode == 1 and "bad setting TAPAS_DEVICE" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_tapas_bench_keeps_what_users_run() -> None:
    """The speed and health checks of an install stay ``tapas bench``; the research
    benches are ``python -m benchmarks.<name>`` only."""
    from tapas.app.cli.main import bench_app

    names = {c.name for c in bench_app.registered_commands}
    assert names == {"lde", "dcn", "first-prediction", "devices", "service"}
