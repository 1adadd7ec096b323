"""A small real fit on NAS-Bench-201 rows, and the evaluation harness end to end."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest

from benchmarks.baselines import ParamsBaseline
from benchmarks.evaluate import scenario_a, scenario_c, scenario_n
from lde.selection import select_adaptive
from predictor import TAPRegressor
from predictor.metrics import kendall
from predictor.table import load_nb201
from tapas.core.arch import REFERENCE_CELL


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
    one = partial(select_adaptive, min_experiments=10, min_datasets=1)
    res = scenario_c(table, "imagenet16", {"params": ParamsBaseline}, one)
    assert "imagenet16" not in res[0].train_datasets
    assert res[0].train_datasets == ["cifar100"]  # nearest DCN to ImageNet16-120
    assert res[0].n_test == 60


def _spy(seen: dict[str, Any]) -> type[ParamsBaseline]:
    """A baseline that records what scenario C or N trains it on into ``seen``."""

    class Spy(ParamsBaseline):
        def fit(self, archs, dcns, accuracies, curves=None, groups=None,  # noqa: ANN001
                history=None):  # noqa: ANN001
            seen["archs"], seen["groups"], seen["history"] = list(archs), list(groups), history
            return super().fit(archs, dcns, accuracies)

    return Spy


def test_scenario_c_history_never_holds_the_target(shared_data: Path) -> None:
    """TAP's history features in scenario C come from the other datasets only."""
    table = load_nb201(shared_data, limit=80)
    seen: dict[str, Any] = {}
    scenario_c(table, "cifar10", {"spy": _spy(seen)}, select_adaptive)
    assert sorted(set(seen["groups"])) == ["cifar100", "imagenet16"]
    assert sorted(seen["history"].groups) == ["cifar100", "imagenet16"]
    # every cifar10 cell is known to the history through the other two datasets only
    rows = seen["history"].rows([a for a, d in zip(table.archs, table.datasets,
                                                   strict=True) if d == "cifar10"])
    assert (rows >= 0).all()


def test_scenario_n_scores_families_the_lde_holds_nowhere(shared_data: Path) -> None:
    """Scenario N: the scored families are absent from training and from history."""
    from predictor.history import family_key

    table = load_nb201(shared_data, limit=80)
    seen: dict[str, Any] = {}
    spy = _spy(seen)
    res = scenario_n(table, "cifar10", {"spy": spy}, select_adaptive, share=0.5)[0]
    scored = {family_key(table.archs[i]) for i in res.test_index}
    assert res.scenario == "N" and res.n_test == len(scored) == 40  # 80 cells, reference out
    assert not scored & {family_key(a) for a in seen["archs"]}
    assert (seen["history"].rows([table.archs[i] for i in res.test_index]) < 0).all()
    assert sorted(seen["history"].groups) == ["cifar100", "imagenet16"]
    with pytest.raises(ValueError, match="share"):
        scenario_n(table, "cifar10", {"spy": spy}, select_adaptive, share=1.0)


def test_kendall_agrees_with_a_known_value() -> None:
    assert kendall([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert kendall([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0


def test_zero_cost_table_reads_the_published_file(shared_data: Path) -> None:
    from benchmarks.evaluate import zero_cost_kendall

    table = load_nb201(shared_data, limit=400)
    z = zero_cost_kendall(shared_data, table, [])
    assert set(z) == {"cifar10", "cifar100", "imagenet16"}
    for ds, res in z.items():
        assert res["n_cells"] > 0, ds
        assert all(-1.0 <= v <= 1.0 for k, v in res.items() if k != "n_cells")


def test_tap_parts_are_scored_beside_it(shared_data: Path) -> None:
    """Scenario C reports TAP's parts alone from the same fit (issue 39's stack)."""
    table = load_nb201(shared_data, limit=60)
    two = partial(select_adaptive, min_experiments=10, min_datasets=2)
    small = partial(TAPRegressor, hidden_size=8, embed_size=8, epochs=2, n_members=2,
                    device="cpu")
    (res,) = scenario_c(table, "imagenet16", {"tap": small}, two)
    assert len(res.train_datasets) == 2
    parts = {k: v for k, v in res.metrics.items() if k.startswith("kendall_")}
    assert set(parts) == {"kendall_lstm", "kendall_trees", "kendall_fixed", "kendall_stack"}
    assert parts["kendall_stack"] == res.metrics["kendall"]
    assert -1.0 <= res.metrics["spread_error_spearman"] <= 1.0
