"""The seed-noise bench: re-trains starter networks with two seeds under a candidate
recipe and reports their Kendall tau beside the shipped data's."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarks.seed_noise import parse_dataset, run
from lde.starter import seed_to_seed_kendall
from tapas.app.experiments import run_job
from tapas.app.experiments.plan import starter_noise_plan

BASE = "digits?per_class=40"
VARIANT = "mnist5k?per_class=75&downsample=4 -> mnist5k?per_class=200&downsample=4@0.75"


def test_parse_dataset() -> None:
    assert parse_dataset(BASE) == (BASE, None, None)
    assert parse_dataset(VARIANT) == ("mnist5k?per_class=75&downsample=4",
                                      "mnist5k?per_class=200&downsample=4", 0.75)
    for bad in (f"{BASE} -> x@1.5", f"{BASE} -> x", f"{BASE} -> @0.5"):
        with pytest.raises(ValueError):
            parse_dataset(bad)


def test_run_trains_both_seeds_of_the_planned_networks() -> None:
    out = run([BASE, VARIANT], {"epochs": 2}, networks=4, workers=0)
    assert out["runs"] == 16 and out["recipe"] == {"epochs": 2}
    rows = {r["dataset"]: r for r in out["per_dataset"]}
    assert rows[BASE]["variant"] is None and rows[BASE]["shipped"] == pytest.approx(0.7255)
    assert rows["mnist5k?per_class=75&downsample=4"]["test_fraction"] == 0.75
    for r in rows.values():
        tau = r["seed_to_seed_kendall"]
        assert tau != tau or -1.0 <= tau <= 1.0  # NaN when one seed ties every network
    # the networks are the plan's first four, each trained with seeds 0 and 1
    jobs = [j for j in starter_noise_plan(4, seeds=(0,)).jobs if j.dataset == BASE]
    pairs = [(BASE, *(run_job(replace(j, recipe=dict(j.recipe, epochs=2), seed=s))["accuracy"]
                      for s in (0, 1))) for j in jobs]
    want = seed_to_seed_kendall(pairs)[BASE]
    got = rows[BASE]["seed_to_seed_kendall"]
    assert got == want or (got != got and want != want)


def test_unknown_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match="not starter datasets"):
        run(["digits?per_class=41"], {}, networks=2, workers=0)
    with pytest.raises(ValueError, match="at least 2 networks"):
        run([BASE], {}, networks=1, workers=0)
    with pytest.raises(ValueError, match="epoch"):
        run([BASE], {"epoch": 2}, networks=2, workers=0)


def test_averaged_labels_pair_even_seeds_with_odd_ones() -> None:
    out = run([BASE], {"epochs": 1}, networks=4, workers=0, seeds=2)
    assert out["runs"] == 16 and out["seeds"] == 4
    row = out["per_dataset"][0]
    jobs = [j for j in starter_noise_plan(4, seeds=(0,)).jobs if j.dataset == BASE]
    acc = [[run_job(replace(j, recipe=dict(j.recipe, epochs=1), seed=s))["accuracy"]
            for s in range(4)] for j in jobs]
    want = {1: seed_to_seed_kendall([(BASE, a[0], a[1]) for a in acc])[BASE],
            2: seed_to_seed_kendall([(BASE, (a[0] + a[2]) / 2, (a[1] + a[3]) / 2)
                                     for a in acc])[BASE]}
    for k in (1, 2):
        got = row["averaged_kendall"][k]
        assert got == want[k] or (got != got and want[k] != want[k])
    assert row["seed_to_seed_kendall"] is row["averaged_kendall"][1]


def test_cli_needs_datasets_or_all() -> None:
    from benchmarks.seed_noise import main

    for argv in ([], ["--all", BASE]):
        with pytest.raises(SystemExit):
            main(argv)
    with pytest.raises(ValueError, match="at least 1"):
        run([BASE], {}, networks=2, workers=0, seeds=0)
