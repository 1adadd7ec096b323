"""Adapters: the NASLib-style predictor on real NAS-Bench-201 results, and the Optuna
ask-and-tell example driven by the real (in-process) predictor."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tapas.app.adapters.naslib import (
    TapasNASLibPredictor,
    cell_to_op_indices,
    op_indices_to_cell,
    to_cell,
)
from tapas.core.arch import all_cells

CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")


def test_naslib_op_indices_round_trip() -> None:
    # NASLib: ops (skip, none, conv3, conv1, avgpool), edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4)
    idx = cell_to_op_indices(CELL)
    assert idx == (2, 2, 0, 4, 2, 0)
    assert op_indices_to_cell(idx) == CELL
    for cell in all_cells()[::311]:
        assert op_indices_to_cell(cell_to_op_indices(cell)) == cell

    class Graph:  # what NASLib's NasBench201SearchSpace offers
        def get_op_indices(self) -> list[int]:
            return list(idx)

    assert to_cell(Graph()) == to_cell(np.array(idx)) == CELL
    with pytest.raises(ValueError, match="six op indices"):
        op_indices_to_cell([0, 1, 2])
    with pytest.raises(TypeError, match="get_op_indices"):
        to_cell(3.5)


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """One torch thread: on a busy 2-core machine two threads are several times slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.slow
def test_naslib_predictor_fit_query_ranks_real_cells(shared_data: Path, one_thread: None
                                                     ) -> None:
    with (shared_data / "nb201.csv").open() as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(rows))
    train, test = [rows[i] for i in idx[:150]], [rows[i] for i in idx[200:400]]
    pred = TapasNASLibPredictor(hparams={"hidden_size": 16, "epochs": 10, "n_members": 2,
                                         "device": "cpu"})
    assert pred.get_data_reqs()["requires_partial_lc"] is False
    # NASLib hands over op indices and percent accuracies
    xtrain = [cell_to_op_indices(r["arch_str"]) for r in train]
    ytrain = [float(r["cifar10_test"]) for r in train]
    assert pred.fit(xtrain, ytrain) is pred
    yq = pred.query([r["arch_str"] for r in test])
    truth = np.array([float(r["cifar10_test"]) for r in test])
    assert yq.shape == (200,) and yq.min() >= 0 and yq.max() <= 100
    assert yq.mean() > 20  # answered in percent, as trained
    from scipy.stats import kendalltau

    tau = kendalltau(yq, truth).statistic
    assert tau > 0.3, tau  # 150 labelled cells, a tiny model: clearly better than chance
    with pytest.raises(ValueError, match="two labelled"):
        TapasNASLibPredictor().fit([CELL], [90.0])
    with pytest.raises(RuntimeError, match="fit"):
        TapasNASLibPredictor().query([CELL])


@pytest.fixture()
def local_scorer(tapas_home: Path, shared_data: Path) -> Iterator[Any]:
    """The in-process scorer over a small real LDE (NAS-Bench-201 cells, two datasets)."""
    from tapas.app.scorer import LocalScorer
    from tapas.core.config import get_settings
    from tests.tapas.nb201_lde import TINY, build_nb201_lde

    build_nb201_lde(shared_data, get_settings().database)
    with LocalScorer(predictor_params=TINY, min_experiments=100) as sc:
        yield sc


@pytest.mark.slow
def test_naslib_predictor_zero_shot_through_scorer(local_scorer: Any) -> None:
    sc, dcn = local_scorer, 0.7
    pred = TapasNASLibPredictor(dcn=dcn, scorer=sc, num_classes=100)
    y = pred.query([CELL, cell_to_op_indices(CELL), all_cells()[7]])
    direct = sc.predict([CELL, all_cells()[7]], dcn=dcn, num_classes=100)
    assert y[0] == pytest.approx(y[1]) == pytest.approx(100 * direct[0].mean)
    assert y[2] == pytest.approx(100 * direct[1].mean)


def test_optuna_ask_and_tell_with_the_predictor(local_scorer: Any) -> None:
    optuna = pytest.importorskip("optuna")
    from tapas.app.adapters.optuna_example import search

    sc, dcn = local_scorer, 0.7
    study = search(sc, dcn=dcn, n_trials=40, batch=10, seed=0)
    assert len(study.trials) == 40
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    best = study.best_trial
    again = sc.predict([best.user_attrs["cell"]], dcn=dcn)[0]
    assert best.value == pytest.approx(again.mean)
    assert best.user_attrs["lower"] <= best.value <= best.user_attrs["upper"]
    assert best.value == max(t.value for t in study.trials)
