"""A real tapas service on a free loopback port for the client and search tests.

It reuses the service tests' environment (``service_env``: isolated TAPAS_HOME, API
token, small upload and probe limits) and their :class:`service.server.BackgroundServer`.
Its database is the starter LDE when the starter data is installed, otherwise a small
real one built from ``../shared/data/nb201.csv`` (skipped when neither exists); the
predictors are tiny (few epochs, at most ``SMALL_TRAIN_ROWS`` rows), since these tests are about
the client, not about quality.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_DATA, SMALL_TRAIN_ROWS
from tests.service.conftest import TOKEN, service_env  # noqa: F401  (fixture)
from tests.tapas.nb201_lde import TINY, build_nb201_lde


@pytest.fixture(scope="module")
def live_server(service_env: Path) -> Iterator[Any]:  # noqa: F811
    from lde.starter import available
    from service import create_app
    from service.server import BackgroundServer
    from tapas.app.client import Client
    from tapas.core.config import get_settings

    if not available():
        if not (SHARED_DATA / "nb201.csv").exists():
            pytest.skip("neither the starter data nor ../shared/data is available")
        build_nb201_lde(SHARED_DATA, get_settings().database)
    app = create_app(get_settings(), predictor_params=TINY, min_experiments=100)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("tapas.app.pipeline.MAX_TRAIN_ROWS", SMALL_TRAIN_ROWS)  # tiny trainings
        with BackgroundServer(app, token_set=True) as srv:
            with Client(srv.url) as c:
                srv.ready_info = c.wait_ready(timeout=600)
            yield srv


__all__ = ["TOKEN", "live_server", "service_env"]
