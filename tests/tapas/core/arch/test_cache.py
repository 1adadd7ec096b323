"""One memory budget (TAPAS_CACHE_MB) bounds every process-wide architecture cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from tapas.core.arch import all_cells, from_nb201
from tapas.core.arch.cache import usage
from tapas.core.spaces import parse_arch
from tapas.core.types import cache_bytes, set_cache_budget


@pytest.fixture()
def small_budget():  # noqa: ANN201
    budget = 2 * 2**20
    set_cache_budget(budget)
    yield budget
    set_cache_budget(512 * 2**20)


def test_every_cache_is_registered_in_one_pool(small_budget: int) -> None:
    import lde.store  # noqa: F401 - registers the LDE's cache of rebuilt networks
    from tapas.core.arch import cache

    assert {"notations", "nb201", "darts", "lde-archs"} <= set(usage())
    assert cache.budget() == small_budget
    assert {c.pool for c in cache._registry.values()} == {cache._pool}


def test_a_working_set_within_the_budget_stays_cached(small_budget: int) -> None:
    """A search loop scoring the same batch again finds every network built: the whole
    budget serves whichever cache the batch needs (a fixed 20 % share for NAS-Bench-201
    evicted each cell before its next use, so every request rebuilt all of them)."""
    cells = all_cells()[:12]  # ~120 KB each: ~1.4 MB of the 2 MB budget, > 20 % of it
    first = [from_nb201(c, 10, 32) for c in cells]
    for _ in range(3):
        assert all(from_nb201(c, 10, 32) is a for c, a in zip(cells, first, strict=True))
    assert usage()["nb201"] > small_budget * 0.2


def test_many_distinct_networks_stay_within_the_budget(small_budget: int,
                                                       tmp_path: Path) -> None:
    from lde import ExperimentRecord, Store
    from tests.lde.conftest import small_arch

    cells = all_cells()[:400]
    for c in cells:  # ~120 KB each: far more than the NAS-Bench-201 share holds
        assert from_nb201(c, 10, 32) is from_nb201(c, 10, 32)  # kept while the newest
        parse_arch(from_nb201(c, 10, 32).to_dict(), 10, (3, 32, 32))  # the notations read
        assert cache_bytes() <= small_budget
    assert 0 < usage()["nb201"] < small_budget and 0 < usage()["notations"] < small_budget
    with Store(tmp_path / "lde.duckdb") as store:
        store.upsert_dataset("d", "fp-d", 100, 10, (3, 8, 8), dcn=0.5,
                             dcn_meta={"method": "test"})
        archs = [small_arch(w, kernel=k) for w in range(2, 60) for k in (1, 3)]
        store.add_experiments([ExperimentRecord(a, "d", 0.5) for a in archs])
        got = store.architectures([a.id for a in archs])
        assert len(got) == len(archs)
    assert 0 < usage()["lde-archs"] < small_budget
    assert cache_bytes() <= small_budget


def test_a_finalizer_inside_a_locked_section_does_not_deadlock() -> None:
    """The garbage collector may run an owner's finalizer while this thread holds the
    pool's lock (it did, in the test suite: a pipeline's close hung for ever). The drop it
    asks for is queued and done once the lock is free."""
    import threading

    from tapas.core.arch.cache import BudgetCache

    pool = BudgetCache(10_000)
    for i in range(3):
        pool.put("a", (1, i), i, 10)
        pool.put("b", (2, i), i, 10)

    def keep(key: object, value: object) -> bool:  # a finalizer firing mid-drop
        pool.drop_later("b", lambda k, v: k[1] == 0)
        return value != 1

    t = threading.Thread(target=pool.drop, args=("a", keep), daemon=True)
    t.start()
    t.join(timeout=10)
    assert not t.is_alive(), "drop deadlocked on its own lock"
    assert [k for k, _ in pool.items("a")] == [(1, 0), (1, 2)]
    assert [k for k, _ in pool.items("b")] == [(2, 0)]
