"""The families preset (issue 34): DARTS, NAS-Bench-101, NAS-Bench-Macro and ResNet
families scaled down for the starter datasets, and their plan."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tapas.app.experiments import Job, run_job
from tapas.app.experiments.plan import (
    FAMILIES,
    FAMILIES_DATASETS,
    FAMILIES_NOISE_NETWORKS,
    FAMILIES_NOISE_SEEDS,
    FAMILIES_SEEDS,
    FAMILIES_SOURCE,
    FAMILY_NETWORKS,
    STARTER_V2_RECIPE,
    Family,
    families_plan,
)
from tapas.core import spaces

TINY = "mnist5k?per_class=20&resize=16"  # 200 images, 16x16: one epoch in well under a second


@pytest.fixture(scope="module")
def plan():  # noqa: ANN201
    return families_plan()


def test_every_family_has_its_networks_on_every_dataset_with_its_seeds(plan) -> None:  # noqa: ANN001
    shapes = {tuple(v["input_shape"]) for v in plan.datasets.values()}
    assert {(1, 16, 16), (1, 28, 28), (3, 32, 32)} <= shapes and len(plan.datasets) >= 6
    per_family: dict[str, set[str]] = {}
    pairs: Counter[tuple[str, str]] = Counter()
    for j in plan.jobs:
        assert j.source == FAMILIES_SOURCE and j.recipe == STARTER_V2_RECIPE
        per_family.setdefault(j.tags["family"], set()).add(spaces.genotype_key(j.genotype))
        pairs[(spaces.genotype_key(j.genotype), j.dataset)] += 1
    assert {f: len(g) for f, g in per_family.items()} == dict.fromkeys(FAMILIES, FAMILY_NETWORKS)
    assert len(pairs) == len(FAMILIES) * FAMILY_NETWORKS * len(FAMILIES_DATASETS)
    noisy = len(FAMILIES) * FAMILIES_NOISE_NETWORKS * len(FAMILIES_DATASETS)
    assert Counter(pairs.values()) == {len(FAMILIES_SEEDS) + len(FAMILIES_NOISE_SEEDS): noisy,
                                       len(FAMILIES_SEEDS): len(pairs) - noisy}
    assert len(plan.jobs) == len(set(j.key for j in plan.jobs))
    # a (network, dataset)'s seeds come together, and the families take turns
    first = plan.jobs[:4 * len(FAMILIES) * len(FAMILIES_DATASETS)]
    assert [j.tags["family"] for j in first[::4 * len(FAMILIES_DATASETS)]] == list(FAMILIES)
    assert [j.seed for j in first[:4]] == [*FAMILIES_SEEDS, *FAMILIES_NOISE_SEEDS]


def test_the_plan_is_deterministic(plan) -> None:  # noqa: ANN001
    assert [j.key for j in families_plan().jobs] == [j.key for j in plan.jobs]


def test_every_network_builds_at_its_datasets_shape(plan) -> None:  # noqa: ANN001
    seen = set()
    for j in plan.jobs:
        k = (spaces.genotype_key(j.genotype), j.dataset)
        if k in seen:
            continue
        seen.add(k)
        info = plan.datasets[j.dataset]
        arch = spaces.build(j.genotype, tuple(info["input_shape"]), info["num_classes"])
        assert arch.output_shape == (info["num_classes"],)


def test_family_sizes_are_in_the_genotypes() -> None:
    darts = FAMILIES["darts"].sample(3, 0)
    assert all(g["C"] == FAMILIES["darts"].size["C"] for g in darts)
    assert spaces.template_of(darts[0]) != spaces.template_of({**darts[0], "C": 16})
    with pytest.raises(ValueError, match="does not fit"):
        families_plan({"nb101": Family("nb101-small")}, networks=1,
                      datasets=["mnist5k?per_class=20&downsample=4"])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_trains(family: str) -> None:
    g = FAMILIES[family].sample(1, 3)[0]
    t0 = time.process_time()
    r = run_job(Job(genotype=g, dataset=TINY, recipe={**STARTER_V2_RECIPE, "epochs": 1}))
    assert 0.0 <= r["accuracy"] <= 1.0 and len(r["curve"]) == 1
    assert r["hparams"]["space"] == FAMILIES[family].space
    assert time.process_time() - t0 < 5.0
