"""``python -m benchmarks.soak``: many clients, good and hostile, against one real server.

A ``tapas serve`` subprocess on 127.0.0.1 (a fresh temporary home seeded with the
starter data, an API token) serves ``clients`` threads for ``seconds``. Each client
draws, with its own seeded generator, one of:

* ``predict``: 1-100 random NAS-Bench-201 cells (of 15,625, so mostly not cached) at
  the default predictor's DCN (200);
* ``ingest``: 20 records of cells on a dataset with square inputs a multiple of 4 wide, one of them
  invalid (200 with exactly that one rejected);
* ``upload``: a real digits subset of a random size as ``.npz`` (202; 429 when the job
  queue is full);
* ``hostile``: a decompression bomb (as ``x.npy``, as a bare ``x``, or an ``x`` beside an
  ``x.npy``), an ``.npz`` header declaring a huge shape, a
  non-zip file, invalid JSON, no token, an overflowing seed, an oversized
  ``Content-Length`` (each has its expected 4xx);
* ``job``: a predictor for a random DCN, a job list, cancelling a job (200/202/409/429);
* ``read``: datasets, experiments, readiness (200).

Any 5xx, a status outside the expected set for its kind, or a failed connection is
counted as unexpected. Reported: requests and statuses per kind, p50/p99 latency per
kind, the server's RSS at ready, at the end and its peak (``VmHWM``), and whether the
database is intact afterwards (it opens, and holds the starter experiments plus exactly
what the ingests reported added). Every loop is bounded by the deadline and a request cap.
"""

from __future__ import annotations

import io
import os
import secrets
import tempfile
import threading
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import typer

from benchmarks import measure, run_cli
from tapas.app.bench.service import (
    READY_TIMEOUT_S,
    _free_port,
    _pct,
    _serve,
    _stop,
    _target_dcn,
    _wait_ready,
)
from tapas.app.cli.common import console

Progress = Callable[[str, int, int], None]
MAX_REQUESTS_PER_CLIENT = 100_000
KINDS = ("predict", "ingest", "upload", "hostile", "job", "read")
WEIGHTS = (0.45, 0.15, 0.08, 0.15, 0.07, 0.10)


