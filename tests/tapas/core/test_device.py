"""The thread budget (issue 36): ``TAPAS_THREADS`` is applied once, where every CLI command
and every pipeline start, before torch loads: torch's small models get one thread and no
spinning OpenMP pool, DuckDB gets the budget, and a bench's ``--threads`` overrides it.

Each check runs in a fresh interpreter: torch reads its thread settings when it loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _py(code: str, home: Path, **env: str) -> list[str]:
    """Run ``code`` in a new interpreter on this checkout; its stdout lines."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("TAPAS_", "OMP_", "MKL_"))}
    base.update({"TAPAS_HOME": str(home), **env,
                 "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=base,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip().splitlines()


_AFTER_A_COMMAND = """
import os
from tapas.app.cli.main import app
try:
    app(["lde", "stats", "--json"])
except SystemExit:
    pass
import torch
from tapas.core.device import resolve_device
resolve_device("cpu")
print(os.environ["OMP_NUM_THREADS"], os.environ["OMP_WAIT_POLICY"], torch.get_num_threads(),
      torch.get_num_interop_threads())
"""


def test_every_command_applies_the_budget_before_torch_loads(tmp_path: Path) -> None:
    """On 2 cores torch would start 2 intra-op and 2 inter-op threads, spinning between
    parallel regions; any command (here a read-only one) leaves 1, waiting passively."""
    out = _py(_AFTER_A_COMMAND, tmp_path / "home")
    assert out[-1].split() == ["1", "PASSIVE", "1", "1"]
    assert json.loads(out[0])["exists"] is False  # applied silently: stdout is the JSON
    # a user's own OpenMP wait policy is kept
    out = _py(_AFTER_A_COMMAND, tmp_path / "home", OMP_WAIT_POLICY="ACTIVE")
    assert out[-1].split()[:2] == ["1", "ACTIVE"]


def test_pipeline_start_applies_it_and_a_bench_override_wins(tmp_path: Path) -> None:
    code = """
import torch
torch.set_num_threads(2)  # torch already loaded (a library user, a notebook)
from tapas.app.pipeline import Pipeline
Pipeline()
print(torch.get_num_threads())
from tapas.core.device import apply_threads
apply_threads(2)  # what a bench's --threads does
Pipeline()  # a pipeline the bench starts afterwards keeps the bench's count
print(torch.get_num_threads())
"""
    assert _py(code, tmp_path / "home") == ["1", "2"]


def test_duckdb_and_the_pools_take_the_budget(tmp_path: Path) -> None:
    code = """
from lde import Store
from tapas.core.config import get_settings, thread_budget
with Store(get_settings().home / "x.duckdb") as s:
    print(s.sql("SELECT current_setting('threads')").column(0).to_pylist()[0])
print(thread_budget(), get_settings().torch_threads)
"""
    assert _py(code, tmp_path / "home", TAPAS_THREADS="3") == ["3", "3 1"]
    from tapas.core.config import available_cpus

    assert _py(code, tmp_path / "home") == [str(available_cpus()),
                                            f"{available_cpus()} 1"]


@pytest.mark.parametrize("bad", ["-1", "many"])
def test_a_bad_budget_is_one_line(tmp_path: Path, bad: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPAS_")}
    env.update({"TAPAS_HOME": str(tmp_path), "TAPAS_THREADS": bad,
                "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    r = subprocess.run([sys.executable, "-c", "from tapas.app.cli import main; main()", "lde",
                        "stats"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: bad setting TAPAS_THREADS=") and len(
        r.stderr.strip().splitlines()) == 1

