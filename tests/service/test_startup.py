"""Startup on a database that holds data: the default predictor is trained at the first
start and loaded from the registry (not retrained) at the next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.service.conftest import MIN_EXPERIMENTS, TINY_PREDICTOR, wait_ready

#: A target far outside the digits experiments' (10 classes, 1x8x8 inputs).
OUTSIDE: dict[str, Any] = {"num_classes": 1000, "input_shape": [3, 64, 64]}
CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"


def _seed(db: Path, tmp: Path, exps: dict[str, Any]) -> float:
    """A database with the real digits subset (its DCN computed) and the measured runs."""
    import torch

    from tapas.app.pipeline import Pipeline

    npz = tmp / "digits300.npz"
    npz.write_bytes(exps["npz"])
    app = Pipeline(db).open()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny probe: more threads only oversubscribe a shared CPU
    try:
        row, res = app.characterize(npz, seed=0)
        recs = [{"arch": a, "dataset": row.id, "accuracy": acc, "epochs": 5, "seed": 0}
                for a, acc in zip(exps["nets"], exps["accuracies"], strict=True)]
        rep = app.ingest(recs)
        assert rep.added == len(recs), rep.to_dict()
    finally:
        torch.set_num_threads(threads)
        app.close()
    return float(res.dcn)


def _start(settings: Any) -> Any:
    from service import create_app
    from service.server import BackgroundServer

    app = create_app(settings, predictor_params=TINY_PREDICTOR, min_experiments=MIN_EXPERIMENTS)
    return BackgroundServer(app, token_set=True).start()


def test_default_predictor_trained_then_reloaded(service_env: Path, tmp_path: Path,
                                                 digits_experiments: dict) -> None:
    from lde import Store
    from tapas.core.config import get_settings

    settings = get_settings()
    Store(settings.database).close()  # exists: no starter seeding
    dcn = _seed(settings.database, tmp_path, digits_experiments)

    srv = _start(settings)
    try:
        ready = wait_ready(srv.url)
        assert ready["predictor"] is not None, ready
        first = httpx.get(f"{srv.url}/v1/predictors/{ready['predictor']}").json()
        assert first["dcn_lo"] <= dcn <= first["dcn_hi"] and first["n_train"] == 4
        r = httpx.post(srv.url + "/v1/predict",
                       json={"archs": [CELL, *digits_experiments["nets"]], "dcn": dcn,
                             "input_shape": [1, 8, 8]})
        assert r.status_code == 200, r.text
        assert r.json()["predictor"]["id"] == first["id"]
        jobs = httpx.get(srv.url + "/v1/jobs").json()["items"]
        assert jobs[-1]["kind"] == "predictor" and jobs[-1]["state"] == "succeeded"
    finally:
        srv.stop()

    srv = _start(settings)  # a restart: the registered model file is loaded, not retrained
    try:
        ready = wait_ready(srv.url)
        assert ready["predictor"] == first["id"]
        r = httpx.post(srv.url + "/v1/predict", json={"archs": [CELL], "dcn": dcn,
                                                      "input_shape": [1, 8, 8]})
        assert r.status_code == 200 and r.json()["predictor"]["cached"] is True
        assert len(httpx.get(srv.url + "/v1/predictors").json()["items"]) == 1
    finally:
        srv.stop()


def test_service_scorer_and_cli_answer_with_the_same_predictor(
        service_env: Path, tmp_path: Path, digits_experiments: dict) -> None:
    """One application rule: the same request through HTTP, the in-process scorer and the
    CLI is answered by the same predictor with the same numbers, and a target no predictor
    covers is the same refusal in all three (no silent training on the request path)."""
    import json

    import pytest
    from typer.testing import CliRunner

    from lde import Store
    from tapas.app.cli.main import app as cli
    from tapas.app.client import Client, NoPredictor
    from tapas.app.scorer import LocalScorer
    from tapas.core.config import get_settings
    from tapas.core.types import NoPredictorError

    db = tmp_path / "one.duckdb"
    settings = get_settings().model_copy(update={"db_path": db})
    Store(db).close()  # exists: no starter seeding
    dcn = _seed(db, tmp_path, digits_experiments)
    far = 0.0 if dcn > 0.5 else 1.0
    nets = digits_experiments["nets"]
    archs = [CELL, *nets]

    srv = _start(settings)  # trains the default predictor (the only dataset's DCN)
    try:
        wait_ready(srv.url)
        with Client(srv.url, retries=0) as c:
            over_http = c.predict(archs, dcn=dcn, input_shape=[1, 8, 8])
            far_http = c.predict([CELL], dcn=dcn, **OUTSIDE)
        raw = httpx.post(srv.url + "/v1/predict", json={"archs": [CELL], "dcn": dcn,
                                                        **OUTSIDE}).json()["results"][0]
        with Client(srv.url, retries=0) as c:
            with pytest.raises(NoPredictor) as ei:
                c.predict(archs[:1], dcn=far, input_shape=[1, 8, 8])
            assert isinstance(ei.value, NoPredictorError) and ei.value.status == 409
    finally:
        srv.stop()
    pid = over_http[0].predictor
    assert {p.predictor for p in over_http} == {pid}

    with LocalScorer(db_path=db, predictor_params=TINY_PREDICTOR,
                     min_experiments=MIN_EXPERIMENTS) as sc:
        in_process = sc.predict(archs, dcn=dcn, input_shape=(1, 8, 8))
        far_local = sc.predict([CELL], dcn=dcn, **OUTSIDE)
        with pytest.raises(NoPredictorError, match="no trained predictor covers"):
            sc.predict(archs[:1], dcn=far, input_shape=(1, 8, 8))

    files = []
    for i, net in enumerate(nets):
        files.append(tmp_path / f"net{i}.json")
        files[-1].write_text(json.dumps(net))
    base = ["predict", CELL, *map(str, files), "--input-shape", "1x8x8", "--db", str(db)]
    r = CliRunner().invoke(cli, [*base, "--dcn", str(dcn), "--json"])
    assert r.exit_code == 0, r.output
    on_cli = json.loads(r.stdout)
    # the cell's ops (add, avgpool, ...) were never among the digits nets': one warning
    assert [ln for ln in r.stderr.splitlines() if "training domain" in ln] == [
        "warning: 1 of 5 predictions lie outside the predictor's training domain "
        "(extrapolated, intervals widened); most common: " + on_cli["predictions"][0][
            "domain_reasons"][0]], r.stderr
    r = CliRunner().invoke(cli, ["predict", CELL, "--classes", "1000", "--input-shape", "3x64x64",
                                 "--db", str(db), "--dcn", str(dcn), "--json"])
    assert r.exit_code == 0, r.output
    far_cli = json.loads(r.stdout)["predictions"][0]
    warning = [ln for ln in r.stderr.splitlines() if "training domain" in ln]
    assert len(warning) == 1 and "1 of 1 predictions" in warning[0], r.stderr
    r = CliRunner().invoke(cli, [*base, "--dcn", str(far)])
    assert r.exit_code == 1 and "no trained predictor covers" in r.output, r.output

    assert {p.predictor for p in in_process} == {pid} and on_cli["predictor"] == pid
    assert on_cli["latency_ms"] > 0.0  # the answer's fields, as over HTTP
    for a, b, row in zip(over_http, in_process, on_cli["predictions"], strict=True):
        assert a.arch_id == b.arch_id == row["arch_id"]
        assert a.mean == pytest.approx(b.mean, abs=1e-6) == pytest.approx(row["mean"],
                                                                          abs=1e-6)
        assert a.lower == pytest.approx(b.lower, abs=1e-6)

    # the training networks at the training target are in domain, everywhere ...
    assert over_http[0].domain_reasons == in_process[0].domain_reasons
    assert "never seen in training" in over_http[0].domain_reasons[0]
    for a, b, row in zip(over_http[1:], in_process[1:], on_cli["predictions"][1:],
                         strict=True):
        assert a.in_domain and b.in_domain and row["in_domain"] is True
        assert a.domain_reasons == b.domain_reasons == () and row["domain_reasons"] == []
    # ... a network for 1000 classes on 3x64x64 inputs is not, with the same reasons
    why = list(far_http[0].domain_reasons)
    assert not far_http[0].in_domain and not far_local[0].in_domain
    assert raw["in_domain"] is False and far_cli["in_domain"] is False
    assert why == list(far_local[0].domain_reasons) == raw["domain_reasons"] \
        == far_cli["domain_reasons"]
    assert any("1000 classes" in w for w in why), why
    assert any("input shape [3, 64, 64]" in w for w in why), why
    assert far_http[0].mean == pytest.approx(far_local[0].mean, abs=1e-6)
    assert far_cli["mean"] == pytest.approx(far_http[0].mean, abs=1e-6)


def test_ready_before_the_default_predictor_and_answers_what_it_can(
        service_env: Path, tmp_path: Path, digits_experiments: dict) -> None:
    """Issue 36: the service is ready once its database is open; while the default
    predictor is still queued or training, a request a registered predictor covers is
    answered and one only the default could answer is a 503 with Retry-After."""
    import threading

    from lde import Store
    from tapas.app.pipeline import Pipeline
    from tapas.core.config import get_settings

    db = tmp_path / "busy.duckdb"
    settings = get_settings().model_copy(update={"db_path": db})
    Store(db).close()
    dcn = _seed(db, tmp_path, digits_experiments)
    with Pipeline(db, model_dir=settings.models, predictor_params=TINY_PREDICTOR,
                  min_experiments=MIN_EXPERIMENTS) as app:
        _, registered = app.train(dcn)
    far = 0.0 if dcn > 0.5 else 1.0

    from service import create_app
    from service.server import BackgroundServer

    api = create_app(settings, predictor_params=TINY_PREDICTOR, min_experiments=MIN_EXPERIMENTS)
    release = threading.Event()
    blocker = api.state.tapas.jobs.submit("hold", "holds the one job worker",
                                          lambda ctx: {"held": release.wait(120)})
    srv = BackgroundServer(api, token_set=True).start()
    try:
        ready = wait_ready(srv.url, default=False)
        assert ready["default"] == "training" and ready["predictor"] is None, ready
        r = httpx.post(srv.url + "/v1/predict", json={"archs": [CELL], "dcn": dcn,
                                                      "input_shape": [1, 8, 8]})
        assert r.status_code == 200 and r.json()["predictor"]["id"] == registered.id, r.text
        r = httpx.post(srv.url + "/v1/predict", json={"archs": [CELL], "dcn": far,
                                                      "input_shape": [1, 8, 8]})
        assert r.status_code == 503 and r.json()["error"]["code"] == "predictor_training"
        assert r.headers["retry-after"] == "5"
        release.set()
        ready = wait_ready(srv.url)
        assert ready["default"] == "loaded" and ready["predictor"] == registered.id
        assert httpx.get(f"{srv.url}/v1/jobs/{blocker.id}").json()["state"] == "succeeded"
        r = httpx.post(srv.url + "/v1/predict", json={"archs": [CELL], "dcn": far,
                                                      "input_shape": [1, 8, 8]})
        assert r.status_code == 409 and r.json()["error"]["code"] == "no_predictor"
    finally:
        release.set()
        srv.stop()


def test_fresh_home_serves_the_shipped_default_predictor_at_once(
        tmp_path: Path, monkeypatch: Any) -> None:
    """Issue 36: on a fresh home (the default database seeded at start, default predictor
    hyper-parameters) the default predictor is a shipped one: loaded, not trained."""
    import pytest

    from lde.shipped_predictors import entries
    from service import create_app
    from service.server import BackgroundServer
    from tapas.core.config import get_settings

    if not entries():
        pytest.fail("no shipped predictors in this installation (python -m tapas.app.release)")
    monkeypatch.setenv("TAPAS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TAPAS_DB_PATH", raising=False)
    monkeypatch.delenv("TAPAS_MODEL_DIR", raising=False)
    get_settings.cache_clear()
    try:
        settings = get_settings()
        with BackgroundServer(create_app(settings), token_set=True) as srv:
            ready = wait_ready(srv.url)
            pid = ready["predictor"]
            info = httpx.get(f"{srv.url}/v1/predictors/{pid}").json()
            assert info["provenance"]["origin"] == "shipped", info
            assert pid in {e["id"] for e in entries()}
            # unpacked from the package, nothing trained beside it
            assert [f.name for f in settings.models.iterdir()] == [f"{pid}.tap"]
    finally:
        get_settings.cache_clear()
