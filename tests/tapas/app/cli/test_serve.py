"""``tapas serve`` as users run it: a subprocess serving HTTP on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[4]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_tapas_serve_subprocess(tapas_home: Path) -> None:
    from lde import Store

    port = _free_port()
    db = tapas_home / "served.duckdb"
    Store(db).close()  # an existing (empty) database: no starter seeding, the test stays fast
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TAPAS_API_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tapas.app.cli.main", "serve", "--port", str(port), "--db", str(db),
         "--no-default-predictor", "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "tapas serve did not become ready"
            time.sleep(0.2)
        assert r.json()["database"] == "open" and str(db) not in r.text  # no server paths
        assert httpx.get(f"http://127.0.0.1:{port}/v1/datasets").status_code == 200
        # the running service holds the database: a second writer is refused cleanly
        second = subprocess.run(
            [sys.executable, "-m", "tapas.app.cli.main", "serve", "--port", str(_free_port()),
             "--db", str(db)], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert second.returncode == 1 and "locked" in second.stderr
    finally:
        proc.terminate()
        proc.wait(30)
    assert db.exists()
