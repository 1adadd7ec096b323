"""Hostile and careless input against a real ``tapas serve`` process on loopback (issue 15):
decompression bombs, concurrent identical uploads, overflowing numbers, huge bodies,
a bounded job queue, names bound to one dataset."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.soak import bomb, npy_zip
from tests.service.conftest import digits_npz, wait_job
from tests.service.proc_server import AUTH, ProcServer, proc_kib

GIB_KIB = 2**20


class RSSWatch:
    """Samples a process's VmRSS every 10 ms on a thread; ``peak_kib`` is the largest seen."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kib, self._stop = pid, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, proc_kib(self.pid, "VmRSS"))
            time.sleep(0.01)

    def __enter__(self) -> RSSWatch:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcServer]:
    home = tmp_path_factory.mktemp("hardening") / "home"
    with ProcServer(home, TAPAS_MAX_UPLOAD_MB="8") as s:
        yield s


@pytest.fixture()
def client(srv: ProcServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, headers=AUTH, timeout=120) as c:
        yield c


def upload(client: httpx.Client, data: bytes, name: str | None = None,
           **form: str) -> httpx.Response:
    fields = {**({"name": name} if name else {}), **form}
    return client.post("/v1/datasets", files={"file": ("d.npz", data)}, data=fields)


# ------------------------------------------------------------ 1. decompression bombs
def test_decompression_bomb_is_refused_from_the_headers(srv: ProcServer,
                                                        client: httpx.Client) -> None:
    data = bomb()
    assert len(data) < 400_000  # 268 MB of pixels in a few hundred KB
    hwm_before = proc_kib(srv.pid, "VmHWM")
    with RSSWatch(srv.pid) as watch:
        r = upload(client, data, "bomb")
        with ThreadPoolExecutor(4) as ex:  # four at once
            rs = list(ex.map(lambda _: upload(client, data, "bomb"), range(4)))
    for resp in (r, *rs):
        assert resp.status_code == 413, resp.text
        err = resp.json()["error"]
        assert err["code"] == "dataset_too_large" and err["path"] == "body.file"
        assert "65536" in err["message"] or "65,536" in err["message"], err
    assert watch.peak_kib < GIB_KIB, f"RSS reached {watch.peak_kib / 2**10:.0f} MiB"
    assert proc_kib(srv.pid, "VmHWM") < max(GIB_KIB, hwm_before + 1)
    assert list((srv.home / "uploads").glob("*")) == []


BIG_X = ((65_536, 64, 64), "|u1", 65_536 * 64 * 64)  # 268 MB of pixels, 1 GiB as float32
BIG_Y = ((2**25,), "<i8", 2**28)  # 268 MB of labels
SMALL_X = ((10, 8, 8), "|u1", 640)
SMALL_Y = ((10,), "<i8", 80)
#: zip members by their exact names (what np.load maps to keys 'x'/'y') -> expected answer
NAMINGS = {
    "x": ({"x": BIG_X, "y": SMALL_Y}, 413, "dataset_too_large"),
    "x.npy": ({"x.npy": BIG_X, "y.npy": SMALL_Y}, 413, "dataset_too_large"),
    "y": ({"x.npy": SMALL_X, "y": BIG_Y}, 413, "dataset_too_large"),
    "mixed": ({"x": SMALL_X, "y.npy": BIG_Y}, 413, "dataset_too_large"),
    "x and x.npy": ({"x.npy": SMALL_X, "x": BIG_X, "y.npy": SMALL_Y}, 422, "invalid_npz"),
    "y and y.npy": ({"x.npy": SMALL_X, "y.npy": SMALL_Y, "y": BIG_Y}, 422, "invalid_npz"),
    "x not .npy": ({"x": (None, "|u1", 2**28), "y.npy": SMALL_Y}, 422, "invalid_npz"),
}


