"""``tapas bench service``: /v1/predict over real HTTP on loopback.

A ``tapas serve`` subprocess (its own interpreter, so client and server do not share a
GIL) serves a database (default: a fresh temporary one seeded with the starter data);
the benchmark waits for ``/health/ready`` and then measures, with keep-alive clients:

* latency of requests scoring 1 and 1,000 NAS-Bench-201 cells (p50, p99; after a
  warm-up request, so the cell expansion and encoding caches are warm, as in a search
  loop that re-scores the cells of its population);
* requests per second, p50 and p99 with ``clients`` concurrent clients (1 cell per
  request), spread over one client process per core so that the load generator's own
  GIL does not cap the load;
* errors: every non-200 answer or failed request over all phases;
* the longest ``/health/live`` answer while one client sends a 60 MB predict body (the
  default TAPAS_MAX_BODY_MB refuses it: a 413 before the body is read) and a 15 MB one
  (~1,900 IR networks, decoded, checked and scored), with the big request's status.

With ``db`` the server uses the user's settings (model directory included), so
predictors registered there load at startup instead of being trained again.

Every loop is bounded by its request count; the server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tapas.core.arch import all_cells, from_nb201

Progress = Callable[[str, int, int], None]
READY_TIMEOUT_S = 900.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float,
                default: bool = True) -> float:
    """Seconds until ``/health/ready`` answers 200 (with ``default``: and the default
    predictor is loaded, or known to be absent)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the server exited with status {proc.returncode}:\n{tail}")
        try:
            r = httpx.get(url + "/health/ready", timeout=5)
            if r.status_code == 200 and (not default or r.json().get("default") != "training"):
                return time.perf_counter() - t0
            if r.json().get("status") == "failed":
                raise RuntimeError(f"the server could not load its predictor: {r.text}")
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server was not ready within {timeout:g} s")


