"""The service over real HTTP (uvicorn on a free loopback port).

The last test fuzzes the OpenAPI schema with schemathesis against the same server
(after the others, so the database holds datasets and predictors): every operation
gets bounded valid (positive) and invalid (negative) inputs; the server must never
answer 5xx (503 from /health/ready is its documented "starting"), every answer must
match the documented status codes, content types and schemas, and every error must
be the JSON error shape. ``POST /v1/predictors`` is fuzzed with invalid inputs only:
valid ones train predictors, which the flow test covers.
"""

from __future__ import annotations

import io
import threading
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from tests.service.conftest import AUTH, EPOCHS, wait_job

CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
CELL2 = "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"


def assert_error(r: httpx.Response, status: int, code: str, path: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["code"] == code, err
    assert err["message"]
    if path is not None:
        assert err["path"] == path, err
    return err


def digits_records(name: str, exps: dict, source: str) -> list[dict[str, Any]]:
    """The measured digits runs as experiment records for dataset ``name``."""
    return [{"arch": a, "dataset": name, "accuracy": acc, "epochs": EPOCHS, "seed": 0,
             "source": source}
            for a, acc in zip(exps["nets"], exps["accuracies"], strict=True)]


@pytest.fixture(scope="module")
def scoring_dcn(server: Any, uploaded_digits: dict, digits_experiments: dict) -> float:
    """A DCN a loaded predictor covers: the digits dataset's, after ingesting the measured
    runs and training a predictor for it (the database starts empty)."""
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=300) as c:
        ds = uploaded_digits["dataset"]
        r = c.post("/v1/experiments", json={"records": digits_records(
            ds["id"], digits_experiments, "tests-fixture")})
        assert r.status_code == 200, r.text
        r = c.post("/v1/predictors", json={"dataset": ds["id"], "wait_s": 300})
        assert r.status_code == 200, r.text
        return ds["dcn"]


# ----------------------------------------------------------------------- the flow
@pytest.fixture(scope="module")
def uploaded_digits(server: Any, digits_experiments: dict) -> dict[str, Any]:
    """Upload real digits as an .npz and wait for the DCN job (step 1 of the flow)."""
    files = {"file": ("digits300.npz", digits_experiments["npz"], "application/octet-stream")}
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=120) as c:
        r = c.post("/v1/datasets", files=files, data={"name": "digits300", "seed": "0"})
        assert r.status_code == 202, r.text
        job = r.json()["job"]
        assert r.headers["location"] == f"/v1/jobs/{job['id']}"
        assert job["kind"] == "dcn" and job["state"] in ("queued", "running", "succeeded")
        done = wait_job(c, job["id"])
    assert done["state"] == "succeeded", done
    return {"job": done, "dataset": done["result"]["dataset"]}