@pytest.mark.parametrize("naming", list(NAMINGS))
def test_bomb_under_any_member_name_is_refused_before_decompression(
        srv: ProcServer, client: httpx.Client, naming: str) -> None:
    """Issue 38 #2: np.load reads member 'x' before 'x.npy'; the size check must see the
    member that would be loaded, whatever its name (ambiguous archives are refused)."""
    members, status, code = NAMINGS[naming]
    data = npy_zip(members, suffix="")
    assert len(data) < 1_200_000
    before = proc_kib(srv.pid, "VmRSS")
    with RSSWatch(srv.pid) as watch:
        r = upload(client, data, "bomb38")
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["path"] == "body.file", err
    assert (watch.peak_kib - before) < 100 * 2**10, \
        f"RSS grew {(watch.peak_kib - before) / 2**10:.0f} MiB"
    assert proc_kib(srv.pid, "VmRSS") - before < 100 * 2**10  # nothing retained
    assert list((srv.home / "uploads").glob("*")) == []
    assert client.get("/v1/datasets/bomb38").status_code == 404


@pytest.mark.parametrize("shape", [(2**40, 1, 1), (1_000_000, 1_000_000, 1_000_000),
                                   (10, 100_000, 100_000)])
def test_npz_header_declaring_a_huge_shape_is_a_413(client: httpx.Client,
                                                    shape: tuple[int, ...]) -> None:
    data = npy_zip({"x": (shape, "<f4", 64), "y": ((10,), "<i8", 80)})
    r = upload(client, data, "huge")
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "dataset_too_large"


def test_spec_variant_that_would_blow_up_memory_is_refused(client: httpx.Client) -> None:
    r = client.post("/v1/datasets", json={"spec": "mnist5k?repeat=100000"})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "dataset_too_large"


# ------------------------------------------- 3. concurrent identical uploads, 2. names
def test_concurrent_identical_uploads_all_accepted_one_file(srv: ProcServer,
                                                            client: httpx.Client) -> None:
    data = digits_npz(120)[0]
    with ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda _: upload(client, data, "digits120"), range(8)))
    assert [r.status_code for r in rs] == [202] * 8, [r.text for r in rs if r.status_code != 202]
    ids = {r.json()["job"]["id"] for r in rs}
    jobs = [wait_job(client, i) for i in ids]
    assert all(j["state"] == "succeeded" for j in jobs), jobs
    assert len({j["result"]["dataset"]["id"] for j in jobs}) == 1
    assert list((srv.home / "uploads").glob("*")) == []  # the stored file is gone after use
    names = [d["name"] for d in client.get("/v1/datasets").json()["items"]]
    assert names.count("digits120") == 1


def test_a_name_is_bound_to_one_dataset(client: httpx.Client) -> None:
    first = digits_npz(80)[0]
    r = upload(client, first, "digits")
    assert r.status_code == 202, r.text
    assert wait_job(client, r.json()["job"]["id"])["state"] == "succeeded"
    # the same name for other data: the built-in digits, concurrent uploads of other data
    r = client.post("/v1/datasets", json={"spec": "digits"})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "dataset_exists"
    others = [digits_npz(n)[0] for n in (90, 100, 110, 130)]
    with ThreadPoolExecutor(4) as ex:
        rs = list(ex.map(lambda d: upload(client, d, "bound2"), others))
    accepted = [r for r in rs if r.status_code == 202]
    assert all(r.status_code in (202, 409) for r in rs), [r.text for r in rs]
    results = [wait_job(client, r.json()["job"]["id"]) for r in accepted]
    ok = [j for j in results if j["state"] == "succeeded"]
    assert len(ok) == 1, results  # one wins; the rest fail with 409 dataset_exists
    assert all(j["error"]["code"] == "dataset_exists" for j in results if j not in ok)
    ds = client.get("/v1/datasets/bound2").json()
    assert ds["fingerprint"] == ok[0]["result"]["dataset"]["fingerprint"]
    assert client.get("/v1/datasets/digits").json()["n_samples"] == 80


