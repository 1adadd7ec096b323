"""``tapas serve`` in a child process on a free loopback port, for tests that need the
server's own memory figures (``/proc/<pid>/status``) or a hard kill."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

TOKEN = "s3cret-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_kib(pid: int, field: str) -> int:
    """``VmRSS`` / ``VmHWM`` (KiB) of a process, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class ProcServer:
    """``with ProcServer(home, TAPAS_MAX_QUEUED_JOBS="2") as srv: httpx.get(srv.url)``.

    The database is created empty (no starter seeding) unless ``seed=True``; the default
    predictor is not loaded (the tests bring their own data)."""

    def __init__(self, home: Path, *, seed: bool = False, default_predictor: bool = False,
                 **env: str) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "TAPAS_HOME": str(home), "TAPAS_API_TOKEN": TOKEN,
                    "TAPAS_DEVICE": "cpu", "TAPAS_PROBE_EPOCHS": "1",
                    "TAPAS_PROBE_MAX_SAMPLES": "200", **env}
        for k in ("TAPAS_DB_PATH", "TAPAS_MODEL_DIR"):
            self.env.pop(k, None)
        self.seed = seed
        self.default_predictor = default_predictor
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / f"server-{self.port}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 180.0, wait: bool = True) -> ProcServer:
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.seed and not (self.home / "lde.duckdb").exists():
            from lde import Store

            Store(self.home / "lde.duckdb").close()
        cmd = [sys.executable, "-m", "tapas.app.cli.main", "serve", "--port", str(self.port),
               "--log-level", "warning",
               "--default-predictor" if self.default_predictor else "--no-default-predictor"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=log)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 180.0) -> dict[str, Any]:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: "
                                     f"{self.log.read_text()[-2000:]}")
            try:
                r = httpx.get(self.url + "/health/ready", timeout=5)
                if r.status_code == 200 and r.json()["default"] != "training":
                    return r.json()
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: nothing gets to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ProcServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
