"""tapas.app.search: the strategies (with a deterministic scoring function, for the algorithm's
own properties), and real search loops against the service and in process."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tapas.app.client import Client, DatasetInfo, Prediction
from tapas.app.search import (
    cell_ops,
    get_search_space,
    random_search,
    regularized_evolution,
    thompson_search,
)
from tapas.core.spaces import SPACES
from tests.tapas.live_server import TOKEN, live_server, service_env  # noqa: F401

OP_VALUE = {"nor_conv_3x3": 3.0, "nor_conv_1x1": 2.0, "skip_connect": 1.0, "avg_pool_3x3": 0.5,
            "none": 0.0}


class FunctionScorer:
    """Scores by a fixed function of the architecture, for unit tests of the algorithms
    only; it records every architecture it was asked about."""

    def __init__(self) -> None:
        self.asked: list[Any] = []
        self.calls = 0

    def value(self, a: Any) -> float:
        if isinstance(a, str):  # NB201 cell: a rugged sum over edges with an interaction
            ops = cell_ops(a)
            v = sum(OP_VALUE[o] * (1 + 0.1 * i) for i, o in enumerate(ops))
            return v / 25.0 - (0.2 if ops[0] == ops[5] == "nor_conv_3x3" else 0.0)
        return 1.0 - abs(a.params - 20_000) / 1e6  # IR networks: closest to 20k params

    def predict(self, archs: Sequence[Any], **kw: Any) -> list[Prediction]:
        self.calls += 1
        self.asked.extend(archs)
        out = []
        for a in archs:
            m = self.value(a)
            aid = a if isinstance(a, str) else a.id
            out.append(Prediction(aid, m, 0.01, m - 0.02, m + 0.02, "p_fn", 0.5, 0.9))
        return out

    def dataset_info(self, ident: str) -> DatasetInfo:
        return DatasetInfo(ident, ident, 10, (1, 8, 8), 0.7)


# ------------------------------------------------------------------ algorithm properties
@pytest.mark.parametrize("strategy", [regularized_evolution, random_search,
                                      thompson_search])
def test_budget_respected_and_no_repeat_queries(strategy: Any) -> None:
    f = FunctionScorer()
    res = strategy(f, "nb201", dcn=0.5, budget=137, seed=3, batch_size=10)
    assert res.queries == 137 == len(f.asked) == len(set(f.asked))
    assert len(res.history) == 137
    assert all(b >= a for a, b in zip(res.history, res.history[1:], strict=False))
    assert res.history[-1] == res.chosen.mean == max(f.value(a) for a in f.asked)
    assert [c.mean for c in res.best] == sorted((c.mean for c in res.best), reverse=True)
    assert res.predictors == ["p_fn"]
    assert 1 < f.calls <= 137 // 10 + 1  # scored in full batches, not one by one


@pytest.mark.parametrize("strategy", [regularized_evolution, random_search,
                                      thompson_search])
def test_same_seed_same_result(strategy: Any) -> None:
    a = strategy(FunctionScorer(), "nb201", dcn=0.5, budget=120, seed=7).to_dict()
    b = strategy(FunctionScorer(), "nb201", dcn=0.5, budget=120, seed=7).to_dict()
    c = strategy(FunctionScorer(), "nb201", dcn=0.5, budget=120, seed=8).to_dict()
    for d in (a, b, c):
        d.pop("seconds")
    assert a == b
    assert a["best"] != c["best"] or a["history"] != c["history"]


@pytest.mark.parametrize("strategy", [regularized_evolution, random_search,
                                      thompson_search])
def test_a_search_starts_from_the_genotypes_given(strategy: Any) -> None:
    start = [c for c in SPACES["nb201"].enumerate() if "none" not in c][:12]
    f = FunctionScorer()
    res = strategy(f, "nb201", dcn=0.5, budget=40, seed=3, start=[*start, start[0]])
    assert f.asked[:12] == start and res.queries == 40 == len(set(f.asked))
    f = FunctionScorer()
    strategy(f, "nb201", dcn=0.5, budget=5, seed=3, start=start)
    assert f.asked == start[:5]  # no more than the budget


def test_evolution_beats_random_on_a_structured_landscape() -> None:
    space_best = max(FunctionScorer().value(c) for c in SPACES["nb201"].enumerate())
    rea = [regularized_evolution(FunctionScorer(), "nb201", dcn=0.5, budget=300, seed=s)
           .chosen.mean for s in range(4)]
    rnd = [random_search(FunctionScorer(), "nb201", dcn=0.5, budget=300, seed=s).chosen.mean
           for s in range(4)]
    assert sum(rea) > sum(rnd)
    assert max(rea) == pytest.approx(space_best)


def test_thompson_sampling_beats_random_and_spends_its_budget() -> None:
    space_best = max(FunctionScorer().value(c) for c in SPACES["nb201"].enumerate())
    ts = [thompson_search(FunctionScorer(), "nb201", dcn=0.5, budget=300, seed=s)
          for s in range(4)]
    rnd = [random_search(FunctionScorer(), "nb201", dcn=0.5, budget=300, seed=s).chosen.mean
           for s in range(4)]
    assert sum(r.chosen.mean for r in ts) > sum(rnd)
    assert max(r.chosen.mean for r in ts) == pytest.approx(space_best)
    assert all(r.stop == "budget" and r.queries == 300 for r in ts)


def test_ucb_ranks_where_a_clipped_upper_bound_ties() -> None:
    class Wide(FunctionScorer):
        """Intervals wider than the room left below 1.0: every upper bound clips."""

        def predict(self, archs: Sequence[Any], **kw: Any) -> list[Prediction]:
            return [Prediction(p.arch_id, p.mean, 0.05 + 0.1 * p.mean, 0.0, 1.0, "p_fn", 0.5,
                               0.9) for p in super().predict(archs, **kw)]

    up = random_search(Wide(), "nb201", dcn=0.5, budget=60, seed=1, objective="upper")
    ucb = random_search(Wide(), "nb201", dcn=0.5, budget=60, seed=1, objective="ucb")
    assert {c.upper for c in up.best} == {1.0}  # the upper bound cannot tell them apart
    vals = [c.mean + c.spread for c in ucb.best]
    assert vals == sorted(vals, reverse=True) and len(set(vals)) > len(vals) // 2
    assert ucb.chosen.mean == max(c.mean for c in ucb.best)  # ucb grows with the mean here


def test_mutation_changes_exactly_one_edge() -> None:
    sp, rng = SPACES["nb201"], random.Random(0)
    for _ in range(200):
        g = sp.sample(rng)
        child = sp.mutate(g, rng)
        assert sum(a != b for a, b in zip(cell_ops(g), cell_ops(child), strict=True)) == 1


def test_budget_larger_than_space_stops() -> None:
    class Tiny:
        name = "tiny"

        def check(self, target: Any) -> None:
            pass

        def sample(self, rng: random.Random) -> str:
            return rng.choice(["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                               "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|"])

        def mutate(self, g: str, rng: random.Random) -> str:
            return self.sample(rng)

        key = describe = staticmethod(lambda g: g)

        def query(self, g: str, target: Any) -> str:
            return g

    for strategy in (random_search, regularized_evolution):
        res = strategy(FunctionScorer(), Tiny(), dcn=0.5, budget=50, seed=0)
        assert res.queries == 2


def test_chain_space_builds_networks_for_the_target() -> None:
    f = FunctionScorer()
    res = regularized_evolution(f, "chain", dataset="digits", budget=40, seed=1, population=10,
                                sample_size=3)
    assert res.target.input_shape == (1, 8, 8) and res.target.num_classes == 10
    assert all(a.input_shape == (1, 8, 8) and a.num_classes == 10 for a in f.asked)
    assert res.chosen.genotype["space"] == "chain" and res.queries == 40


def test_bad_arguments_are_clear_errors() -> None:
    f = FunctionScorer()
    with pytest.raises(ValueError, match="exactly one"):
        random_search(f, "nb201", budget=10)
    with pytest.raises(ValueError, match="unknown search space"):
        random_search(f, "resnet50", dcn=0.5, budget=10)
    with pytest.raises(ValueError, match="budget"):
        random_search(f, "nb201", dcn=0.5, budget=0)
    with pytest.raises(ValueError, match="sample_size"):
        regularized_evolution(f, "nb201", dcn=0.5, budget=10, population=5, sample_size=9)
    with pytest.raises(ValueError, match="square"):
        random_search(f, "nb201", dcn=0.5, budget=10, input_shape=(3, 16, 32))
    with pytest.raises(ValueError, match="objective"):
        random_search(f, "nb201", dcn=0.5, budget=10, objective="median")
    with pytest.warns(DeprecationWarning, match="tapas.core.spaces.get_space"):
        assert get_search_space("nb201-small") is SPACES["nb201-small"]


# ------------------------------------------------------------------ real search loops
@pytest.fixture(scope="module")
def api(live_server: Any) -> Iterator[Client]:  # noqa: F811
    with Client(live_server.url, token=TOKEN, timeout=120, retries=2, backoff=0.1) as c:
        yield c


def test_search_loop_against_real_server(api: Client) -> None:
    """Regularized evolution whose every score comes over HTTP from the real service."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    ds = api.characterize(x=d.images[300:540].astype(np.float32), y=d.target[300:540],
                          name="digits-search")
    api.train_predictor(dataset=ds.name)
    res = regularized_evolution(api, "chain", dataset=ds.name, budget=40, seed=0,
                                population=10, sample_size=4, batch_size=6)
    assert res.queries == 40 and len(res.history) == 40
    assert res.target.dcn is None and res.target.dataset == "digits-search"
    assert res.target.input_shape == (1, 8, 8)
    c = res.chosen
    assert c.lower <= c.mean <= c.upper and 0.0 <= c.mean <= 1.0
    assert res.predictors and all(p.startswith("p_") for p in res.predictors)
    # the chosen network's score is what the service says for it when asked directly
    again = api.predict([SPACES["chain"].build(c.genotype, (1, 8, 8), 10)], dataset=ds.name)[0]
    assert again.arch_id == c.arch_id and again.mean == pytest.approx(c.mean)
    # same seed over HTTP: the same search
    res2 = regularized_evolution(api, "chain", dataset=ds.name, budget=40, seed=0,
                                 population=10, sample_size=4, batch_size=6)
    assert [x.arch_id for x in res2.best] == [x.arch_id for x in res.best]


