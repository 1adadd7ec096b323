"""tapas.app.client: against the real service on loopback, and against tiny real HTTP servers
that misbehave on purpose (retries, 413 splitting)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from tapas.app.client import Client, JobFailed, Prediction, TapasConnectionError, TapasError
from tests.tapas.live_server import TOKEN, live_server, service_env  # noqa: F401

CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")


# ------------------------------------------------------------------ import hygiene
def test_client_imports_neither_torch_nor_duckdb() -> None:
    code = ("import sys, tapas.app.client, tapas.app.search\n"
            "heavy = [m for m in ('torch', 'duckdb', 'lde', 'predictor', 'probenet', 'service')"
            " if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "", f"tapas.app.client pulled in: {out.stdout.strip()}"


# ------------------------------------------------------------------ tiny real servers
class _Flaky(BaseHTTPRequestHandler):
    """Answers /v1/predict with ``fail_codes`` first (503, 503, ...), then a valid body;
    caps requests at ``cap`` architectures (413 too_many_archs beyond)."""

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
              ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        st = self.server.state  # type: ignore[attr-defined]
        n = int(self.headers.get("Content-Length", 0))
        req = json.loads(self.rfile.read(n))
        st["requests"].append(req)
        st["sizes"].append(n)
        if n > st["max_bytes"]:
            self._send(413, {"error": {"code": "body_too_large", "path": "body",
                                       "message": "the request body exceeds the limit"}})
            return
        if self.path == "/v1/experiments":
            st["batches"].append(len(req["records"]))
            self._send(200, {"added": len(req["records"]), "skipped": 0, "rejected": [],
                             "n_rejected": 0, "architectures_added": 0, "datasets_added": 0,
                             "batch": 1, "seconds": 0.0})
            return
        if st["fail_codes"]:
            code = st["fail_codes"].pop(0)
            self._send(code, {"error": {"code": "not_ready", "message": "warming up",
                                        "path": None}}, {"Retry-After": "0"})
            return
        archs = req["archs"]
        if len(archs) > st["cap"]:
            self._send(413, {"error": {"code": "too_many_archs", "path": "body.archs",
                                       "message": f"at most {st['cap']} are allowed"}})
            return
        st["batches"].append(len(archs))
        results = [{"id": f"id-{a}", "mean": 0.5 + 0.001 * len(a), "spread": 0.01,
                    "lower": 0.4, "upper": 0.6} for a in archs]
        self._send(200, {"predictor": {"id": "p_flaky"}, "dcn": req.get("dcn", 0.5),
                         "coverage": 0.9, "results": results})


@pytest.fixture()
def flaky() -> Iterator[dict[str, Any]]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    srv.state = {"fail_codes": [], "cap": 10_000, "requests": [], "batches": [],  # type: ignore
                 "sizes": [], "max_bytes": 2**40}
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield {"url": f"http://127.0.0.1:{srv.server_address[1]}",
               "state": srv.state}  # type: ignore[attr-defined]
    finally:
        srv.shutdown()
        srv.server_close()


class _SleepRecorder:
    """``time`` for :mod:`tapas.app.client`: every sleep recorded (and slept), the rest real."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        time.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_retries_transient_503_with_backoff(flaky: dict[str, Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import tapas.app.client

    clock = _SleepRecorder()
    monkeypatch.setattr(tapas.app.client, "time", clock)
    flaky["state"]["fail_codes"] = [503, 503]
    with Client(flaky["url"], retries=3, backoff=0.05) as c:
        preds = c.predict(["a", "bb"], dcn=0.5)
        assert c.last_attempts == 3
    assert [p.arch_id for p in preds] == ["id-a", "id-bb"]
    assert len(flaky["state"]["requests"]) == 3
    # two back-off sleeps happened, doubling from ``backoff``, each within its +-25 % jitter
    assert len(clock.slept) == 2
    for slept, base in zip(clock.slept, (0.05, 0.1), strict=True):
        assert 0.75 * base <= slept <= 1.25 * base


def test_gives_up_after_retries(flaky: dict[str, Any]) -> None:
    flaky["state"]["fail_codes"] = [502, 504, 429, 503]
    with Client(flaky["url"], retries=2, backoff=0.01) as c, \
            pytest.raises(TapasConnectionError) as ei:
        c.predict(["a"], dcn=0.5)
    assert ei.value.status == 429 and "3 attempts" in str(ei.value)
    assert len(flaky["state"]["requests"]) == 3


def test_connection_refused_is_retried_then_clear_error() -> None:
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", retries=2, backoff=0.01) as c:
        with pytest.raises(TapasConnectionError) as ei:
            c.health()
        assert c.last_attempts == 3
    assert ei.value.code == "unreachable" and f"127.0.0.1:{port}" in str(ei.value)