def npy_zip(members: dict[str, tuple[tuple[int, ...] | None, str, int]],
            suffix: str = ".npy") -> bytes:
    """An ``.npz`` written member by member: each ``name: (shape, dtype, data_bytes)`` is a
    real ``.npy`` header declaring ``shape`` followed by ``data_bytes`` zero bytes streamed
    through deflate (a decompression bomb when ``data_bytes`` is large); ``shape`` None
    writes the zeros without a header (not an ``.npy``). Member names are ``name +
    suffix`` (``suffix=""``: as given, e.g. ``x`` and ``x.npy`` side by side)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, (shape, dtype, nbytes) in members.items():
            with zf.open(name + suffix, "w", force_zip64=True) as f:
                if shape is not None:
                    np.lib.format.write_array_header_1_0(
                        f, {"descr": np.dtype(dtype).str, "fortran_order": False,
                            "shape": shape})
                chunk = bytes(2**22)
                left = nbytes
                while left > 0:
                    f.write(chunk[:min(left, len(chunk))])
                    left -= len(chunk)
    return buf.getvalue()


def bomb(n: int = 65_536, side: int = 64) -> bytes:
    """``n`` zero images of ``side x side`` bytes: 268 MB of pixels in ~260 KB."""
    return npy_zip({"x": ((n, side, side), "|u1", n * side * side), "y": ((n,), "<i8", n * 8)})


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class _Soak:
    """Shared state of the client threads: the payloads and the tallies."""

    def __init__(self, url: str, token: str, dcn: float, datasets: list[str]) -> None:
        from sklearn.datasets import load_digits

        from tapas.core.arch import all_cells

        self.url, self.dcn, self.datasets = url, dcn, datasets
        self.auth = {"Authorization": f"Bearer {token}"}
        self.cells = all_cells()
        d = load_digits()
        self.digits = (d.images.astype(np.float32), d.target.astype(np.int64))
        self.bomb = bomb()
        n, side = 65_536, 64  # the same 268 MB of pixels, under the names np.load also reads
        self.bomb_bare = npy_zip({"x": ((n, side, side), "|u1", n * side * side),
                                  "y": ((n,), "<i8", n * 8)}, suffix="")
        self.bomb_twice = npy_zip({"x": ((n, side, side), "|u1", n * side * side),
                                   "x.npy": ((4, 8, 8), "<f4", 1024),
                                   "y.npy": ((4,), "<i8", 32)}, suffix="")
        self.huge = npy_zip({"x": ((10, 100_000, 100_000), "<f4", 64), "y": ((10,), "<i8", 80)})
        self.lock = threading.Lock()
        self.status: dict[str, Counter[str]] = defaultdict(Counter)
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.unexpected: list[str] = []
        self.added = 0
        self.jobs: list[str] = []

    def record(self, kind: str, status: int | str, dt: float, expected: set[int]) -> None:
        with self.lock:
            self.status[kind][str(status)] += 1
            self.latency[kind].append(dt)
            if status not in expected:
                if len(self.unexpected) < 50:
                    self.unexpected.append(f"{kind}: {status}")
                else:
                    self.unexpected.append("")

    def one(self, c: Any, kind: str, rng: np.random.Generator, k: int, i: int) -> None:
        import httpx

        t0 = time.perf_counter()
        try:
            status, expected = getattr(self, "_" + kind)(c, rng, k, i)
        except (httpx.HTTPError, OSError) as e:
            status, expected = type(e).__name__, set()
        self.record(kind, status, time.perf_counter() - t0, expected)

    # ------------------------------------------------------------------ the kinds
    def _predict(self, c: Any, rng: np.random.Generator, k: int, i: int) -> tuple[int, set]:
        n = int(rng.integers(1, 101))
        archs = [self.cells[j] for j in rng.choice(len(self.cells), n, replace=False)]
        r = c.post("/v1/predict", json={"archs": archs, "dcn": self.dcn})
        if r.status_code == 200 and len(r.json()["results"]) != n:
            return 0, set()
        return r.status_code, {200}

    def _ingest(self, c: Any, rng: np.random.Generator, k: int, i: int) -> tuple[int, set]:
        ds = self.datasets[int(rng.integers(len(self.datasets)))]
        recs: list[dict[str, Any]] = [
            {"arch": self.cells[int(rng.integers(len(self.cells)))], "dataset": ds,
             "accuracy": float(rng.uniform(0.1, 0.9)), "epochs": 12,
             "seed": int(k * MAX_REQUESTS_PER_CLIENT + i), "source": "soak"}
            for _ in range(19)]
        recs.append({"arch": "|bogus~0|", "dataset": ds, "accuracy": 0.5})
        r = c.post("/v1/experiments", json={"records": recs}, headers=self.auth)
        if r.status_code == 200:
            body = r.json()
            with self.lock:
                self.added += int(body["added"])
            if body["n_rejected"] != 1:
                return 0, set()
        return r.status_code, {200}

    def _upload(self, c: Any, rng: np.random.Generator, k: int, i: int) -> tuple[int, set]:
        x, y = self.digits
        n = int(rng.integers(100, 400))
        idx = np.sort(rng.choice(len(y), n, replace=False))
        buf = io.BytesIO()
        np.savez_compressed(buf, x=x[idx], y=y[idx])
        r = c.post("/v1/datasets", files={"file": ("d.npz", buf.getvalue())},
                   data={"name": f"soak-{k}-{i}"}, headers=self.auth)
        if r.status_code == 202:
            with self.lock:
                self.jobs.append(r.json()["job"]["id"])
        return r.status_code, {202, 429}

    def _hostile(self, c: Any, rng: np.random.Generator, k: int, i: int) -> tuple[int, set]:
        which = int(rng.integers(9))
        if which == 0:
            r = c.post("/v1/datasets", files={"file": ("b.npz", self.bomb)}, headers=self.auth)
            return r.status_code, {413}
        if which in (7, 8):  # a bomb by another name: bare members, or x beside x.npy
            payload = self.bomb_bare if which == 7 else self.bomb_twice
            r = c.post("/v1/datasets", files={"file": ("b.npz", payload)}, headers=self.auth)
            return r.status_code, {413} if which == 7 else {422}
        if which == 1:
            r = c.post("/v1/datasets", files={"file": ("h.npz", self.huge)}, headers=self.auth)
            return r.status_code, {413}
        if which == 2:
            r = c.post("/v1/datasets", files={"file": ("g.npz", b"PK\x03\x04garbage")},
                       headers=self.auth)
            return r.status_code, {422}
        if which == 3:
            r = c.post("/v1/experiments", content=b'{"records": [', headers={
                **self.auth, "Content-Type": "application/json"})
            return r.status_code, {422}
        if which == 4:
            r = c.post("/v1/experiments", json={"records": []})
            return r.status_code, {401}
        if which == 5:
            r = c.post("/v1/experiments", headers=self.auth, json={"records": [
                {"arch": self.cells[0], "dataset": self.datasets[0], "accuracy": 0.5,
                 "seed": 2**63}]})
            return r.status_code, {422}
        return self._declared_huge(), {413}

    def _declared_huge(self) -> int:
        """A 1 TiB ``Content-Length`` and no body, on a raw socket: the answer must come
        before any body is sent."""
        import socket

        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(b"POST /v1/experiments HTTP/1.1\r\nHost: soak\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 1099511627776\r\n"
                      b"Authorization: " + self.auth["Authorization"].encode() + b"\r\n\r\n")
            head = s.recv(64).decode("latin-1")
        return int(head.split()[1]) if head.startswith("HTTP/1.1 ") else 0

    def _job(self, c: Any, rng: np.random.Generator, k: int, i: int) -> tuple[int, set]:
        which = int(rng.integers(3))
        if which == 0:
            dcn = round(float(rng.uniform(0.2, 0.98)), 2)
            r = c.post("/v1/predictors", json={"dcn": dcn, "wait_s": 0}, headers=self.auth)
            if r.status_code == 202:
                with self.lock:
                    self.jobs.append(r.json()["job"]["id"])
            return r.status_code, {200, 202, 409, 429}
        if which == 1 and self.jobs:
            with self.lock:
                jid = self.jobs[int(rng.integers(len(self.jobs)))]
            r = c.delete(f"/v1/jobs/{jid}", headers=self.auth)
            return r.status_code, {200}
        r = c.get("/v1/jobs", params={"limit": 50})
        return r.status_code, {200}

    def _read(self, c: Any, rng: np.random.Generator, k: int, i: int) -> tuple[int, set]:
        path = ("/v1/datasets", "/v1/experiments", "/health/ready")[int(rng.integers(3))]
        r = c.get(path, params={"limit": 20} if "experiments" in path else None)
        return r.status_code, {200}


WARMUP_SHARE = 0.25
"""The first quarter of a soak is warm-up (caches fill, predictors load); after it the
server's memory should stay flat."""


