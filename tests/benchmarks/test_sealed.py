"""The sealed-suite bench on a tiny generated suite: a real sealed database (the preset's
jobs, really trained for one epoch), real DCNs, and a fresh default LDE per dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import benchmarks.predictor as predictor_bench
import benchmarks.sealed as sealed_bench
from lde import Store
from probenet.datasets import load_dataset
from probenet.dcn import compute_dcn
from tapas.app.experiments import ensure_datasets, run_jobs
from tapas.app.experiments.plan import SEALED_RECIPE, sealed_plan
from tests.benchmarks.conftest import bench

SMALL = {"hidden_size": 8, "embed_size": 8, "epochs": 2, "n_members": 2, "device": "cpu"}
LABELLED = "digits?per_class=20&rotate=40"  # 8x8: a one-epoch run in a fraction of a second
HALF = "mnist1d64?per_class=20"  # only seed 0 here: no complete label, so not scored


def test_missing_or_empty_database_is_a_clear_error(tmp_path: Path) -> None:
    res = bench(sealed_bench, "--db", str(tmp_path / "none.duckdb"))
    assert res.exit_code == 1 and "no sealed database" in res.output
    assert "--preset sealed" in res.output
    Store(tmp_path / "empty.duckdb").close()
    res = bench(sealed_bench, "--db", str(tmp_path / "empty.duckdb"))
    assert res.exit_code == 1 and "holds no sealed runs" in res.output


def test_predictor_bench_hands_the_sealed_suite_over(tmp_path: Path) -> None:
    res = bench(predictor_bench, "--suite", "sealed")
    assert res.exit_code == 1 and "--suite sealed needs --db" in res.output
    res = bench(predictor_bench, "--suite", "sealed", "--db", str(tmp_path / "none.duckdb"))
    assert res.exit_code == 1 and "no sealed database" in res.output


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    plan = sealed_plan((LABELLED, HALF), {"chain": 20}, noise_networks=0,
                       recipe={**SEALED_RECIPE, "epochs": 1})
    jobs = [j for j in plan.jobs if j.dataset == LABELLED or j.seed == 0]
    db = tmp_path_factory.mktemp("sealed") / "sealed.duckdb"
    with Store(db) as store:
        ids = ensure_datasets(store, plan.datasets, dcn=False)
        for spec, i in ids.items():  # a real probe, on a small budget
            store.set_dcn(i, compute_dcn(load_dataset(spec), epochs=1, max_steps=20).dcn)
        assert run_jobs(jobs, store).trained == len(jobs) == 60
    return db


@pytest.mark.slow  # 60 one-epoch trainings and one small predictor: about a minute
def test_bench_scores_the_labelled_datasets_as_production_does(
        tiny_suite: Path, small_trainings: None) -> None:
    rep = sealed_bench.run_sealed(tiny_suite, predictor_params=SMALL)
    json.dumps(rep)
    assert rep["suite"] == "sealed" and set(rep["datasets"]) == {LABELLED}
    assert rep["coverage"]["runs"] == 60 and rep["coverage"]["networks"] == 20
    assert rep["coverage"]["labels"] == {LABELLED: 20}
    assert rep["coverage"]["skipped"][HALF].startswith("0 networks with a complete label")
    r = rep["datasets"][LABELLED]
    assert r["n_networks"] == 20 and set(r["kendall"]) == {
        "tap", "gbr", "history", "params", "tap_lstm", "tap_trees", "tap_fixed", "tap_stack"}
    assert r["kendall"]["tap_stack"] == r["kendall"]["tap"]  # the parts come from TAP's fit
    assert all(-1.0 <= v <= 1.0 for v in r["kendall"].values())
    assert r["kendall"]["tap"] != 0.0  # a real ranking, not a constant
    assert r["history_known"] == 0.0 and r["kendall"]["history"] == 0.0  # new networks
    assert 0.0 <= r["coverage_90"] <= 1.0 and r["interval_width_median"] > 0
    assert -1.0 <= rep["spread_error_spearman"] == r["spread_error_spearman"] <= 1.0
    assert r["predictor"]["same_selection"] and r["predictor"]["datasets"] >= 2, r["predictor"]
    assert r["noise_ceiling_seeds"] == 1 and -1.0 <= r["noise_ceiling"] <= 1.0
    assert rep["kendall_mean"] == r["kendall"]
    assert rep["noise_ceiling_mean"] == r["noise_ceiling"]
    with pytest.raises(ValueError, match="no sealed dataset has 21 networks"):
        sealed_bench.run_sealed(tiny_suite, predictor_params=SMALL, min_networks=21)