def test_cli_search_over_http(api: Client, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tapas.app.cli.main import app

    out = tmp_path / "res.json"
    r = CliRunner().invoke(app, ["search", "--dcn", "0.6", "--space", "nb201", "--budget", "30",
                                 "--strategy", "random", "--url", api.url, "--token", TOKEN,
                                 "--out", str(out), "--json", "--top", "3"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout.strip().splitlines()[-1])
    assert obj == json.loads(out.read_text())
    assert obj["queries"] == 30 and len(obj["best"]) == 3 and obj["target"]["dcn"] == 0.6
    r = CliRunner().invoke(app, ["search", "--dcn", "0.6", "--budget", "20", "--url", api.url,
                                 "--top", "2", "--population", "8", "--sample-size", "3"])
    assert r.exit_code == 0, r.output
    assert "rea on nb201: best of 20 predictor queries (DCN 0.6000" in r.output
    assert "90% interval" in r.output or "interval" in r.output
    r = CliRunner().invoke(app, ["search", "--dataset", "nope", "--dcn", "0.5"])
    assert r.exit_code != 0 and "exactly one" in r.output


def test_local_scorer_search_in_process(tapas_home: Path, shared_data: Path) -> None:
    """The in-process scorer (pipeline + a small real database) drives the same loop."""
    from tapas.app.scorer import LocalScorer
    from tapas.core.config import get_settings
    from tests.tapas.nb201_lde import TINY, build_nb201_lde

    build_nb201_lde(shared_data, get_settings().database)
    with LocalScorer(predictor_params=TINY, min_experiments=100) as sc:
        info = sc.train_predictor(dcn=0.7)
        assert set(info.datasets) == {"cifar10", "cifar100"} and info.n_train == 300
        res = regularized_evolution(sc, "nb201", dcn=0.7, budget=60, seed=2, population=12,
                                    sample_size=4)
        assert res.queries == 60 and res.chosen.lower <= res.chosen.mean <= res.chosen.upper
        assert res.predictors == [info.id]
        again = sc.predict([res.chosen.genotype], dcn=0.7)[0]  # cell -> 10-class 32x32 net
        assert again.arch_id == res.chosen.arch_id and again.mean == pytest.approx(
            res.chosen.mean)
        chain = random_search(sc, "chain", dcn=0.7, budget=20, seed=0, input_shape=(3, 32, 32))
        assert chain.queries == 20 and chain.chosen.genotype["space"] == "chain"


def test_chain_genotypes_building_one_network_share_a_key() -> None:
    import random

    sp = SPACES["chain"]
    rng = random.Random(0)
    by_key: dict[str, set[str]] = {}
    genotypes = set()
    for _ in range(400):
        g = sp.sample(rng)
        genotypes.add(json.dumps(g, sort_keys=True))
        arch = sp.build(g, (1, 8, 8), 10)
        by_key.setdefault(sp.key(g), set()).add(arch.id)
    # one key, one network: keys never merge different networks ...
    assert all(len(ids) == 1 for ids in by_key.values())
    # ... and distinct genotypes that build the same network are merged (seed 0 has one)
    assert len(by_key) < len(genotypes)
