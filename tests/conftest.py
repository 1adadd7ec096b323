"""Fixtures shared by every test package."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tapas.core.config import SettingsError, get_settings
from tapas.core.device import apply_threads

# The suite runs torch as every tapas command and pipeline does: the thread budget
# (TAPAS_THREADS: one torch thread for the small models, idle OpenMP threads waiting
# passively), applied here, before anything imports torch. Without it torch starts an
# intra-op thread per core whose idle threads spin, and on a busy 2-core machine the
# in-process trainings of the suite run several times slower. Tests of the budget itself
# run in fresh interpreters without these variables (tests/tapas/core/test_device.py).
with contextlib.suppress(SettingsError):  # bad TAPAS_* variables: their tests report them
    apply_threads()
get_settings.cache_clear()  # the tests set their own TAPAS_* variables

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: rows a workflow test's pipeline trains a predictor on, at most: a real one takes a
#: balanced sample of up to 10,000 (``tapas.app.pipeline.MAX_TRAIN_ROWS``), and on the starter
#: data expanding and encoding those networks is most of a training
SMALL_TRAIN_ROWS = 1000


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip cleanly where it is absent."""
    if not (SHARED_DATA / "nb201.csv").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture()
def tapas_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated TAPAS_HOME so tests never touch the user's database or models."""
    from tapas.core.config import get_settings

    monkeypatch.setenv("TAPAS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TAPAS_DB_PATH", raising=False)
    monkeypatch.delenv("TAPAS_MODEL_DIR", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


@pytest.fixture()
def small_trainings(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process pipeline trainings on at most :data:`SMALL_TRAIN_ROWS` rows, for tests
    of a workflow (commands, registry, progress), not of the predictor's quality."""
    monkeypatch.setattr("tapas.app.pipeline.MAX_TRAIN_ROWS", SMALL_TRAIN_ROWS)


@pytest.fixture()
def instant_retries(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """:mod:`tapas.app.client`'s back-off sleeps recorded instead of slept (the list returned),
    for tests of what a command says once its retries are spent on an address where
    nothing listens; the back-off itself is tested in tests/tapas/app/test_client.py."""
    import time

    import tapas.app.client

    slept: list[float] = []

    class _Clock:
        def __getattr__(self, name: str) -> object:
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            slept.append(seconds)

    monkeypatch.setattr(tapas.app.client, "time", _Clock())
    return slept


@pytest.fixture(scope="session", autouse=True)
def _seed_from_one_copy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A new default database in this process starts as a copy of one seeded for real.

    Seeding (``Pipeline._open_writable``: the starter data and NAS-Bench-201's 46,875
    results, ~4 s on 2 cores) gives every new database the same content, so the first
    seeding of the session is kept and later new databases copy it (~20 ms) before the
    real open runs, which then finds the shipped data committed. Tests of seeding itself
    (``@pytest.mark.real_seeding``) and every subprocess seed as a user's process does."""
    import shutil
    import threading

    from tapas.app.pipeline import Pipeline

    real = Pipeline._open_writable
    lock = threading.Lock()
    template: list[Path] = []

    def open_writable(self: Pipeline) -> Any:
        db = self.database
        if not self.seed or not self.shipped or db.exists() or _real_seeding.active:
            return real(self)
        with lock:
            if not template:
                path = tmp_path_factory.mktemp("seeded-once") / "lde.duckdb"
                real(Pipeline(path)).close()
                template.append(path)
        db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template[0], db)
        return real(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Pipeline, "_open_writable", open_writable)
        yield


class _RealSeeding:
    active = False


_real_seeding = _RealSeeding()


@pytest.fixture(autouse=True)
def _real_seeding_when_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """``@pytest.mark.real_seeding``: new databases in this test seed for real."""
    if request.node.get_closest_marker("real_seeding") is None:
        yield
        return
    _real_seeding.active = True
    try:
        yield
    finally:
        _real_seeding.active = False