def _serve(port: int, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start ``tapas serve`` (with ``args``) from this checkout on 127.0.0.1:``port``, in
    ``env`` with the checkout put first on its PYTHONPATH, its output going to ``log``."""
    root = str(Path(__file__).resolve().parents[2])  # the checkout holding tapas/, service/
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    cmd = [sys.executable, "-m", "tapas.app.cli.main", "serve", "--host", "127.0.0.1",
           "--port", str(port), *args, "--log-level", "warning"]
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)


def _stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Terminate the server ``proc``; kill it if it has not exited after ``timeout`` s."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1e3, q)) if xs else float("nan")


def _target_dcn(url: str) -> float:
    """The default predictor's DCN (what the server answers without training)."""
    ready = httpx.get(url + "/health/ready", timeout=10).json()
    if not ready.get("predictor"):
        raise RuntimeError("the served database has no predictor to score with "
                           f"({ready.get('detail')}); ingest experiments first")
    return float(httpx.get(f"{url}/v1/predictors/{ready['predictor']}", timeout=10).json()["dcn"])


def _client_process(url: str, dcn: float, singles: list[str], clients: int, requests: int,
                    first: int) -> tuple[list[float], int]:
    """``clients`` keep-alive clients on threads of one process (the load is spread over
    processes so that the clients' own GIL does not cap what the server is asked for),
    each sending ``requests`` single-network predicts; ``(latencies, errors)``."""
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client(k: int) -> None:
        mine = []
        with httpx.Client(base_url=url, timeout=60) as c:
            for i in range(requests):
                t = time.perf_counter()
                try:
                    r = c.post("/v1/predict", json={"archs": [singles[(k + i) % len(singles)]],
                                                    "dcn": dcn})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                mine.append(time.perf_counter() - t)
                if not ok:
                    with lock:
                        errors[0] += 1
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=client, args=(first + k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, errors[0]


def ir_body(mb: float, dcn: float) -> bytes:
    """A predict body of about ``mb`` MiB: distinct NAS-Bench-201 networks as IR dicts."""
    cells = all_cells()
    archs: list[dict[str, Any]] = []
    size, i = 0, 0
    while size < mb * 2**20:
        d = from_nb201(cells[(i * 7) % len(cells)]).to_dict()
        archs.append(d)
        size += len(json.dumps(d)) + 2
        i += 1
    return json.dumps({"archs": archs, "dcn": dcn}).encode()


def live_during(url: str, path: str, body: bytes) -> tuple[float, int | str]:
    """(max ``/health/live`` latency in ms, the big request's status) while ``body`` is
    POSTed to ``path`` on another connection."""
    out: dict[str, int | str] = {}

    def post() -> None:
        try:
            r = httpx.post(url + path, content=body, timeout=600,
                           headers={"Content-Type": "application/json"})
            out["status"] = r.status_code
        except httpx.HTTPError as e:
            out["status"] = type(e).__name__

    t = threading.Thread(target=post)
    t.start()
    worst = 0.0
    with httpx.Client(base_url=url, timeout=600) as probe:
        while t.is_alive():
            t0 = time.perf_counter()
            probe.get("/health/live")
            worst = max(worst, time.perf_counter() - t0)
            time.sleep(0.01)
    t.join()
    return worst * 1e3, out.get("status", "none")


def run_benchmark(requests_1: int = 300, requests_1000: int = 40, clients: int = 16,
                  concurrent_requests: int = 50, db: Path | None = None,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Start a server, measure, stop it; returns the stable-keyed result dict."""
    def report(phase: str, done: int, total: int) -> None:
        if progress is not None:
            progress(phase, done, total)

    rng = np.random.default_rng(0)
    cells = all_cells()
    batch = [cells[i] for i in rng.choice(len(cells), 1000, replace=False)]
    singles = batch[:50]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    errors = 0
    with tempfile.TemporaryDirectory(prefix="tapas-bench-service-") as tmp:
        env = dict(os.environ)
        if db is None:  # a fresh database and model directory, thrown away afterwards
            env["TAPAS_HOME"] = str(Path(tmp) / "home")
            env.pop("TAPAS_MODEL_DIR", None)
        env.pop("TAPAS_API_TOKEN", None)  # loopback only; reads and predict need no token
        database = db.expanduser() if db is not None else Path(tmp) / "home" / "lde.duckdb"
        log = Path(tmp) / "server.log"
        report("starting the server and its default predictor", 0, 1)
        proc = _serve(port, env, log, "--db", str(database))
        try:
            ready_s = _wait_ready(url, proc, log, READY_TIMEOUT_S, default=False)
            default_s = ready_s + _wait_ready(url, proc, log, READY_TIMEOUT_S)
            dcn = _target_dcn(url)
            with httpx.Client(base_url=url, timeout=60) as c:
                def call(archs: list[str]) -> float:
                    nonlocal errors
                    t = time.perf_counter()
                    try:
                        r = c.post("/v1/predict", json={"archs": archs, "dcn": dcn})
                        ok = r.status_code == 200 and len(r.json()["results"]) == len(archs)
                    except httpx.HTTPError:
                        ok = False
                    dt = time.perf_counter() - t
                    errors += not ok
                    return dt

                cold_1000 = call(batch)  # expands and encodes the 1,000 cells once
                for s in singles:
                    call([s])
                lat1 = []
                for i in range(requests_1):
                    lat1.append(call([singles[i % len(singles)]]))
                    if i % 20 == 0:
                        report("1 architecture per request", i, requests_1)
                lat1000 = []
                for i in range(requests_1000):
                    lat1000.append(call(batch))
                    report("1,000 architectures per request", i + 1, requests_1000)

            report(f"{clients} concurrent clients", 0, 1)
            procs = max(1, min(clients, os.cpu_count() or 1))
            shares = [clients // procs + (k < clients % procs) for k in range(procs)]
            with mp.get_context("spawn").Pool(procs) as pool:
                t0 = time.perf_counter()
                parts = pool.starmap(_client_process, [
                    (url, dcn, singles, n, concurrent_requests, sum(shares[:k]))
                    for k, n in enumerate(shares)])
                wall = time.perf_counter() - t0
            conc_lat = [x for lat, _ in parts for x in lat]
            errors += sum(err for _, err in parts)
            report(f"{clients} concurrent clients", 1, 1)
            report("liveness during large bodies", 0, 2)
            live_60, status_60 = live_during(url, "/v1/predict", ir_body(60, dcn))
            report("liveness during large bodies", 1, 2)
            live_15, status_15 = live_during(url, "/v1/predict", ir_body(15, dcn))
            report("liveness during large bodies", 2, 2)
        finally:
            _stop(proc, 30)
    return {
        "p50_ms_1": _pct(lat1, 50), "p99_ms_1": _pct(lat1, 99),
        "p50_ms_1000": _pct(lat1000, 50), "p99_ms_1000": _pct(lat1000, 99),
        "rps_16_clients": clients * concurrent_requests / wall,
        "p50_ms_16_clients": _pct(conc_lat, 50), "p99_ms_16_clients": _pct(conc_lat, 99),
        "client_processes": procs,
        "errors": int(errors),
        "clients": clients, "requests_1": requests_1, "requests_1000": requests_1000,
        "concurrent_requests": clients * concurrent_requests,
        "live_max_ms_during_60mb_body": live_60, "status_60mb_body": status_60,
        "live_max_ms_during_15mb_body": live_15, "status_15mb_body": status_15,
        "cold_ms_1000": cold_1000 * 1e3, "ready_s": ready_s,
        "default_predictor_s": default_s, "dcn": dcn,
        "cpu_count": os.cpu_count(),
    }