def _rss_trend(samples: list[tuple[float, int]], seconds: float) -> dict[str, float]:
    """RSS after warm-up: at its start, its largest, and the least-squares slope over the
    rest of the soak (MiB per minute; about 0 when flat)."""
    after = [(t, kib / 1024) for t, kib in samples if t >= WARMUP_SHARE * seconds]
    if len(after) < 2:
        return {"rss_after_warmup_mib": float("nan"), "rss_max_after_warmup_mib": float("nan"),
                "rss_slope_mib_per_min": float("nan")}
    t, m = np.array(after).T
    slope = float(np.polyfit(t, m, 1)[0]) * 60.0
    return {"rss_after_warmup_mib": float(m[0]), "rss_max_after_warmup_mib": float(m.max()),
            "rss_slope_mib_per_min": slope}


def run_soak(clients: int = 16, seconds: float = 60.0,
             progress: Progress | None = None) -> dict[str, Any]:
    """Start a server, soak it, stop it, check its database; the stable-keyed results."""
    import httpx

    from lde import Store

    def report(phase: str, done: int, total: int) -> None:
        if progress is not None:
            progress(phase, done, total)

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="tapas-bench-soak-") as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "TAPAS_HOME": str(home), "TAPAS_API_TOKEN": token}
        env.pop("TAPAS_DB_PATH", None)
        env.pop("TAPAS_MODEL_DIR", None)
        log = Path(tmp) / "server.log"
        report("starting the server and its default predictor", 0, 1)
        proc = _serve(port, env, log)
        try:
            ready_s = _wait_ready(url, proc, log, READY_TIMEOUT_S)
            dcn = _target_dcn(url)
            items = httpx.get(url + "/v1/datasets", timeout=30).json()["items"]
            datasets = [d["name"] for d in items  # cells build on square inputs of 4k pixels
                        if d["dcn"] is not None and d["input_shape"][1] == d["input_shape"][2]
                        and d["input_shape"][1] % 4 == 0]
            n_before = httpx.get(url + "/v1/experiments", params={"limit": 1},
                                 timeout=30).json()["total"]
            rss_ready = _kib(proc.pid, "VmRSS")
            soak = _Soak(url, token, dcn, datasets)
            deadline = time.monotonic() + seconds

            def client(k: int) -> None:
                rng = np.random.default_rng(k)
                with httpx.Client(base_url=url, timeout=120) as c:
                    for i in range(MAX_REQUESTS_PER_CLIENT):
                        if time.monotonic() >= deadline:
                            return
                        kind = KINDS[int(rng.choice(len(KINDS), p=WEIGHTS))]
                        soak.one(c, kind, rng, k, i)

            threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            rss_t: list[tuple[float, int]] = []  # (seconds in, VmRSS KiB), once a second
            while any(t.is_alive() for t in threads):
                report(f"{clients} clients", int(min(seconds, time.perf_counter() - t0)),
                       int(seconds))
                rss_t.append((time.perf_counter() - t0, _kib(proc.pid, "VmRSS")))
                time.sleep(1.0)
            wall = time.perf_counter() - t0
            live = httpx.get(url + "/health/live", timeout=30).status_code
            rss_end, hwm = _kib(proc.pid, "VmRSS"), _kib(proc.pid, "VmHWM")
        finally:
            _stop(proc, 60)
        report("checking the database", 0, 1)
        intact, detail = True, "ok"
        try:
            with Store(home / "lde.duckdb", read_only=True) as store:
                n_after = int(store.sql("SELECT count(*) FROM experiments").column(0)[0].as_py())
            if n_after != n_before + soak.added:
                intact, detail = False, (f"{n_after} experiments, expected {n_before} + "
                                         f"{soak.added}")
        except Exception as e:  # the point is to report it, whatever it is
            intact, detail = False, f"{type(e).__name__}: {e}"
    all_lat = [x for v in soak.latency.values() for x in v]
    total = sum(len(v) for v in soak.latency.values())
    server_errors = sum(n for kind in soak.status.values() for s, n in kind.items()
                        if s.isdigit() and int(s) >= 500)
    return {
        "clients": clients, "seconds": round(wall, 1), "requests": total,
        "rps": total / wall if wall else 0.0,
        "unexpected": len(soak.unexpected), "server_errors_5xx": server_errors,
        "unexpected_examples": sorted(set(u for u in soak.unexpected if u))[:10],
        "p50_ms": _pct(all_lat, 50), "p99_ms": _pct(all_lat, 99),
        "per_kind": {k: {"requests": len(soak.latency[k]),
                         "status": dict(sorted(soak.status[k].items())),
                         "p50_ms": _pct(soak.latency[k], 50),
                         "p99_ms": _pct(soak.latency[k], 99)} for k in KINDS},
        "rss_ready_mib": rss_ready / 1024, "rss_end_mib": rss_end / 1024,
        "rss_peak_mib": hwm / 1024, "live_after": live,
        **_rss_trend(rss_t, seconds),
        "experiments_added": soak.added, "db_intact": intact, "db_check": detail,
        "ready_s": ready_s, "cpu_count": os.cpu_count(),
    }