def test_batches_large_requests_and_halves_on_413(flaky: dict[str, Any]) -> None:
    archs = [f"a{i}" for i in range(23)]
    with Client(flaky["url"], max_batch=10, retries=0) as c:
        preds = c.predict(archs, dcn=0.3)
    assert flaky["state"]["batches"] == [10, 10, 3]
    assert [p.arch_id for p in preds] == [f"id-{a}" for a in archs]
    assert all(isinstance(p, Prediction) and p.predictor == "p_flaky" for p in preds)

    flaky["state"]["batches"].clear()
    flaky["state"]["cap"] = 4  # the server allows fewer than the client's max_batch
    with Client(flaky["url"], max_batch=10, retries=0) as c:
        preds = c.predict(archs, dcn=0.3)
        assert c.max_batch <= 4
    assert sum(flaky["state"]["batches"]) == 23 and max(flaky["state"]["batches"]) <= 4
    assert [p.arch_id for p in preds] == [f"id-{a}" for a in archs]


def test_batches_by_body_size_and_halves_on_body_too_large(flaky: dict[str, Any]) -> None:
    """Issue 38: bodies stay under the server's TAPAS_MAX_BODY_MB, whatever the count."""
    big = [{"input": {"shape": [3, 32, 32], "num_classes": 10},
            "layers": [{"op": "conv", "out": 8, "kernel": 3, "pad": "x" * 1000}] * 10,
            "tag": i} for i in range(40)]  # ~10 KB of JSON each
    with Client(flaky["url"], max_body_mb=0.05, retries=0) as c:  # ~52 KB a request
        preds = c.predict(big, dcn=0.3)
    st = flaky["state"]
    assert len(preds) == 40 and sum(st["batches"]) == 40
    assert len(st["batches"]) >= 8 and max(st["sizes"]) <= 0.05 * 2**20

    st["batches"].clear()
    st["sizes"].clear()
    st["max_bytes"] = 30_000  # the server allows less than the client's default
    with Client(flaky["url"], retries=0) as c:
        preds = c.predict(big, dcn=0.3)
        assert c.max_body_bytes < 60_000
    assert [p.arch_id for p in preds] == [f"id-{a}" for a in big]
    assert sum(st["batches"]) == 40

    st["batches"].clear()
    records = [{"arch": CELL, "dataset": "d", "accuracy": 0.5, "hparams": {"note": "x" * 900}}
               for _ in range(100)]  # ~1 KB each: 100 KB in all
    with Client(flaky["url"], retries=0) as c:
        rep = c.ingest(records)
    assert rep["added"] == 100 and sum(st["batches"]) == 100 and len(st["batches"]) >= 4


def test_client_checks_arguments() -> None:
    with pytest.raises(ValueError, match="http"):
        Client("localhost:8000")
    c = Client("http://127.0.0.1:9")
    with pytest.raises(ValueError, match="exactly one"):
        c.predict([CELL])
    with pytest.raises(ValueError, match="exactly one"):
        c.predict([CELL], dcn=0.5, dataset="digits")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        c.predict([CELL], dcn=1.5)
    with pytest.raises(TypeError, match="in a notation"):
        c.predict([object()], dcn=0.5)
    c.close()


# ------------------------------------------------------------------ the real service
@pytest.fixture(scope="module")
def api(live_server: Any) -> Iterator[Client]:  # noqa: F811
    with Client(live_server.url, token=TOKEN, timeout=120, retries=2, backoff=0.1) as c:
        yield c


@pytest.fixture(scope="module")
def digits_ds(api: Client) -> Any:
    """Real digits uploaded as arrays; the client waits for the DCN job."""
    from sklearn.datasets import load_digits

    d = load_digits()
    seen: list[float] = []
    info = api.characterize(x=d.images[:240].astype(np.float32), y=d.target[:240],
                            name="digits240", progress=lambda job: seen.append(job.progress))
    assert seen and seen[-1] == 1.0
    pred = api.train_predictor(dataset="digits240")  # predict never trains on its own
    assert pred["id"].startswith("p_") and pred["dcn_lo"] <= info.dcn <= pred["dcn_hi"]
    return info


def test_health_and_ready(api: Client) -> None:
    assert api.health()["status"] == "ok"
    assert api.ready()["status"] == "ok"
    assert api.wait_ready(timeout=5)["predictor"]


def test_characterize_arrays_gives_dataset_with_dcn(api: Client, digits_ds: Any) -> None:
    assert digits_ds.name == "digits240"
    assert digits_ds.n_classes == 10 and digits_ds.input_shape == (1, 8, 8)
    assert 0.0 <= digits_ds.dcn <= 1.0
    assert api.dataset("digits240").dcn == digits_ds.dcn
    assert "digits240" in [d.name for d in api.datasets()]


