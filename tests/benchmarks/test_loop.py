"""``python -m benchmarks.loop``: bad input is one clear error; the baselines spend exactly
their trainings on distinct cells; a one-seed run gives the stable keys."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest


def test_bench_loop_refuses_bad_input_cleanly(tmp_path: Path) -> None:
    from benchmarks.loop import BenchError, run_benchmark

    with pytest.raises(BenchError, match="unknown target"):
        run_benchmark(targets=["mnist"])
    with pytest.raises(BenchError, match="must reach 50"):
        run_benchmark(train=2, rounds=3)
    with pytest.raises(BenchError, match="not found"):
        run_benchmark(data=tmp_path / "nb201.csv")


def test_bench_loop_baselines_spend_their_trainings(shared_data: Path) -> None:
    from benchmarks.loop import _bananas, _onehot, _random, _rea

    with (shared_data / "nb201.csv").open(newline="") as f:
        truth = {r["arch_str"]: float(r["cifar100_test"]) for r in csv.DictReader(f)}
    cells = sorted(truth)
    values = set(truth.values())
    for run in (_random(cells, truth, 20, 0), _rea(truth, 20, 0),
                _bananas(cells, _onehot(cells), truth, 5, 4, 0)):
        assert len(run) == 20 and set(run) <= values
    # BANANAS trains distinct cells: its accuracies are those of 20 different cells
    order = _bananas(cells, _onehot(cells), truth, 5, 4, 1)
    assert len(order) == 20


@pytest.mark.slow
def test_bench_loop_one_seed_gives_the_stable_keys(shared_data: Path) -> None:
    from benchmarks.loop import AT, BASELINES, run_benchmark

    res = run_benchmark(seeds=1, search_budget=30, targets=["ImageNet16-120"],
                        train_cells=150)
    p = res["per_dataset"]["ImageNet16-120"]
    assert set(p["regret_at"]) == set(p["best_at"]) == {str(n) for n in AT}
    assert set(p["baselines"]) == set(BASELINES)
    for n in AT:
        assert p["regret_at"][str(n)] == pytest.approx(p["optimum"] - p["best_at"][str(n)],
                                                       abs=1e-3)
        assert p["regret_at"][str(n)] >= 0
    assert [p["regret_at"][str(n)] for n in AT] == sorted(
        (p["regret_at"][str(n)] for n in AT), reverse=True)
