"""Fixtures of the service tests: a real uvicorn server on a free loopback port.

The server is module-scoped, with its own TAPAS_HOME, an initially empty database
(the tests upload a real dataset and ingest experiments they measure themselves) and
small settings: a 1 MiB upload limit, a one-epoch probe on at most 200 images, and a
tiny predictor (2 members, 2 epochs).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

TOKEN = "s3cret-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TINY_PREDICTOR = {"hidden_size": 8, "epochs": 2, "n_members": 2}
MIN_EXPERIMENTS = 200
EPOCHS = 5


@pytest.fixture(scope="module")
def service_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """TAPAS_* variables of the test server (module scope, restored afterwards)."""
    from tapas.core.config import get_settings

    home = tmp_path_factory.mktemp("service") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TAPAS_HOME", str(home))
        mp.delenv("TAPAS_DB_PATH", raising=False)
        mp.delenv("TAPAS_MODEL_DIR", raising=False)
        mp.setenv("TAPAS_API_TOKEN", TOKEN)
        mp.setenv("TAPAS_MAX_UPLOAD_MB", "1")
        mp.setenv("TAPAS_PROBE_EPOCHS", "1")
        mp.setenv("TAPAS_PROBE_MAX_SAMPLES", "200")
        mp.setenv("TAPAS_DEVICE", "cpu")
        get_settings.cache_clear()
        yield home
    get_settings.cache_clear()


def wait_ready(url: str, timeout: float = 180.0, default: bool = True) -> dict[str, Any]:
    """Until the server is ready and (``default``) its default predictor no longer trains."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        r = httpx.get(url + "/health/ready", timeout=10)
        if r.status_code == 200 and not (default and r.json()["default"] == "training"):
            return r.json()
        if r.status_code == 200:
            time.sleep(0.2)
            continue
        assert r.status_code == 503, r.text
        assert r.json()["status"] != "failed", r.text
        time.sleep(0.2)
    raise AssertionError(f"server not ready within {timeout} s")


@pytest.fixture(scope="module")
def server(service_env: Path) -> Iterator[Any]:
    """A started server (ready: database open, default predictor loaded)."""
    from service import create_app
    from service.server import BackgroundServer
    from tapas.core.config import get_settings

    settings = get_settings()
    # An empty database (created here, so the server does not seed the starter data): the
    # tests bring their own real data and do not depend on what an install ships.
    from lde import Store

    Store(settings.database).close()
    app = create_app(settings, predictor_params=TINY_PREDICTOR, min_experiments=MIN_EXPERIMENTS)
    with BackgroundServer(app, token_set=True) as srv:
        srv.ready_info = wait_ready(srv.url)
        yield srv


@pytest.fixture()
def client(server: Any) -> Iterator[httpx.Client]:
    """A keep-alive client that sends the right token."""
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=120) as c:
        yield c


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        assert 0.0 <= job["progress"] <= 1.0
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish within {timeout} s")


# ------------------------------------------------------------------------ real data
def digits_npz(n: int = 300) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The first ``n`` scikit-learn digits (real 8x8 images) as .npz bytes."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = d.images[:n].astype(np.float32), d.target[:n].astype(np.int64)
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y)
    return buf.getvalue(), x, y


def small_net(width: int, depth: int) -> dict[str, Any]:
    """A conv net in the IR for 1 x 8 x 8 inputs and 10 classes."""
    layers: list[dict[str, Any]] = []
    for _ in range(depth):
        layers += [{"op": "conv", "out": width, "kernel": 3}, {"op": "bn"}, {"op": "relu"}]
    layers += [{"op": "gap"}, {"op": "linear", "out": 10}]
    return {"input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": layers}


def train_accuracy(arch_dict: dict[str, Any], x: np.ndarray, y: np.ndarray,
                   epochs: int = EPOCHS, seed: int = 0) -> float:
    """Really train the network on 2/3 of the data; its held-out accuracy."""
    import torch

    from tapas.core.arch import Architecture, to_module

    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: threads only add overhead on a shared machine
    try:
        xt = torch.from_numpy(x[:, None] / 16.0).float()
        yt = torch.from_numpy(y)
        n = len(xt) * 2 // 3
        net = to_module(Architecture.from_dict(arch_dict))
        opt = torch.optim.Adam(net.parameters(), lr=0.02)
        for _ in range(epochs):
            net.train()
            for i in range(0, n, 50):
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(net(xt[i:i + 50]), yt[i:i + 50])
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            pred = net(xt[n:]).argmax(1)
    finally:
        torch.set_num_threads(threads)
    return float((pred == yt[n:]).float().mean())


@pytest.fixture(scope="session")
def digits_experiments() -> dict[str, Any]:
    """The digits upload and experiment records measured by training six small nets."""
    data, x, y = digits_npz()
    nets = [small_net(w, d) for w in (4, 16) for d in (1, 2)]
    accs = [train_accuracy(a, x, y) for a in nets]
    return {"npz": data, "nets": nets, "accuracies": accs}
