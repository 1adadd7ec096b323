"""Concurrent predict requests are merged into shared forward passes, and each still gets
its own answer: the same numbers as scored alone, its own errors, nothing of another's."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from lde import Store
from service.batching import ScoreBatcher
from tapas.app.pipeline import Pipeline
from tapas.core.errors import NoPredictor, PredictorNotFound
from tapas.core.spaces import parse_archs
from tapas.core.types import Query
from tests.lde.conftest import small_arch
from tests.tapas.app.test_pipeline import SMALL, _dataset

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


def _query(archs: list, dcn: float = 0.52, predictor: str | None = None,  # noqa: ANN001
           members: bool = False) -> Query:
    return Query(tuple(parse_archs([a.to_dict() for a in archs], 10, (3, 8, 8))), dcn,
                 predictor, members)


def test_answer_many_equals_answering_each_alone(pipe: Pipeline) -> None:
    reqs = [_query(ARCHS[i:i + 3], 0.5 + 0.004 * i, members=i % 2 == 0)
            for i in range(0, 12, 3)]
    merged = pipe.answer_many(reqs)
    for q, got in zip(reqs, merged, strict=True):
        want = pipe.answer(q)
        assert got.predictor.id == want.predictor.id and got.dcn == q.dcn
        assert len(got.predictions) == len(q.archs)
        for g, w in zip(got.predictions, want.predictions, strict=True):
            for k in ("mean", "spread", "lower", "upper"):
                assert getattr(g, k) == pytest.approx(getattr(w, k), abs=1e-6)
            assert (g.members is None) == (not q.members)  # only when asked for
            if q.members:
                np.testing.assert_allclose(g.members, w.members, atol=1e-6)
            assert (g.in_domain, g.domain_reasons) == (w.in_domain, w.domain_reasons)


def test_one_bad_request_fails_alone(pipe: Pipeline) -> None:
    good = _query(ARCHS[:2])
    unknown = _query(ARCHS[2:3], predictor="p_0000000000000000")
    nobody = _query(ARCHS[3:4], 0.99)  # no predictor covers this DCN
    out = pipe.answer_many([good, unknown, good, nobody])
    assert isinstance(out[1], PredictorNotFound) and "p_0000000000000000" in str(out[1])
    assert isinstance(out[3], NoPredictor) and not isinstance(out[3], PredictorNotFound)
    for i in (0, 2):
        assert len(out[i].predictions) == 2


def test_concurrent_submits_share_batches_and_get_their_own_answers(pipe: Pipeline) -> None:
    batcher = ScoreBatcher(pipe.answer_many)
    try:
        singles = [_query([a]) for a in ARCHS]
        alone = [pipe.answer(s).predictions[0].mean for s in singles]
        results: dict[int, float] = {}
        errors: list[BaseException] = []
        start = threading.Barrier(len(singles))

        def client(i: int) -> None:
            start.wait()
            try:
                for _ in range(5):
                    got = batcher.submit(singles[i])
                    results[i] = got.predictions[0].mean
                    assert len(got.predictions) == 1
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
        with pytest.raises(PredictorNotFound, match="p_0000000000000000"):
            batcher.submit(_query(ARCHS[:1], predictor="p_0000000000000000"))
    finally:
        batcher.close()
    with pytest.raises(RuntimeError, match="shutting down"):
        batcher.submit(_query(ARCHS[:1]))


def test_a_large_request_is_not_merged_past_the_cap(pipe: Pipeline) -> None:
    seen: list[int] = []

    def spy(reqs):  # noqa: ANN001, ANN202 - records each batch's size, then really scores
        seen.append(sum(len(r.archs) for r in reqs))
        return pipe.answer_many(reqs)

    batcher = ScoreBatcher(spy, max_networks=4)
    try:
        assert len(batcher.submit(_query(ARCHS[:6])).predictions) == 6
        threads = [threading.Thread(target=batcher.submit, args=(_query(ARCHS[:2]),))
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
