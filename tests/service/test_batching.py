"""Concurrent predict requests are merged into shared forward passes, and each still gets
its own answer: the same numbers as scored alone, its own errors, nothing of another's."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from lde import Store
from service.batching import ScoreBatcher
from tapas.pipeline import Pipeline
from tapas.types import parse_archs
from tests.lde.conftest import small_arch
from tests.tapas.test_pipeline_reuse import SMALL, _dataset

ARCHS = [small_arch(w, kernel=k) for w in (4, 8, 12, 16, 24) for k in (1, 3, 5)]


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    tmp = tmp_path_factory.mktemp("batching")
    store = Store(tmp / "lde.duckdb")
    _dataset(store, "a", 0.50, 0.1, ARCHS)
    _dataset(store, "b", 0.55, 0.2, ARCHS)
    p = Pipeline(store=store, model_dir=tmp / "models", predictor_params=SMALL,
                 min_experiments=10)
    p.train(0.52)
    yield p
    store.close()


def _parsed(archs: list) -> list:  # noqa: ANN001
    return parse_archs([a.to_dict() for a in archs], 10, (3, 8, 8))


def test_score_many_equals_scoring_each_alone(pipe: Pipeline) -> None:
    reqs = [(_parsed(ARCHS[i:i + 3]), 0.5 + 0.004 * i, None) for i in range(0, 12, 3)]
    merged = pipe.score_many(reqs)
    for (archs, dcn, _), got in zip(reqs, merged, strict=True):
        want, info = pipe.score(archs, dcn)
        p, got_info = got
        assert got_info.id == info.id and len(p.mean) == len(archs)
        for k in ("mean", "spread", "lower", "upper"):
            np.testing.assert_allclose(getattr(p, k), getattr(want, k), atol=1e-6)
        np.testing.assert_allclose(p.members, want.members, atol=1e-6)
        assert list(p.in_domain) == list(want.in_domain) and p.reasons == want.reasons


def test_one_bad_request_fails_alone(pipe: Pipeline) -> None:
    good = (_parsed(ARCHS[:2]), 0.52, None)
    unknown = (_parsed(ARCHS[2:3]), 0.52, "p_0000000000000000")
    nobody = (_parsed(ARCHS[3:4]), 0.99, None)  # no predictor covers this DCN
    out = pipe.score_many([good, unknown, good, nobody])
    assert isinstance(out[1], LookupError) and "p_0000000000000000" in str(out[1])
    assert type(out[3]).__name__ == "NoPredictorError"
    for i in (0, 2):
        assert len(out[i][0].mean) == 2


def test_concurrent_submits_share_batches_and_get_their_own_answers(pipe: Pipeline) -> None:
    batcher = ScoreBatcher(pipe.score_many)
    try:
        singles = [_parsed([a]) for a in ARCHS]
        alone = [float(pipe.score(s, 0.52)[0].mean[0]) for s in singles]
        results: dict[int, float] = {}
        errors: list[BaseException] = []
        start = threading.Barrier(len(singles))

        def client(i: int) -> None:
            start.wait()
            try:
                for _ in range(5):
                    p, _ = batcher.submit(singles[i], 0.52)
                    results[i] = float(p.mean[0])
                    assert len(p.mean) == 1
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(singles))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert [results[i] for i in range(len(singles))] == pytest.approx(alone, abs=1e-6)
        assert batcher.requests == 5 * len(singles)
        assert batcher.batches < batcher.requests  # some requests really shared a pass
        with pytest.raises(LookupError, match="p_0000000000000000"):
            batcher.submit(singles[0], 0.52, "p_0000000000000000")
    finally:
        batcher.close()
    with pytest.raises(RuntimeError, match="shutting down"):
        batcher.submit(_parsed(ARCHS[:1]), 0.52)


def test_a_large_request_is_not_merged_past_the_cap(pipe: Pipeline) -> None:
    seen: list[int] = []

    def spy(reqs):  # noqa: ANN001, ANN202 - records each batch's size, then really scores
        seen.append(sum(len(r[0]) for r in reqs))
        return pipe.score_many(reqs)

    batcher = ScoreBatcher(spy, max_networks=4)
    try:
        big = _parsed(ARCHS[:6])
        p, _ = batcher.submit(big, 0.52)
        assert len(p.mean) == 6
        threads = [threading.Thread(target=batcher.submit, args=(_parsed(ARCHS[:2]), 0.52))
                   for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen[0] == 6 and all(n <= 4 for n in seen[1:]) and sum(seen[1:]) == 12
    finally:
        batcher.close()


def test_only_large_requests_pause_the_garbage_collector() -> None:
    """Under steady load a small request is always in flight: pausing for each would keep
    the collector off for good and leak every reference cycle (an exception's traceback)."""
    import gc

    from service.body import gc_paused

    assert gc.isenabled()
    with gc_paused(False):
        assert gc.isenabled()
    with gc_paused(True):
        assert not gc.isenabled()
        with gc_paused(False):
            assert not gc.isenabled()  # a large one still in flight keeps it paused
    assert gc.isenabled()


def test_what_a_large_request_keeps_is_frozen_and_a_failure_freezes_nothing() -> None:
    """The networks a large predict caches leave the collector's reach (each full pass
    over ~700,000 cached objects paused every request for 100-350 ms); a failed one
    freezes nothing, so its exception's reference cycles are still collected."""
    import gc

    from service.body import gc_paused

    gc.unfreeze()
    try:
        with pytest.raises(ValueError), gc_paused(True):
            raise ValueError("a bad body")
        assert gc.get_freeze_count() == 0
        with gc_paused(True):
            kept = [[i] for i in range(1000)]  # what a cache would keep
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()
