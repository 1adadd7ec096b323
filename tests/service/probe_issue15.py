"""Issue 15's probes against ``tapas serve`` run from the current directory's checkout:
``cd CHECKOUT && python /path/to/issue-15-checkout/tests/service/probe_issue15.py``
(the helpers come from this file's checkout, the server from the current directory's).
Prints one JSON object; figures in BENCHMARKS.md. Loopback only, bounded loops."""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(1, str(Path(__file__).resolve().parents[2]))
from benchmarks.soak import bomb  # noqa: E402
from tests.service.conftest import digits_npz  # noqa: E402
from tests.service.proc_server import AUTH, ProcServer, proc_kib  # noqa: E402
from tests.service.test_hardening import RSSWatch  # noqa: E402

home = Path(tempfile.mkdtemp()) / "home"
out = {}
with (
    ProcServer(home, TAPAS_MAX_UPLOAD_MB="8") as srv,
    httpx.Client(base_url=srv.url, headers=AUTH, timeout=300) as c,
):
    out["rss_start_mib"] = proc_kib(srv.pid, "VmRSS") / 1024
    data = bomb()
    with RSSWatch(srv.pid) as w:
        r = c.post("/v1/datasets", files={"file": ("b.npz", data)}, data={"name": "bomb"})
    out["bomb_1"] = [r.status_code, r.json()["error"]["code"], w.peak_kib / 1024]
    with RSSWatch(srv.pid) as w, ThreadPoolExecutor(4) as ex:
        rs = list(
            ex.map(
                lambda _: c.post(
                    "/v1/datasets", files={"file": ("b.npz", data)}, data={"name": "bomb"}
                ),
                range(4),
            )
        )
    out["bomb_4"] = [[x.status_code for x in rs], w.peak_kib / 1024]
    d = digits_npz(120)[0]
    with ThreadPoolExecutor(8) as ex:
        rs = list(
            ex.map(
                lambda _: c.post(
                    "/v1/datasets", files={"file": ("d.npz", d)}, data={"name": "d120"}
                ),
                range(8),
            )
        )
    out["identical_8"] = sorted(x.status_code for x in rs)
    rec = {
        "arch": "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "dataset": "d120",
        "accuracy": 0.5,
    }
    out["seed_2^63"] = c.post(
        "/v1/experiments", json={"records": [{**rec, "seed": 2**63}]}
    ).status_code
    out["epochs_2^31"] = c.post(
        "/v1/experiments", json={"records": [{**rec, "epochs": 2**31}]}
    ).status_code
    out["badjson_no_token"] = httpx.post(
        srv.url + "/v1/experiments", content=b"{x", headers={"Content-Type": "application/json"}
    ).status_code
    body = json.dumps(
        {"records": [{**rec, "dataset": "nope", "hparams": {"lr": 0.1}}] * 120_000}
    ).encode()
    out["big_body_mb"] = len(body) / 1e6
    res = {}
    t = threading.Thread(
        target=lambda: res.setdefault(
            "r",
            c.post("/v1/experiments", content=body, headers={"Content-Type": "application/json"}),
        )
    )
    t.start()
    worst = 0
    with httpx.Client(base_url=srv.url) as p:
        while t.is_alive():
            t0 = time.perf_counter()
            p.get("/health/live")
            worst = max(worst, time.perf_counter() - t0)
            time.sleep(0.05)
    out["live_worst_s_behind_big_body"] = worst
    out["ready_body"] = httpx.get(srv.url + "/health/ready").json()
    r = c.post(
        "/v1/experiments",
        content=json.dumps({"records": [], "k" * 10_000_000: 1}),
        headers={"Content-Type": "application/json"},
    )
    out["huge_key_422_bytes"] = [r.status_code, len(r.content)]
    acc = 0
    for i in range(60):
        r = c.post("/v1/datasets", json={"spec": f"digits?per_class={20 + i}", "force": True})
        acc += r.status_code == 202
    out["jobs_accepted_of_60"] = acc
    out["rss_end_mib"] = proc_kib(srv.pid, "VmRSS") / 1024
print(json.dumps(out, indent=1))