def test_predict_typed_results_and_batching_match(api: Client, digits_ds: Any) -> None:
    from tapas.core.arch import all_cells, from_nb201

    cells = all_cells()[::997][:12]
    whole = api.predict(cells, dataset="digits240")
    assert len(whole) == 12 and all(isinstance(p, Prediction) for p in whole)
    for p, cell in zip(whole, cells, strict=True):
        assert p.arch_id == from_nb201(cell, 10, 8, in_channels=1).id
        assert p.lower <= p.mean <= p.upper and p.spread >= 0
        assert p.predictor.startswith("p_") and p.dcn == pytest.approx(digits_ds.dcn)
    api.max_batch = 5  # three requests, same answers in the same order
    try:
        split = api.predict(cells, dataset="digits240")
    finally:
        api.max_batch = 5000
    # the LSTM batches by sequence length, so floats move in their last digits (the
        # interval scales the spread, so its ends move most)
    for a, b in zip(split, whole, strict=True):
        da, db = a.to_dict(), b.to_dict()
        nums = ("mean", "spread", "lower", "upper")
        assert {k: v for k, v in da.items() if k not in nums} == {
            k: v for k, v in db.items() if k not in nums}
        assert [da[k] for k in nums] == pytest.approx([db[k] for k in nums], abs=1e-4)
    # Architecture objects and IR dicts work like cell strings
    arch = from_nb201(cells[0], 10, 8, in_channels=1)
    by_obj = api.predict([arch, arch.to_dict()], dataset="digits240")
    assert by_obj[0].mean == pytest.approx(whole[0].mean) == pytest.approx(by_obj[1].mean)


def test_typed_errors_carry_code_and_path(api: Client, digits_ds: Any) -> None:
    bad = {"input": {"shape": [1, 8, 8], "num_classes": 10},
           "layers": [{"op": "conv", "out": 4, "kernel": 0}, {"op": "gap"},
                      {"op": "linear", "out": 10}]}
    api.max_batch = 2
    try:  # the bad one is item 3: second batch, index 1 there -> reported as archs[3]
        with pytest.raises(TapasError) as ei:
            api.predict([CELL, CELL, CELL, bad], dataset="digits240")
    finally:
        api.max_batch = 5000
    e = ei.value
    assert e.status == 422 and e.code == "invalid_architecture"
    assert e.path.startswith("body.archs[3].layers[0]"), e.path
    with pytest.raises(TapasError) as ei:
        api.predict([CELL], dataset="no-such-dataset")
    assert ei.value.status == 404 and ei.value.code == "dataset_not_found"
    assert ei.value.path == "body.dataset"
    # (every DCN has a covering predictor on a default database: the shipped ones)
    with pytest.raises(TapasError) as ei:  # a pinned predictor nobody registered
        api.predict([CELL], dcn=0.5, predictor="p_0123456789abcdef")
    assert ei.value.status == 404 and ei.value.code == "predictor_not_found"
    assert ei.value.path == "body.predictor"
    with Client(api.url) as anon, pytest.raises(TapasError) as ei:
        anon.ingest([{"arch": CELL, "dataset": "digits240", "accuracy": 0.5}])
    assert ei.value.status == 401 and ei.value.code == "missing_token"


def test_ingest_is_batched_and_idempotent(api: Client, digits_ds: Any) -> None:
    from tapas.core.arch import all_cells

    recs = [{"arch": c, "dataset": "digits240", "accuracy": 0.5 + i / 100, "source": "test"}
            for i, c in enumerate(all_cells()[5:12])]
    recs.append({"arch": CELL, "dataset": "nope", "accuracy": 0.5})  # only the server knows
    seen: list[tuple[int, int]] = []
    rep = api.ingest(recs, batch_size=3, progress=lambda d, t: seen.append((d, t)))
    assert rep["batches"] == 3 and seen[-1] == (8, 8)
    assert rep["added"] == 7 and rep["n_rejected"] == 1
    assert rep["rejected"][0]["where"] == 7 and "unknown dataset" in rep["rejected"][0]["reason"]
    # a value the one record rule refuses is rejected here, by the same rule, unsent
    rep = api.ingest([*recs[:7], {"arch": CELL, "dataset": "digits240", "accuracy": 7.0}])
    assert rep["added"] == 0 and rep["skipped"] == 7 and rep["batches"] == 1
    assert rep["rejected"] == [{"where": 7, "reason": "accuracy 7.0 is outside [0, 1]"}]


def test_characterize_unknown_builtin_is_a_clear_error(api: Client) -> None:
    with pytest.raises(TapasError) as ei:
        api.characterize(spec="no-such-builtin")
    assert ei.value.status == 422 and ei.value.code == "unknown_dataset_spec"
    assert isinstance(JobFailed("x"), TapasError)
