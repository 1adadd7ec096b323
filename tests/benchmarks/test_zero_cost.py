"""The zero-cost proxies as baselines of the starter bench (``benchmarks.zero_cost``)."""

from __future__ import annotations

import numpy as np
import pytest

from probenet import load_dataset
from probenet.zero_cost import PROXIES, score_archs


def test_zero_cost_baselines_score_the_rows_scenario_c_scores() -> None:
    from benchmarks.zero_cost import zero_cost_baselines
    from predictor.metrics import kendall
    from predictor.table import Table
    from tapas.core import spaces

    names = {"a": "digits?per_class=20", "b": "digits?per_class=20&label_noise=0.3"}
    genos = spaces.sample_unique("chain", 5, seed=4)
    rows, dsets, accs = [], [], []
    rng = np.random.default_rng(0)
    for key, spec in names.items():
        ds = load_dataset(spec)
        archs = [spaces.build(g, ds.input_shape, ds.num_classes) for g in genos]
        archs.append(archs[0])  # a second seed of the first network: scored once
        rows += archs
        dsets += [key] * len(archs)
        accs += rng.uniform(0.1, 0.9, len(archs)).tolist()
    table = Table(rows, dsets, [0.9] * 6 + [0.5] * 6, accs)
    table.reference[0] = True  # a reference row is never scored
    table.dataset_names = names  # type: ignore[attr-defined]
    got = zero_cost_baselines(table, ["a", "b"], {"a": 0.8})
    assert set(got) == set(PROXIES)
    for key, spec, idx in (("a", names["a"], np.arange(1, 6)), ("b", names["b"], np.arange(6, 12))):
        s = score_archs([rows[i] for i in idx], load_dataset(spec))
        for p in PROXIES:
            assert got[p]["scenario_c_kendall"][key] == pytest.approx(
                kendall(s[p], np.asarray(accs)[idx]))
    snip = got["snip"]
    assert snip["scenario_c_kendall_mean"] == pytest.approx(
        np.mean(list(snip["scenario_c_kendall"].values())))
    assert snip["scenario_c_fraction_of_ceiling"] == pytest.approx(
        snip["scenario_c_kendall"]["a"] / 0.8)
    assert snip["scenario_c_mae_mean"] is None
    del table.dataset_names["b"]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="need its images"):
        zero_cost_baselines(table, ["b"], {})


def test_the_starter_bench_reports_the_proxies_beside_the_other_baselines() -> None:
    from benchmarks.predictor import SCENARIO_KEYS, run_benchmark
    from predictor.table import Table
    from tapas.core import spaces

    names = {"a": "digits?per_class=20", "b": "digits?per_class=20&label_noise=0.3",
             "c": "digits?per_class=30"}
    genos = spaces.sample_unique("chain", 8, seed=5)
    rows, dsets, dcns, accs = [], [], [], []
    rng = np.random.default_rng(1)
    for (key, spec), dcn in zip(names.items(), (0.9, 0.5, 0.95), strict=True):
        ds = load_dataset(spec)
        rows += [spaces.build(g, ds.input_shape, ds.num_classes) for g in genos]
        dsets += [key] * len(genos)
        dcns += [dcn] * len(genos)
        accs += rng.uniform(0.1, 0.9, len(genos)).tolist()
    table = Table(rows, dsets, dcns, accs)
    table.dataset_names = names  # type: ignore[attr-defined]
    table.noise_ceiling = {"a": 0.7, "b": 0.6, "c": 0.8}  # type: ignore[attr-defined]
    rep = run_benchmark("starter", table=table, scenarios="C", tap_kwargs={"epochs": 1})
    for p in PROXIES:
        zc = rep["baselines"][p]
        assert set(zc["scenario_c_kendall"]) == set(names)
        assert set(SCENARIO_KEYS.values()) <= set(zc)
        assert -1.0 <= zc["scenario_c_kendall_mean"] <= 1.0
    # a table without dataset specs (NAS-Bench-201's) gets no computed proxies
    del table.dataset_names  # type: ignore[attr-defined]
    rep = run_benchmark("starter", table=table, scenarios="C", tap_kwargs={"epochs": 1})
    assert not set(PROXIES) & set(rep["baselines"])
