"""The lifelong loop end to end: real trainings (the experiment runner on a starter
dataset), a NAS-Bench-201 lookup oracle, resume and reuse through the LDE, bad input."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lde import Store
from tapas.app.cli.main import app as cli_app
from tapas.app.loop import (
    LookupTrainer,
    RunnerTrainer,
    check_loop,
    lifelong_search,
    nb201_table,
    stored_networks,
)
from tapas.app.scorer import LocalScorer
from tapas.core.spaces import get_space
from tests.tapas.nb201_lde import TINY, build_nb201_lde

runner = CliRunner()
STARTER = "digits?per_class=40"
TARGET = "ImageNet16-120"


def _loop_rows(store: Store, source_prefix: str = "tapas-loop:") -> list[dict[str, Any]]:
    t = store.sql("SELECT e.accuracy, e.curve, e.epochs, e.hparams, e.source, d.name AS ds "
                  "FROM experiments e JOIN datasets d ON d.id = e.dataset_id "
                  "WHERE starts_with(e.source, ?) ORDER BY e.seq", [source_prefix])
    return t.to_pylist()


# ---------------------------------------------------------------------------- real training
def test_a_real_loop_trains_into_the_lde_and_a_second_loop_reuses(tapas_home: Path) -> None:
    with LocalScorer() as scorer:  # the default database: the starter data and predictors
        trainer = RunnerTrainer(STARTER)
        res = lifelong_search(scorer, trainer, "chain", train=2, rounds=2, seed=0,
                              search_budget=40, population=10, sample_size=3)
        assert res.new == 4 and [t.round for t in res.trained] == [1, 1, 2, 2]
        assert len({json.dumps(t.genotype, sort_keys=True) for t in res.trained}) == 4
        rows = _loop_rows(scorer.store)
        assert len(rows) == 4  # every network trained, once, on the target, with its curve
        for row, t in zip(rows, res.trained, strict=True):
            assert row["ds"] == trainer.dataset == STARTER
            assert row["accuracy"] == pytest.approx(t.accuracy)
            assert len(row["curve"]) == row["epochs"] == 4
            assert row["curve"][-1] == pytest.approx(row["accuracy"])
            assert json.loads(row["hparams"])["genotype"] == t.genotype
        assert res.best_per_round[1:] == sorted(res.best_per_round[1:])
        assert res.best.accuracy == max(r["accuracy"] for r in rows)
        assert all(0.0 <= t.predicted <= 1.5 and 0.0 <= t.base <= 1.0 for t in res.trained)

        # a second loop on the same dataset: the four come back from the LDE, two are new
        again = lifelong_search(scorer, RunnerTrainer(STARTER), "chain", train=2, rounds=3,
                                seed=1, search_budget=40, population=10, sample_size=3)
        assert again.new == 2
        assert [t.reused for t in again.trained] == [True] * 4 + [False] * 2
        assert [t.genotype for t in again.trained[:4]] == [t.genotype for t in res.trained]
        assert len(_loop_rows(scorer.store)) == 6
        # nothing left to do: the same loop again trains nothing
        assert lifelong_search(scorer, RunnerTrainer(STARTER), "chain", train=2, rounds=3,
                               search_budget=40, population=10, sample_size=3).new == 0
        assert len(_loop_rows(scorer.store)) == 6


# ---------------------------------------------------------------------------- lookup oracle
@pytest.fixture()
def nb201_scorer(shared_data: Path, tapas_home: Path, tmp_path: Path) -> Any:
    """A small NB201 LDE (CIFAR-10/100) with ImageNet16-120 registered but left out."""
    db = build_nb201_lde(shared_data, tmp_path / "nb201.duckdb")
    store = Store(db)
    store.upsert_dataset(TARGET, None, None, 120, [3, 16, 16], dcn=0.286, source="test")
    scorer = LocalScorer(store, predictor_params=TINY, model_dir=tmp_path / "models")
    yield scorer
    scorer.close()
    store.close()


def _oracle(shared_data: Path, name: str = "nb201") -> LookupTrainer:
    return LookupTrainer(nb201_table(shared_data / "nb201.csv", TARGET), TARGET,
                         get_space("nb201"), name=name, epochs=200)


def test_a_lookup_loop_on_nb201_records_the_true_accuracies(nb201_scorer: Any,
                                                            shared_data: Path) -> None:
    oracle = _oracle(shared_data)
    res = lifelong_search(nb201_scorer, oracle, "nb201", train=5, rounds=3, seed=0,
                          search_budget=100)
    assert res.new == 15 and res.stop == "budget" and len(res.best_per_round) == 4
    assert len({t.genotype for t in res.trained}) == 15
    for t in res.trained:
        assert t.accuracy == pytest.approx(oracle.table[t.genotype])
    rows = _loop_rows(nb201_scorer.store)
    assert [json.loads(r["hparams"])["genotype"] for r in rows] == [t.genotype
                                                                     for t in res.trained]
    assert {r["ds"] for r in rows} == {TARGET} and all(r["epochs"] == 200 for r in rows)
    assert res.best_at(5) == max(t.accuracy for t in res.trained[:5])
    assert len(res.alphas) == 3 and math.isnan(res.alphas[0])  # round 1: nothing to fit
    assert all(a > 0 for a in res.alphas[1:])
    assert json.loads(json.dumps(res.to_dict()))["alphas"][0] is None
    assert res.best_per_round[-1] == res.best.accuracy
    # the correction learned from the trained networks: predictions moved off the base
    later = [t for t in res.trained if t.round > 1]
    assert any(abs(t.predicted - t.base) > 1e-6 for t in later)


class _Interrupted(Exception):
    pass


class _StopsAtRound:
    """The real lookup trainer, interrupted (as by Ctrl-C) when asked for its n-th batch."""

    def __init__(self, trainer: LookupTrainer, n: int) -> None:
        self.trainer, self.n, self.calls = trainer, n, 0
        self.dataset, self.signature = trainer.dataset, trainer.signature

    def job_key(self, genotype: Any) -> str:
        return self.trainer.job_key(genotype)

    def train(self, genotypes: Sequence[Any], store: Store, progress: Any = None) -> None:
        self.calls += 1
        if self.calls == self.n:
            raise _Interrupted
        self.trainer.train(genotypes, store, progress)


def test_an_interrupted_loop_resumes_from_the_lde(nb201_scorer: Any,
                                                  shared_data: Path) -> None:
    stopping = _StopsAtRound(_oracle(shared_data), 3)
    with pytest.raises(_Interrupted):
        lifelong_search(nb201_scorer, stopping, "nb201", train=4, rounds=4, seed=3,
                        search_budget=80)
    done = stored_networks(nb201_scorer.store, stopping, "nb201")
    assert len(done) == 8  # two rounds reached the LDE
    res = lifelong_search(nb201_scorer, _oracle(shared_data), "nb201", train=4, rounds=4,
                          seed=3, search_budget=80)
    assert res.new == 8 and [t.round for t in res.trained] == [0] * 8 + [1] * 4 + [2] * 4
    assert [t.genotype for t in res.trained[:8]] == [g for g, _ in done]
    assert len(_loop_rows(nb201_scorer.store)) == 16  # nothing trained twice
    # another trainer's networks (another table) are its own: no collision, no reuse
    other = lifelong_search(nb201_scorer, _oracle(shared_data, "nb201-copy"), "nb201",
                            train=4, rounds=1, seed=3, search_budget=80)
    assert other.new == 4 and len(_loop_rows(nb201_scorer.store)) == 20


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("train", "rounds", "what"), [
    (0, 3, "train must be a positive"), (-1, 3, "train must be a positive"),
    (2, 0, "rounds must be a positive"), (2.5, 3, "train must be a positive"),
    (15_626, 1, "exceeds the nb201 space, which holds 15625"),
    (5_000, 4, "train x rounds (5000 x 4 = 20000 networks) exceeds the nb201 space")])
def test_bad_loop_arguments_are_named(train: Any, rounds: Any, what: str) -> None:
    with pytest.raises(ValueError, match=None) as e:
        check_loop(train, rounds, get_space("nb201"))
    assert what in str(e.value)


def test_the_loop_checks_before_any_work(nb201_scorer: Any, shared_data: Path) -> None:
    for kw, what in (({"train": 0, "rounds": 1}, "train must be"),
                     ({"train": 2, "rounds": 1, "strategy": "nope"}, "strategy must be"),
                     ({"train": 20, "rounds": 1, "search_budget": 10}, "search_budget")):
        with pytest.raises(ValueError, match=what):
            lifelong_search(nb201_scorer, _oracle(shared_data), "nb201", **kw)
    assert _loop_rows(nb201_scorer.store) == []
    assert nb201_scorer.store.predictors() == []  # failed before training a predictor


def test_the_runner_trainer_names_a_dataset_it_cannot_load() -> None:
    with pytest.raises(ValueError, match="no-such-dataset"):
        RunnerTrainer("no-such-dataset")


# ---------------------------------------------------------------------------- the CLI
def test_cli_search_train_runs_the_loop(tapas_home: Path) -> None:
    r = runner.invoke(cli_app, ["search", "--dataset", STARTER, "--space", "chain",
                                "--train", "2", "--rounds", "1", "--budget", "30",
                                "--population", "10", "--sample-size", "3", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["new"] == 2 and d["dataset"] == STARTER and len(d["trained"]) == 2
    assert d["best"]["accuracy"] == max(t["accuracy"] for t in d["trained"])
    assert d["best_per_round"][0] is None and d["best_per_round"][1] == d["best"]["accuracy"]


@pytest.mark.parametrize(("args", "what"), [
    (["--dataset", STARTER, "--train", "0"], "train must be a positive"),
    (["--dataset", STARTER, "--train", "2", "--rounds", "0"], "rounds must be a positive"),
    (["--dataset", STARTER, "--rounds", "2"], "give --train K"),
    (["--dcn", "0.5", "--train", "2"], "--train needs --dataset"),
    (["--dataset", STARTER, "--train", "15626"], "exceeds the nb201 space"),
    (["--dataset", STARTER, "--train", "2", "--url", "http://127.0.0.1:9"],
     "runs in process")])
def test_cli_loop_bad_input(tapas_home: Path, args: list[str], what: str) -> None:
    r = runner.invoke(cli_app, ["search", *args])
    assert r.exit_code != 0
    assert what in r.output, r.output
    assert "Traceback" not in r.output


@pytest.mark.slow
def test_cli_search_train_with_a_lookup_table(tapas_home: Path, shared_data: Path) -> None:
    table = nb201_table(shared_data / "nb201.csv", "cifar10")
    r = runner.invoke(cli_app, ["search", "--dataset", "cifar10", "--train", "3", "--rounds",
                                "2", "--budget", "30", "--lookup",
                                str(shared_data / "nb201.csv"), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["new"] == 6 and d["trainer"].startswith("lookup:")
    for t in d["trained"]:
        assert t["accuracy"] == pytest.approx(table[t["genotype"]])
    bad = runner.invoke(cli_app, ["search", "--dataset", "cifar10", "--space", "chain",
                                  "--train", "3", "--lookup", str(shared_data / "nb201.csv")])
    assert bad.exit_code != 0 and "use --space nb201" in bad.output