def main(
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    clients: int = typer.Option(16, min=1, max=256, help="Concurrent clients."),
    seconds: float = typer.Option(60.0, min=1.0, max=3600.0, help="How long they run."),
) -> None:
    """Good and hostile clients against a real server on 127.0.0.1: unexpected answers,
    latency, server memory and the database's integrity afterwards."""
    res = measure(json_out, lambda progress: run_soak(clients=clients, seconds=seconds,
                                                      progress=progress), (RuntimeError,))
    if res is not None:
        from rich.table import Table

        t = Table(title=f"soak ({clients} clients, loopback)")
        for col in ("kind", "requests", "statuses", "p50 ms", "p99 ms"):
            t.add_column(col)
        for kind, v in res["per_kind"].items():
            t.add_row(kind, str(v["requests"]), " ".join(f"{s}:{n}" for s, n in
                                                          v["status"].items()),
                      f"{v['p50_ms']:.1f}", f"{v['p99_ms']:.1f}")
        console.print(t)
        for k in ("requests", "unexpected", "server_errors_5xx", "p50_ms", "p99_ms",
                  "rss_ready_mib", "rss_end_mib", "rss_peak_mib", "db_intact", "db_check"):
            v = res[k]
            console.print(f"{k}: {v:.1f}" if isinstance(v, float) else f"{k}: {v}",
                          highlight=False)
    if res["unexpected"] or not res["db_intact"]:
        raise typer.Exit(1)


if __name__ == "__main__":
    run_cli(main)
