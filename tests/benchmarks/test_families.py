"""The families status bench reads a generation's database: runs, labels and taus."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import benchmarks.families as fam_bench
from lde import Store
from tapas.app.experiments import ensure_datasets, run_jobs
from tapas.app.experiments.plan import FAMILIES, FAMILIES_DATASETS, families_plan
from tests.benchmarks.conftest import bench

TINY = "digits?per_class=30"  # 8x8: a ResNet run takes about a second


@pytest.mark.slow  # 12 trainings: 17 s on the shared machine
def test_status_counts_a_family_s_runs_labels_and_seed_agreement(tmp_path: Path) -> None:
    plan = families_plan({"resnet": FAMILIES["resnet"]}, networks=3, datasets=[TINY])
    jobs = [replace(j, recipe={**j.recipe, "epochs": 2}) for j in plan.jobs]
    db = tmp_path / "gen.duckdb"
    with Store(db) as store:
        ensure_datasets(store, [TINY], dcn=False)
        assert run_jobs(jobs, store).trained == len(jobs) == 12  # 3 networks, seeds 0-3
    res = bench(fam_bench, str(db), "--min-networks", "3")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert set(out) == set(FAMILIES)
    assert out["resnet"]["runs"] == 12
    assert out["resnet"]["labels_per_dataset"] == 3 / len(FAMILIES_DATASETS)
    assert -1 <= out["resnet"]["seed_to_seed_kendall"] <= 1
    assert -1 <= out["resnet"]["label_kendall"] <= 1 and out["resnet"]["label_kendall_seeds"] == 2
    default = fam_bench.status(db)["resnet"]  # fewer than 20 networks: no tau
    assert default["seed_to_seed_kendall"] is None and default["label_kendall"] is None
    assert out["darts"]["runs"] == 0
