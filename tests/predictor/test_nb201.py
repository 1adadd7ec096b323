"""A small real fit on NAS-Bench-201 rows, and the evaluation harness end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from predictor import TAPRegressor
from predictor.baselines import ParamsBaseline
from predictor.evaluate import (
    REFERENCE_CELL,
    adaptive_filter,
    load_nb201,
    scenario_a,
    scenario_c,
)
from predictor.metrics import kendall


@pytest.mark.slow
def test_tap_beats_params_on_real_nb201_rows(shared_data: Path) -> None:
    table = load_nb201(shared_data, datasets=("cifar100",), limit=500)
    assert table.reference.sum() == 1 and table.names[0] == REFERENCE_CELL
    assert 0.0 < table.dcns[0] < 1.0 and (table.accuracies <= 1).all()
    models = {"tap": lambda: TAPRegressor(hidden_size=16, embed_size=16, epochs=15,
                                          n_members=2, device="cpu"),
              "params": ParamsBaseline}
    res = {r.model: r for r in scenario_a(table, "cifar100", models, n_train=250)}
    assert res["tap"].n_test == 500 - 250
    tau_tap, tau_params = res["tap"].metrics["kendall"], res["params"].metrics["kendall"]
    assert tau_tap > tau_params + 0.05, (tau_tap, tau_params)
    assert 0.5 < res["tap"].metrics["coverage"] <= 1.0


def test_scenario_c_leaves_the_target_out(shared_data: Path) -> None:
    table = load_nb201(shared_data, limit=60)
    res = scenario_c(table, "imagenet16", {"params": ParamsBaseline}, min_rows=10)
    assert "imagenet16" not in res[0].train_datasets
    assert res[0].train_datasets == ["cifar100"]  # nearest DCN to ImageNet16-120
    assert res[0].n_test == 60


def test_adaptive_filter_widens_tau() -> None:
    dcn = {"a": 0.50, "b": 0.58, "c": 0.90}
    counts = {"a": 10, "b": 10, "c": 10}
    assert adaptive_filter(dcn, 0.52, counts, tau=0.05, min_rows=5) == (["a"], 0.05)
    keep, tau = adaptive_filter(dcn, 0.52, counts, tau=0.05, min_rows=15)
    assert keep == ["a", "b"] and tau == 0.1
    keep, _ = adaptive_filter(dcn, 0.52, counts, tau=0.05, min_rows=5, min_datasets=3)
    assert keep == ["a", "b", "c"]
    assert np.isclose(tau, 0.1)


def test_kendall_agrees_with_a_known_value() -> None:
    assert kendall([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert kendall([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0


def test_zero_cost_table_reads_the_published_file(shared_data: Path) -> None:
    from predictor.evaluate import zero_cost_kendall

    table = load_nb201(shared_data, limit=400)
    z = zero_cost_kendall(shared_data, table, [])
    assert set(z) == {"cifar10", "cifar100", "imagenet16"}
    for ds, res in z.items():
        assert res["n_cells"] > 0, ds
        assert all(-1.0 <= v <= 1.0 for k, v in res.items() if k != "n_cells")
