"""Model files (issue 15): registries name them relative to the model directory, so a
copied TAPAS_HOME serves its own files; a corrupt file is not listed as a predictor."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import wait_ready
from tests.service.test_startup import CELL, _seed, _start


def test_copied_home_uses_its_own_model_files(tmp_path: Path,
                                              digits_experiments: dict) -> None:
    from lde import Store
    from tapas.core.config import Settings

    def settings(home: Path) -> Settings:
        return Settings(home=home, api_token="t", device="cpu", probe_epochs=1,
                        probe_max_samples=200)

    a = settings(tmp_path / "a")
    a.home.mkdir()
    Store(a.database).close()
    dcn = _seed(a.database, tmp_path, digits_experiments)
    srv = _start(a)
    try:
        pid = wait_ready(srv.url)["predictor"]
        assert pid is not None
    finally:
        srv.stop()
    with Store(a.database, read_only=True) as store:
        assert store.predictor(pid).artifact == f"{pid}.tap"  # relative to the model dir

    b = settings(tmp_path / "b")
    shutil.copytree(a.home, b.home)
    (a.models / f"{pid}.tap").write_bytes(b"corrupted original")  # B must not read A's file
    srv = _start(b)
    try:
        assert wait_ready(srv.url)["predictor"] == pid
        r = httpx.post(srv.url + "/v1/predict", json={"archs": [CELL], "dcn": dcn,
                                                      "input_shape": [1, 8, 8]})
        assert r.status_code == 200, r.text
        assert [p["id"] for p in httpx.get(srv.url + "/v1/predictors").json()["items"]] == [pid]
        path = b.models / f"{pid}.tap"
        data = bytearray(path.read_bytes())
        data[-10] ^= 0xFF  # one flipped byte: fails its checksum
        path.write_bytes(bytes(data))
        assert httpx.get(srv.url + "/v1/predictors").json()["items"] == []
    finally:
        srv.stop()


@pytest.mark.slow  # a resource bound: 6,000 networks through a served process (~30 s)
def test_memory_stays_within_the_cache_budget(tmp_path: Path,
                                              digits_experiments: dict) -> None:
    """6,000 distinct networks scored by a `tapas serve` process with TAPAS_CACHE_MB=16:
    its RSS grows by far less than the ~700 MB those networks would hold if kept."""
    import random

    from lde import Store
    from tapas.app.pipeline import Pipeline
    from tapas.core.arch import all_cells
    from tests.service.conftest import TINY_PREDICTOR
    from tests.service.proc_server import ProcServer, proc_kib

    home = tmp_path / "home"
    home.mkdir()
    Store(home / "lde.duckdb").close()
    dcn = _seed(home / "lde.duckdb", tmp_path, digits_experiments)
    with Pipeline(home / "lde.duckdb", model_dir=home / "models",
                  predictor_params=TINY_PREDICTOR, min_experiments=1) as pipe:
        pipe.train(dcn)
    cells = all_cells()
    random.Random(0).shuffle(cells)
    with ProcServer(home, default_predictor=True, TAPAS_CACHE_MB="16") as srv, \
            httpx.Client(base_url=srv.url, timeout=300) as c:
        def score(batch: list[str]) -> None:
            r = c.post("/v1/predict", json={"archs": batch, "dcn": dcn,
                                            "input_shape": [1, 8, 8]})
            assert r.status_code == 200, r.text[:300]

        score(cells[:500])  # warm: the first request loads the model and its code paths
        before = proc_kib(srv.pid, "VmRSS")
        for i in range(500, 6500, 500):
            score(cells[i:i + 500])
        grown_mib = (proc_kib(srv.pid, "VmRSS") - before) / 1024
        print(f"RSS {before / 1024:.0f} MiB after warm-up, grew by {grown_mib:.0f} MiB")
    assert grown_mib < 200, f"RSS grew by {grown_mib:.0f} MiB"