# -------------------------------------------------------------- 4. numbers and sizes
@pytest.mark.parametrize(("field", "value"), [
    ("seed", 9223372036854775808), ("epochs", 2147483648), ("epochs", -1),
    ("accuracy", "Infinity"), ("curve", "[0.1, 1e999]"), ("hparams", None)])
def test_out_of_range_numbers_are_422_and_the_connection_lives(client: httpx.Client,
                                                               field: str, value: Any) -> None:
    rec = {"arch": "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
           "dataset": "digits", "accuracy": 0.5}
    if field == "hparams":
        rec["hparams"] = {"blob": "x" * 2_000_000}
        body = json.dumps({"records": [rec]})
    elif isinstance(value, str):  # a literal JSON token python's json would accept
        body = json.dumps({"records": [rec]}).replace('"accuracy": 0.5',
                                                      f'"accuracy": 0.5, "{field}": {value}')
        if field == "accuracy":
            body = json.dumps({"records": [{**rec, "accuracy": 0}]}).replace(
                '"accuracy": 0', '"accuracy": Infinity')
    else:
        rec[field] = value
        body = json.dumps({"records": [rec]})
    r = client.post("/v1/experiments", content=body,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["path"].startswith(f"body.records[0].{field}"), err
    assert client.get("/health/live").status_code == 200  # same keep-alive connection


def test_unknown_huge_key_is_not_echoed(client: httpx.Client) -> None:
    key = "k" * 10_000_000
    r = client.post("/v1/experiments", content=json.dumps({"records": [], key: 1}),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text[:300]
    assert len(r.content) < 4_000


# ------------------------------------------------------------ 7. auth and body limits
def test_auth_is_checked_before_the_body_is_read(srv: ProcServer) -> None:
    r = httpx.post(srv.url + "/v1/experiments", content=b"{not json",
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 401, r.text
    r = httpx.post(srv.url + "/v1/experiments", content=b"{not json",
                   headers={"Content-Type": "application/json",
                            "Authorization": "Bearer wrong"})
    assert r.status_code == 403, r.text


def test_declared_oversized_body_is_413_before_reading(srv: ProcServer) -> None:
    # Content-Length says 1 GB; we send nothing: the answer must come without the body.
    import socket

    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"POST /v1/experiments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: 1000000000\r\nAuthorization: " + AUTH[
                      "Authorization"].encode() + b"\r\n\r\n")
        head = s.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413"), head


def test_large_body_does_not_block_liveness(srv: ProcServer, client: httpx.Client) -> None:
    """Liveness answers while a 9 MB body is received, decoded and checked (the latency
    itself is measured by ``tapas bench service``: live_max_ms_during_60mb_body)."""
    rec = {"arch": "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
           "dataset": "no-such-dataset", "accuracy": 0.5, "hparams": {"lr": 0.1}}
    body = json.dumps({"records": [rec] * 60_000}).encode()  # ~9 MB
    done: dict[str, Any] = {}

    def post() -> None:
        done["r"] = client.post("/v1/experiments", content=body,
                                headers={"Content-Type": "application/json"})

    t = threading.Thread(target=post)
    t.start()
    answered_in_flight = 0
    with httpx.Client(base_url=srv.url, timeout=120) as probe:
        while t.is_alive():
            assert probe.get("/health/live").status_code == 200
            answered_in_flight += t.is_alive()
            time.sleep(0.05)
    t.join()
    assert done["r"].status_code == 200, done["r"].text[:300]
    assert done["r"].json()["n_rejected"] == 60_000
    assert answered_in_flight >= 1


def test_60mb_body_is_413_and_says_to_split(srv: ProcServer) -> None:
    """Issue 38: the default TAPAS_MAX_BODY_MB (16) refuses a 60 MB body before reading it,
    and the answer tells the client what to do."""
    import socket

    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: " + str(60 * 2**20).encode() + b"\r\n\r\n")
        chunks = []
        while chunk := s.recv(65536):  # the server closes after its answer
            chunks.append(chunk)
    answer = b"".join(chunks).decode()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413"), head
    err = json.loads(body)["error"]
    assert err["code"] == "body_too_large" and err["path"] == "body"
    assert "16 MiB" in err["message"] and "TAPAS_MAX_BODY_MB" in err["message"]
    assert "split" in err["message"]


def test_invalid_json_body_names_line_and_column(client: httpx.Client) -> None:
    """The step-wise decoder keeps the 422 invalid_json answer, with where it broke."""
    for raw, where in ((b'{"archs": ["a",\n  ], "dcn": 0.5}', "line 2 column 3"),
                       (b'{"archs": [], "dcn": 0.5 "x"}', "line 1 column 26"),
                       (b'{"archs": [' + b"[" * 5000 + b"]" * 5000 + b"]}", "nests too deeply")):
        r = client.post("/v1/predict", content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == "invalid_json" and err["path"] == "body", err
        assert where in err["message"], err


# ------------------------------------------------------------------------- 9. smaller
def test_ready_does_not_leak_paths(srv: ProcServer) -> None:
    body = httpx.get(srv.url + "/health/ready").json()
    assert str(srv.home) not in json.dumps(body)


# -------------------------------------------------------------------- 6. job queue
@pytest.mark.slow  # two `tapas serve` processes, the first killed with jobs in flight
def test_bounded_queue_dedup_cancel_and_lost_after_kill(tmp_path: Path) -> None:
    slow = {"TAPAS_PROBE_EPOCHS": "400", "TAPAS_PROBE_MAX_SAMPLES": "1797",
            "TAPAS_MAX_QUEUED_JOBS": "2"}
    home = tmp_path / "home"
    srv = ProcServer(home, **slow).start()
    try:
        with httpx.Client(base_url=srv.url, headers=AUTH, timeout=60) as c:
            def submit(spec: str) -> httpx.Response:
                return c.post("/v1/datasets", json={"spec": spec})

            a = submit("digits").json()["job"]["id"]
            t0 = time.monotonic()
            while c.get(f"/v1/jobs/{a}").json()["state"] != "running":
                assert time.monotonic() - t0 < 60
                time.sleep(0.1)
            b = submit("digits?per_class=100").json()["job"]["id"]
            queued = submit("digits?per_class=110").json()["job"]["id"]
            full = submit("digits?per_class=120")
            assert full.status_code == 429, full.text
            assert full.json()["error"]["code"] == "queue_full"
            assert int(full.headers["Retry-After"]) >= 1
            again = submit("digits?per_class=100")  # identical to a pending job: that job
            assert again.status_code == 202 and again.json()["job"]["id"] == b
            assert httpx.delete(f"{srv.url}/v1/jobs/{b}").status_code == 401
            gone = c.delete(f"/v1/jobs/{b}")
            assert gone.status_code == 200 and gone.json()["state"] == "cancelled"
            assert c.delete("/v1/jobs/job-nope").status_code == 404
            assert submit("digits?per_class=120").status_code == 202  # a slot is free
        srv.kill()  # SIGKILL while a is running and two wait
        srv = ProcServer(home, **slow).start()
        with httpx.Client(base_url=srv.url, headers=AUTH, timeout=60) as c:
            for jid, state in ((a, "lost"), (queued, "lost"), (b, "cancelled")):
                job = c.get(f"/v1/jobs/{jid}").json()
                assert job["state"] == state, job
            assert c.get(f"/v1/jobs/{a}").json()["error"]["code"] == "job_lost"
            run = c.post("/v1/datasets", json={"spec": "digits"}).json()["job"]["id"]
            t0 = time.monotonic()
            while c.get(f"/v1/jobs/{run}").json()["state"] == "queued":
                assert time.monotonic() - t0 < 60
                time.sleep(0.1)
            assert c.delete(f"/v1/jobs/{run}").status_code == 200  # running: stops soon
            assert wait_job(c, run, 60)["state"] == "cancelled"
            assert c.get("/v1/datasets/digits").status_code == 404  # nothing half-written
    finally:
        srv.stop()


# ------------------------------------------------- issue 38: one identity per dataset name
def _ingest_cli(home: Path, *args: str) -> Any:
    import os
    import subprocess
    import sys

    env = {**os.environ, "TAPAS_HOME": str(home)}
    for k in ("TAPAS_DB_PATH", "TAPAS_MODEL_DIR", "TAPAS_API_TOKEN"):
        env.pop(k, None)
    return subprocess.run([sys.executable, "-m", "tapas.app.cli.main", "ingest", *args, "--db",
                           str(home / "lde.duckdb")], env=env, capture_output=True, text=True,
                          timeout=300)


def test_upload_never_replaces_an_ingested_dataset_and_queued_names_conflict(
        tmp_path: Path) -> None:
    """Issue 38 #4: an upload under the name of a dataset that ``tapas ingest --dcn``
    registered (no fingerprint) is a 409 and leaves its DCN and experiments as they were;
    and a name claimed by a queued or running upload of other data is a 409 at once."""
    from lde import Store
    from tests.service.conftest import small_net

    home = tmp_path / "home"
    home.mkdir()
    Store(home / "lde.duckdb").close()
    runs = tmp_path / "runs.jsonl"
    runs.write_text("".join(json.dumps({"arch": small_net(w, 1), "dataset": "mine",
                                        "accuracy": 0.5 + w / 100, "seed": w,
                                        "num_classes": 10, "input_shape": [1, 8, 8]}) + "\n"
                            for w in (4, 8, 16)))
    r = _ingest_cli(home, str(runs), "--dcn", "mine=0.4", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    slow = {"TAPAS_PROBE_EPOCHS": "400", "TAPAS_PROBE_MAX_SAMPLES": "1797"}
    with ProcServer(home, **slow) as srv, \
            httpx.Client(base_url=srv.url, headers=AUTH, timeout=120) as c:
        before = c.get("/v1/datasets/mine").json()
        exps = c.get("/v1/experiments", params={"dcn": 0.4, "tau": 0.01}).json()
        assert before["dcn"] == pytest.approx(0.4) and exps["total"] == 3
        for n in (80, 120):  # same shape and classes: only the DCN would change
            r = upload(c, digits_npz(n)[0], "mine")
            assert r.status_code == 409, r.text
            err = r.json()["error"]
            assert err["code"] == "dataset_exists" and err["path"] == "body.name", err
            assert "'mine'" in err["message"] and "DCN 0.4000" in err["message"], err
        assert c.get("/v1/datasets/mine").json() == before
        assert c.get("/v1/experiments", params={"dcn": 0.4, "tau": 0.01}).json() == exps
        assert list((srv.home / "uploads").glob("*")) == []

        # a queued/running upload claims its name: other data under it are a 409 now
        first = upload(c, digits_npz(1500)[0], "claimed")
        assert first.status_code == 202, first.text
        job = first.json()["job"]["id"]
        other = upload(c, digits_npz(300)[0], "claimed")
        assert other.status_code == 409, other.text
        assert other.json()["error"]["code"] == "dataset_exists"
        assert "queued or running job" in other.json()["error"]["message"]
        same = upload(c, digits_npz(1500)[0], "claimed")  # the same data: the same job
        assert same.status_code == 202 and same.json()["job"]["id"] == job
        assert c.delete(f"/v1/jobs/{job}").status_code == 200
        assert wait_job(c, job)["state"] == "cancelled"
        freed = upload(c, digits_npz(300)[0], "claimed")  # the claim ended with the job
        assert freed.status_code == 202, freed.text
        c.delete(f"/v1/jobs/{freed.json()['job']['id']}")
