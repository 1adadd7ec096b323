"""Every cache that can grow with what users send shares the one pool and its one budget
(TAPAS_CACHE_MB): each reports its bytes in ``usage()`` and, filled past a small budget,
evicts instead of growing (issue 37: 9 caches under 6 eviction policies before)."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import lde.store  # noqa: F401 - registers the LDE's rebuilt networks
import service.state  # noqa: F401 - registers the model-file checks
from lde import Store
from tapas.app.experiments.jobs import load_split
from tapas.app.pipeline import MODEL_BYTES_PER_FILE_BYTE, Pipeline
from tapas.core.arch.cache import budget, usage
from tapas.core.config import Settings
from tapas.core.spaces import SPACES
from tapas.core.types import cache_bytes, set_cache_budget
from tests.tapas.app.test_pipeline import SMALL, _dataset

GROWING = {"notations", "nb201", "darts", "lde-archs", "lde-columns", "predictors",
           "train-requests", "excluded-ids", "genotype-keys", "model-checks", "experiment-datasets"}


@pytest.fixture()
def restore_budget() -> Iterator[None]:
    set_cache_budget(0)  # an empty pool: what a test evicts is its own
    set_cache_budget(512 * 2**20)
    yield
    set_cache_budget(512 * 2**20)


def test_every_growing_cache_is_in_the_pool() -> None:
    assert set(usage()) >= GROWING


def test_the_pipeline_takes_tapas_cache_mb(monkeypatch: pytest.MonkeyPatch,
                                           restore_budget: None) -> None:
    from tapas.core.arch import cache
    from tapas.core.config import get_settings

    monkeypatch.setenv("TAPAS_CACHE_MB", "3")
    monkeypatch.setattr(cache, "_budget_set", False)  # a fresh process
    get_settings.cache_clear()
    try:
        Pipeline(store=None, model_dir=Path("unused"))
        assert budget() == 3 * 2**20
        set_cache_budget(5 * 2**20)  # an explicit budget wins over the setting
        Pipeline(store=None, model_dir=Path("unused"))
        assert budget() == 5 * 2**20
    finally:
        get_settings.cache_clear()


def _filled(name: str, limit: int) -> int:
    used = usage()[name]
    assert 0 < used <= limit and cache_bytes() <= limit, (name, used, cache_bytes(), limit)
    return used


def test_the_pipelines_caches_stay_within_the_budget(tmp_path: Path,
                                                     restore_budget: None) -> None:
    """Predictors held in memory, answered train requests and excluded-dataset lookups."""
    with Store(tmp_path / "lde.duckdb") as store:
        _dataset(store, "a", 0.50, 0.1)
        _dataset(store, "b", 0.55, 0.2)
        _dataset(store, "far", 0.95, 0.5)
        models = tmp_path / "models"
        pipe = Pipeline(store=store, model_dir=models, predictor_params=SMALL,
                        min_experiments=10)
        first = pipe.train(0.52)[1]
        size = MODEL_BYTES_PER_FILE_BYTE * (models / first.artifact).stat().st_size
        limit = int(2.5 * size)  # two predictors fit, a third evicts the oldest
        set_cache_budget(limit)
        ids = []
        for i in range(4):
            pid = f"p_{i:016x}"
            shutil.copy(models / first.artifact, models / f"{pid}.tap")
            store.register_predictor(pid, first.dcn, first.tau, first.dcn_lo, first.dcn_hi,
                                     first.snapshot, first.n_train, {}, f"{pid}.tap",
                                     {"datasets": list(first.datasets)})
            pipe.registered(pid)
            ids.append(pid)
            _filled("predictors", limit)
        assert [i.id for i in pipe.loaded()] == ids[-2:]

        small = 4096  # the request maps' entries are ~300 bytes
        set_cache_budget(small)
        for i in range(40):
            assert pipe.train(0.52 + i * 1e-6)[1].id == first.id  # a new request, reused
            pipe.select(0.52, exclude_datasets=["far"] * (i + 1))  # a new exclusion key
            _filled("train-requests", small)
            _filled("excluded-ids", small)
        assert len(pipe._resolved) < 40 and len(pipe._excluded) < 40


def test_genotype_keys_stay_within_the_budget(restore_budget: None) -> None:
    limit = 64 * 2**10
    set_cache_budget(limit)
    space, rng = SPACES["chain"], random.Random(0)
    seen = {space.format(space.sample(rng)) for _ in range(600)}
    for text in seen:
        space.key(space.parse(text))
        _filled("genotype-keys", limit)
    assert len(space._keys) < len(seen)


def test_experiment_datasets_stay_within_the_budget(restore_budget: None) -> None:
    limit = 2 * 2**20  # digits split three ways is ~0.9 MB: two fit
    set_cache_budget(limit)
    first = load_split("digits", 0.2, 0)
    for seed in range(1, 4):
        load_split("digits", 0.2, seed)
        _filled("experiment-datasets", limit)
    assert load_split("digits", 0.2, 3)[1] is load_split("digits", 0.2, 3)[1]  # kept
    assert load_split("digits", 0.2, 0) is not first  # evicted, loaded again


def test_model_file_checks_stay_within_the_budget(tmp_path: Path,
                                                  restore_budget: None) -> None:
    from service.state import ServiceState

    state = ServiceState(Settings(home=tmp_path), train_default=False,
                         predictor_params=SMALL, min_experiments=10)
    try:
        with Store(tmp_path / "lde.duckdb") as store:
            _dataset(store, "a", 0.50, 0.1)
            _dataset(store, "b", 0.55, 0.2)
            pipe = Pipeline(store=store, model_dir=tmp_path / "models",
                            predictor_params=SMALL, min_experiments=10)
            info = pipe.train(0.52)[1]
        limit = 4096  # one check is ~200 bytes
        set_cache_budget(limit)
        path = tmp_path / "models" / info.artifact
        for i in range(40):
            copy = path.with_name(f"p_{i:016x}.tap")
            shutil.copy(path, copy)
            assert state._usable(info.with_(artifact=copy.name))
            _filled("model-checks", limit)
        assert len(state._verified) < 40
    finally:
        state.close()


def test_the_stores_columns_stay_within_the_budget(tmp_path: Path,
                                                   restore_budget: None) -> None:
    stores = [Store(tmp_path / f"lde{i}.duckdb") for i in range(3)]
    try:
        for store in stores:
            _dataset(store, "a", 0.50, 0.1)
        limit = int(2.5 * stores[0]._columns().nbytes())  # two stores' columns fit
        set_cache_budget(limit)
        for store in stores:
            assert store._columns() is not None
            _filled("lde-columns", limit)
        assert [len(s._cols) for s in stores] == [0, 1, 1]  # the least recently used went
        set_cache_budget(100)  # too small for any: the filters query DuckDB
        assert stores[0]._columns() is None and usage()["lde-columns"] == 0
    finally:
        for store in stores:
            store.close()