def test_full_flow_upload_dcn_ingest_train_predict(client: httpx.Client, uploaded_digits: dict,
                                                   digits_experiments: dict) -> None:
    # 1. upload a real dataset; its DCN is a background job (see the fixture)
    done = uploaded_digits["job"]
    assert done["progress"] == 1.0
    ds = done["result"]["dataset"]
    assert ds["name"] == "digits300" and ds["n_classes"] == 10
    assert ds["input_shape"] == [1, 8, 8] and 0.0 <= ds["dcn"] <= 1.0
    got = client.get(f"/v1/datasets/{ds['id']}").json()
    assert got["dcn"] == ds["dcn"]
    assert ds["id"] in [d["id"] for d in client.get("/v1/datasets").json()["items"]]

    # 2. ingest experiments measured on it (and one bad record, rejected by index)
    records = digits_records(ds["id"], digits_experiments, "tests-flow")
    bad = dict(records[0], accuracy=1.7)
    r = client.post("/v1/experiments", json={"records": [*records, bad]})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["added"] == len(records) and rep["n_rejected"] == 1
    assert rep["rejected"][0]["where"] == len(records)
    assert rep["rejected"][0]["path"] == f"body.records[{len(records)}]"
    assert "accuracy" in rep["rejected"][0]["reason"]
    again = client.post("/v1/experiments", json={"records": records}).json()
    assert again["added"] == 0 and again["skipped"] == len(records)  # idempotent
    page = client.get("/v1/experiments", params={"dcn": ds["dcn"], "tau": 0.0, "limit": 4}).json()
    assert page["limit"] == 4 and len(page["items"]) == min(4, page["total"])
    assert page["total"] >= len(records)
    assert all(abs(e["dcn"] - ds["dcn"]) < 1e-9 for e in page["items"])

    # 3. a predictor for the dataset's DCN (trained as a job; waited for here)
    r = client.post("/v1/predictors", json={"dataset": ds["id"], "wait_s": 300})
    assert r.status_code == 200, r.text
    pred = r.json()
    assert pred["dcn_lo"] <= ds["dcn"] <= pred["dcn_hi"] and pred["n_train"] > 0
    assert client.get(f"/v1/predictors/{pred['id']}").json()["id"] == pred["id"]
    assert pred["id"] in [p["id"] for p in client.get("/v1/predictors").json()["items"]]
    again = client.post("/v1/predictors", json={"dcn": ds["dcn"], "wait_s": 300}).json()
    assert again["id"] == pred["id"] and again["cached"] is True

    # 4. predict: IR objects and cell strings (expanded for the dataset's 1 x 8 x 8 input)
    archs = [*digits_experiments["nets"], CELL, CELL2]
    r = client.post("/v1/predict", json={"archs": archs, "dataset": ds["id"]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["predictor"]["id"] == pred["id"] and out["dcn"] == ds["dcn"]
    assert 0.0 < out["coverage"] < 1.0
    assert len(out["results"]) == len(archs)
    for s in out["results"]:
        assert 0.0 <= s["lower"] <= s["mean"] <= s["upper"] <= 1.0 and s["spread"] >= 0.0
        assert len(s["id"]) == 32
    assert len({s["id"] for s in out["results"]}) == len(archs)


# ------------------------------------------------------------------------- health
def test_health(server: Any) -> None:
    assert httpx.get(server.url + "/health/live").json()["status"] == "ok"
    r = httpx.get(server.url + "/health/ready")
    assert r.status_code == 200, r.text
    ready = r.json()
    # the database started empty: usable, without a default predictor, and it says why
    assert ready["predictor"] is None and "no default predictor" in ready["detail"]
    assert ready["database"] == "open"


def test_openapi_documents_every_route(server: Any) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    for path, method in [("/health/live", "get"), ("/health/ready", "get"),
                         ("/v1/datasets", "post"), ("/v1/datasets", "get"),
                         ("/v1/datasets/{id}", "get"), ("/v1/jobs/{id}", "get"),
                         ("/v1/experiments", "post"), ("/v1/experiments", "get"),
                         ("/v1/predictors", "post"), ("/v1/predictors", "get"),
                         ("/v1/predictors/{id}", "get"), ("/v1/predict", "post")]:
        assert method in spec["paths"][path], (path, method)
    body = spec["paths"]["/v1/datasets"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)


# --------------------------------------------------------------------------- auth
@pytest.mark.parametrize("method,path,body", [
    ("post", "/v1/experiments", {"records": []}),
    ("post", "/v1/predictors", {"dcn": 0.5}),
    ("post", "/v1/datasets", {"spec": "digits"}),
])
def test_write_routes_need_the_token(server: Any, method: str, path: str, body: dict) -> None:
    r = httpx.request(method, server.url + path, json=body)
    assert_error(r, 401, "missing_token", "header.Authorization")
    assert r.headers["www-authenticate"] == "Bearer"
    r = httpx.request(method, server.url + path, json=body,
                      headers={"Authorization": "Bearer wrong-token"})
    assert_error(r, 403, "invalid_token", "header.Authorization")
    r = httpx.request(method, server.url + path, json=body,
                      headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert_error(r, 401, "missing_token")


def test_read_routes_and_predict_are_open(server: Any, scoring_dcn: float) -> None:
    for path in ("/v1/datasets", "/v1/predictors", "/v1/jobs", "/v1/experiments?limit=1"):
        assert httpx.get(server.url + path).status_code == 200, path
    r = httpx.post(server.url + "/v1/predict", json={"archs": [CELL], "dcn": scoring_dcn})
    assert r.status_code == 200, r.text


def test_predict_answers_the_keys_of_its_schema(server: Any, scoring_dcn: float) -> None:
    """The response's keys, each result's (``members`` only when asked for) and the
    OpenAPI schema all come from ``tapas.core.types.Answer``/``Prediction``: ``latency_ms``,
    declared there alone, is in all three."""
    r = httpx.post(server.url + "/v1/predict", json={"archs": [CELL], "dcn": scoring_dcn})
    out = r.json()
    assert list(out) == ["predictor", "dcn", "coverage", "latency_ms", "results"], out
    assert 0.0 < out["latency_ms"] < 60_000 and out["dcn"] == scoring_dcn
    assert set(out["results"][0]) == {"id", "mean", "spread", "lower", "upper", "in_domain",
                                      "domain_reasons"}
    r = httpx.post(server.url + "/v1/predict",
                   json={"archs": [CELL], "dcn": scoring_dcn, "members": True})
    assert len(r.json()["results"][0]["members"]) >= 2
    spec = httpx.get(server.url + "/openapi.json").json()["components"]["schemas"]
    assert "forward pass" in spec["PredictResponse"]["properties"]["latency_ms"]["description"]
    assert set(spec["Score"]["properties"]) == {"id", "mean", "spread", "lower", "upper",
                                                "members", "in_domain", "domain_reasons"}


def test_right_token_is_accepted(client: httpx.Client) -> None:
    r = client.post("/v1/experiments", json={"records": []})
    assert r.status_code == 200 and r.json()["added"] == 0


# ------------------------------------------------------------------------ uploads
def test_oversized_upload_is_413(client: httpx.Client) -> None:
    big = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(big, x=rng.random((300, 32, 32)), y=rng.integers(0, 10, 300))  # ~2.4 MB > 1 MiB
    r = client.post("/v1/datasets", files={"file": ("big.npz", big.getvalue())})
    err = assert_error(r, 413, "upload_too_large", "body")
    assert "1 MiB" in err["message"]
    assert client.get("/health/live").status_code == 200  # the server is fine afterwards


@pytest.mark.parametrize("payload,needle", [
    (b"PK\x03\x04 this is not a zip archive at all", "not a readable .npz"),
    (b"\x93NUMPY a lone .npy, not an archive", "not an .npz archive"),
    (b"", "empty"),
    ("missing_y", "needs arrays 'x' and 'y'"),
    ("nan", "non-finite"),
])
def test_corrupt_npz_is_422(client: httpx.Client, payload: bytes | str, needle: str) -> None:
    if isinstance(payload, str):
        buf = io.BytesIO()
        x = np.zeros((20, 8, 8), np.float32)
        if payload == "missing_y":
            np.savez(buf, x=x)
        else:
            x[3, 2, 2] = np.nan
            np.savez(buf, x=x, y=np.arange(20) % 2)
        payload = buf.getvalue()
    r = client.post("/v1/datasets", files={"file": ("bad.npz", payload)})
    err = assert_error(r, 422, "invalid_npz", "body.file")
    assert needle in err["message"], err
    assert "uploads" not in err["message"]  # the server's path stays private


def test_name_taken_by_other_data_is_409(client: httpx.Client, uploaded_digits: dict) -> None:
    buf = io.BytesIO()
    rng = np.random.default_rng(1)
    np.savez(buf, x=rng.random((40, 8, 8)), y=np.arange(40) % 4)
    r = client.post("/v1/datasets", files={"file": ("other.npz", buf.getvalue())},
                    data={"name": uploaded_digits["dataset"]["name"]})
    assert_error(r, 409, "dataset_exists", "body.name")


def test_dataset_by_spec_and_bad_specs(client: httpx.Client) -> None:
    assert_error(client.post("/v1/datasets", json={"spec": "/etc/passwd"}), 422,
                 "unknown_dataset_spec", "body.spec")
    assert_error(client.post("/v1/datasets", json={"spec": "digits?bogus=1"}), 422,
                 "invalid_dataset", "body.spec")
    assert_error(client.post("/v1/datasets", json={"spec": "digits", "seed": -1}), 422,
                 "invalid_request", "body.seed")
    assert_error(client.post("/v1/datasets", content=b"{not json",
                             headers={"content-type": "application/json"}), 422, "invalid_json")
    assert_error(client.post("/v1/datasets", content=b"x", headers={"content-type": "text/csv"}),
                 415, "unsupported_media_type")
    r = client.post("/v1/datasets", json={"spec": "digits?classes=0,1&per_class=40"})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job"]["id"])
    assert job["state"] == "succeeded", job
    assert job["result"]["dataset"]["n_classes"] == 2


# ----------------------------------------------------------------------- predict
def test_too_many_architectures(client: httpx.Client, scoring_dcn: float) -> None:
    dcn = scoring_dcn
    r = client.post("/v1/predict", json={"archs": [CELL] * 10_001, "dcn": dcn})
    assert_error(r, 413, "too_many_archs", "body.archs")
    r = client.post("/v1/predict", json={"archs": [CELL] * 10_000, "dcn": dcn})
    assert r.status_code == 200 and len(r.json()["results"]) == 10_000


def test_invalid_architecture_names_its_path(client: httpx.Client, scoring_dcn: float) -> None:
    dcn = scoring_dcn
    net = {"input": {"shape": [3, 32, 32], "num_classes": 10},
           "layers": [{"op": "conv", "out": 8, "kernel": 3}, {"op": "relu"},
                      {"op": "conv", "out": 8, "kernel": 0}, {"op": "gap"},
                      {"op": "linear", "out": 10}]}
    r = client.post("/v1/predict", json={"archs": [CELL, CELL, CELL, net], "dcn": dcn})
    err = assert_error(r, 422, "invalid_architecture", "body.archs[3].layers[2].kernel")
    assert err["details"][0]["index"] == 3
    r = client.post("/v1/predict", json={"archs": [CELL, "|bogus~0|+|none~0|none~1|+|none~0|"
                                                   "none~1|none~2|"], "dcn": dcn})
    assert_error(r, 422, "invalid_architecture", "body.archs[1]")
    r = client.post("/v1/predict", json={"archs": [CELL, 5], "dcn": dcn})
    assert_error(r, 422, "invalid_request")
    assert r.json()["error"]["path"].startswith("body.archs[1]")


def test_predict_needs_exactly_one_target(client: httpx.Client) -> None:
    assert_error(client.post("/v1/predict", json={"archs": [CELL]}), 422, "dcn_or_dataset")
    assert_error(client.post("/v1/predict", json={"archs": [CELL], "dcn": 0.5, "dataset": "x"}),
                 422, "dcn_or_dataset")
    assert_error(client.post("/v1/predict", json={"archs": [CELL], "dcn": 1.5}), 422,
                 "invalid_request", "body.dcn")
    assert_error(client.post("/v1/predict", json={"archs": [CELL], "dcn": 0.5, "typo": 1}), 422,
                 "invalid_request", "body.typo")


def test_unknown_ids_are_404(client: httpx.Client) -> None:
    assert_error(client.get("/v1/datasets/no-such-dataset"), 404, "dataset_not_found", "url.id")
    assert_error(client.post("/v1/predict", json={"archs": [CELL], "dataset": "no-such"}), 404,
                 "dataset_not_found", "body.dataset")
    assert_error(client.post("/v1/predictors", json={"dataset": "no-such"}), 404,
                 "dataset_not_found", "body.dataset")
    assert_error(client.get("/v1/predictors/p_nope"), 404, "predictor_not_found")
    assert_error(client.get("/v1/jobs/job-nope"), 404, "job_not_found")
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")


def test_dcn_outside_every_predictor_is_409(client: httpx.Client) -> None:
    covered = [(p["dcn_lo"], p["dcn_hi"]) for p in client.get("/v1/predictors").json()["items"]]
    grid = [d / 100 for d in range(101)]
    free = [d for d in grid if not any(lo - 1e-9 <= d <= hi + 1e-9 for lo, hi in covered)]
    if not free:
        pytest.skip("the registered predictors cover every DCN")
    r = client.post("/v1/predict", json={"archs": [CELL], "dcn": free[0]})
    err = assert_error(r, 409, "no_predictor", "body.dcn")
    assert "POST /v1/predictors" in err["message"]


def test_predictors_reload_from_the_registry(client: httpx.Client, server: Any,
                                             scoring_dcn: float) -> None:
    """After a restart nothing is in memory: predict loads the registered model file."""
    app = server.server.config.app.state.tapas.pipeline
    app.unload()
    r = client.post("/v1/predict", json={"archs": [CELL, CELL2], "dcn": scoring_dcn})
    assert r.status_code == 200, r.text
    info = r.json()["predictor"]
    assert info["cached"] is True and info["dcn_lo"] <= scoring_dcn <= info["dcn_hi"]
    assert info["id"] in [p.id for p in app.loaded()]


# -------------------------------------------------------------------- concurrency
def test_concurrent_predict_and_ingest(server: Any, digits_experiments: dict,
                                       uploaded_digits: dict, scoring_dcn: float) -> None:
    name = uploaded_digits["dataset"]["id"]
    dcn = scoring_dcn
    cells = [CELL, CELL2] * 50
    failures: list[str] = []
    counts = {"predict": 0, "ingest": 0}
    lock = threading.Lock()

    def predictor_loop() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            for _ in range(15):
                r = c.post("/v1/predict", json={"archs": cells, "dcn": dcn})
                with lock:
                    counts["predict"] += 1
                    if r.status_code != 200 or len(r.json()["results"]) != len(cells):
                        failures.append(f"predict {r.status_code}: {r.text[:200]}")

    def ingest_loop(k: int) -> None:
        # the same measured runs, as another tool ("source") would report them
        recs = digits_records(name, digits_experiments, f"tests-conc-{k}")
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=120) as c:
            for i in range(10):
                r = c.post("/v1/experiments", json={"records": recs})
                with lock:
                    counts["ingest"] += 1
                    if r.status_code != 200 or r.json()["n_rejected"]:
                        failures.append(f"ingest {r.status_code}: {r.text[:200]}")
                    elif i == 0 and r.json()["added"] != len(recs):
                        failures.append(f"ingest added {r.json()['added']} of {len(recs)}")

    threads = [threading.Thread(target=predictor_loop) for _ in range(3)]
    threads += [threading.Thread(target=ingest_loop, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failures, failures[:3]
    assert counts == {"predict": 45, "ingest": 20}


# ------------------------------------------------------------ tapas ingest --url
def test_client_ingest_records(server: Any, uploaded_digits: dict,
                               digits_experiments: dict) -> None:
    from tapas.app.client import Client, TapasConnectionError, TapasError

    name = uploaded_digits["dataset"]["id"]
    recs = digits_records(name, digits_experiments, "tests-remote")
    recs.append({"arch": CELL, "dataset": "no-such-dataset", "accuracy": 0.5})
    with Client(server.url) as anon, pytest.raises(TapasError, match="401 missing_token") as e:
        anon.ingest(recs)
    assert e.value.status == 401 and e.value.batch_start == 0
    seen: list[tuple[int, int]] = []
    with Client(server.url, AUTH["Authorization"].split()[1]) as c:
        rep = c.ingest(recs, batch_size=3, progress=lambda done, total: seen.append((done, total)))
    n = len(recs) - 1
    assert rep["batches"] == 2 and seen == [(3, n + 1), (n + 1, n + 1)]
    assert rep["added"] == n and rep["n_rejected"] == 1
    assert rep["rejected"][0]["where"] == n  # index in the whole input, not in its batch
    with (Client("http://127.0.0.1:9", retries=1, backoff=0.01) as c,
          pytest.raises(TapasConnectionError, match="127.0.0.1:9") as e):
        c.ingest(recs[:1])
    assert e.value.batch_start == 0


def test_remote_post_file_names_lines(server: Any, uploaded_digits: dict,
                                      digits_experiments: dict, tmp_path: Any) -> None:
    """What `tapas ingest --url URL FILE` runs: rejections name the file's lines."""
    import json

    from tapas.app.client import Client

    name = uploaded_digits["dataset"]["id"]
    recs = digits_records(name, digits_experiments, "ignored")
    lines = [json.dumps({k: v for k, v in r.items() if k != "source"}) for r in recs[:2]]
    lines.insert(1, "{not json")
    lines.append(json.dumps({"arch": CELL, "dataset": name, "accuracy_pct": 250}))
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with Client(server.url, AUTH["Authorization"].split()[1]) as c:
        rep = c.ingest_file(path)
    assert rep["added"] + rep["skipped"] == 2
    assert [r["where"] for r in rep["rejected"]] == [2, 4]
    assert "250" in rep["rejected"][1]["reason"]
    page = httpx.get(server.url + "/v1/experiments", params={"limit": 10_000}).json()
    assert page["total"] >= 2


def test_remote_post_file_names_the_line_of_a_non_finite_number(
        server: Any, uploaded_digits: dict, tmp_path: Any) -> None:
    """Issue 38: NaN/Infinity in one JSONL record rejects that line (naming the field);
    the file's other records still go in (it used to abort the whole file)."""
    from tapas.app.client import Client

    name = uploaded_digits["dataset"]["id"]
    path = tmp_path / "nan.jsonl"
    path.write_text(
        f'{{"arch": "{CELL}", "dataset": "{name}", "accuracy": 0.41, "epochs": 3}}\n'
        f'{{"arch": "{CELL}", "dataset": "{name}", "accuracy": 0.42, "hparams": {{"lr": NaN}}}}\n'
        f'{{"arch": {{"input": {{"shape": [1, 8, 8], "num_classes": 10}}, "layers": [{{"op": '
        f'"gap"}}, {{"op": "linear", "out": 10, "scale": Infinity}}]}}, "dataset": "{name}", '
        f'"accuracy": 0.43}}\n')
    with Client(server.url, AUTH["Authorization"].split()[1]) as c:
        rep = c.ingest_file(path)
    assert rep["added"] + rep["skipped"] == 1
    assert [r["where"] for r in rep["rejected"]] == [2, 3]
    assert "hparams" in rep["rejected"][0]["reason"]
    assert "arch.layers[1].scale" in rep["rejected"][1]["reason"]


# ------------------------------------------------------------------------ fuzzing
MAX_EXAMPLES = 20


def _checks() -> list[Any]:
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    return [not_a_server_error, status_code_conformance, content_type_conformance,
            response_schema_conformance]


CHECKS = _checks()


def _operations(url: str) -> list[Any]:
    import schemathesis

    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    return [r.ok() for r in schema.get_all_operations()]


def _fuzz(op: Any, mode: Any, url: str, problems: list[str]) -> None:
    """Run ``MAX_EXAMPLES`` generated requests of one operation; collect what is wrong."""

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(mode))
    def check(case: Any) -> None:
        r = case.call(base_url=url, headers=AUTH, timeout=60)
        where = f"{case.method} {case.formatted_path} ({mode.name})"
        try:  # documented status, content type and body schema, and no 5xx
            case.validate_response(r, checks=CHECKS, headers=AUTH)
        except Exception as e:  # schemathesis raises a FailureGroup naming each failed check
            problems.append(f"{where}: {r.status_code} {e}"[:600])
        if r.status_code >= 500 and not (r.status_code == 503 and case.path == "/health/ready"):
            problems.append(f"{where}: {r.status_code} {r.text[:300]}")
        elif r.status_code >= 400 and case.path != "/health/ready":
            try:
                err = r.json()["error"]
                assert isinstance(err["code"], str) and err["message"]
            except (ValueError, KeyError, TypeError, AssertionError):
                problems.append(f"{where}: {r.status_code} not the error shape: {r.text[:300]}")

    try:
        check()
    except Unsatisfiable:
        # an operation without parameters or body has no invalid input to generate
        if mode.name != "NEGATIVE":
            raise


@pytest.mark.slow
def test_openapi_fuzz_finds_no_server_errors(server: Any, scoring_dcn: float) -> None:
    """Schemathesis: bounded valid and invalid inputs for every operation (see above)."""
    from schemathesis import GenerationMode

    problems: list[str] = []
    ops = _operations(server.url)
    assert len(ops) >= 12
    for op in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if (op.method.upper(), op.path, mode) == ("POST", "/v1/predictors",
                                                      GenerationMode.POSITIVE):
                continue
            _fuzz(op, mode, server.url, problems)
    assert not problems, "\n".join(problems[:10])
    assert httpx.get(server.url + "/health/ready").status_code == 200
