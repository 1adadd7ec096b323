"""The shipped starter LDE: its data card matches the Parquet, it meets the issue's
requirements, and it seeds a fresh database."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lde import Store
from lde.starter import (
    STARTER_DIR,
    STARTER_SOURCE,
    STARTER_V2_SOURCE,
    available,
    card_stats,
    label_kendall,
    render_stats_block,
    seed_starter,
    seed_to_seed_kendall,
    starter_stats,
)


@pytest.fixture(scope="module")
def stats() -> dict:
    if not available():
        pytest.fail(f"starter data missing from {STARTER_DIR}")
    return starter_stats()


def test_data_card_numbers_match_the_parquet(stats: dict) -> None:
    card = card_stats()
    assert card == stats  # counts, DCN spread, per-dataset rows: all recomputed from Parquet


def test_starter_meets_the_requirements(stats: dict) -> None:
    assert stats["experiments"] >= 4000
    assert stats["datasets"] >= 16
    assert stats["dcn_span"] >= 0.5
    from tapas.app.experiments.plan import STARTER_V2_DATASETS

    for d in stats["per_dataset"]:  # v1: 8 datasets per network; v2: 60 networks on all 7
        assert d["families"] >= (60 if d["name"] in STARTER_V2_DATASETS else 150), d["name"]
    assert stats["min_families_per_dataset"] >= 60
    assert stats["families_on_8_or_more_datasets"] >= 300
    assert stats["parquet_bytes"] < 25 * 2**20
    assert stats["experiments_with_curves"] == stats["experiments"]
    assert stats["sources"] == [STARTER_SOURCE, STARTER_V2_SOURCE]
    assert stats["datasets"] >= 24  # the issue-13 target: probe-characterised datasets
    assert 0.0 <= stats["accuracy_min"] <= stats["accuracy_max"] <= 1.0
    total = sum(d["experiments"] for d in stats["per_dataset"])
    assert total == stats["experiments"]
    assert sum(stats["per_space"].values()) == stats["experiments"]


def test_seeding_a_fresh_database(tmp_path: Path, stats: dict) -> None:
    with Store(tmp_path / "fresh.duckdb") as store:
        rep = seed_starter(store)
        assert rep is not None and not rep.rejected
        counts = store.counts()
        assert counts["experiments"] == stats["experiments"]
        assert counts["datasets"] == stats["datasets"]
        assert counts["families"] == stats["architecture_families"]
        dcns = [d.dcn for d in store.datasets()]
        assert None not in dcns
        assert max(dcns) - min(dcns) == pytest.approx(stats["dcn_span"], abs=1e-3)
        again = seed_starter(store)  # idempotent
        assert again is not None and again.added == 0
        assert store.counts()["experiments"] == stats["experiments"]
        # the architectures are real and rebuild to their ids
        ids = store.sql("SELECT arch_id FROM experiments LIMIT 5").column("arch_id").to_pylist()
        archs = store.architectures(ids)
        assert all(archs[i].id == i for i in ids)
        # DCN filtering works on the seeded data
        s = store.filter_by_dcn(0.7, 0.1)
        assert len(s) > 0 and all(abs(d - 0.7) <= 0.1 + 1e-9 for d in s.dcn)


@pytest.mark.real_seeding
def test_pipeline_seeds_a_new_default_database(tapas_home: Path, stats: dict) -> None:
    from tapas.app.pipeline import Pipeline

    n = stats["experiments"] + NB201_EXPERIMENTS + NB101_EXPERIMENTS + MACRO_EXPERIMENTS
    with Pipeline() as app:
        store = app.store
        assert store.counts()["experiments"] == n
        nb = {d.name: d for d in store.datasets() if d.source == "nas-bench-201"}
        assert sorted(nb) == ["ImageNet16-120", "cifar10", "cifar100"]
        assert all(d.dcn_meta["method"] == "reference-cell" for d in nb.values())
        assert nb["cifar10"].input_shape == (3, 32, 32)
        assert nb["ImageNet16-120"].input_shape == (3, 16, 16)
        st = store.stats()  # what `tapas lde stats --json` shows
        assert st["experiments"] >= 50_000 and st["datasets"] >= 24 + 3
        assert {"1x16x16", "1x28x28", "3x32x32"} <= set(st["input_shapes"])
        assert st["dcn_min"] <= 0.2 + 0.05 and st["dcn_max"] >= 0.95
    with Pipeline() as app:  # an existing database is not re-seeded or changed
        assert app.store.counts()["experiments"] == n


NB201_EXPERIMENTS = 3 * 15_625
NB101_EXPERIMENTS = 1_000
MACRO_EXPERIMENTS = 3 * 3_969


def test_shipped_nb201_results_carry_their_licence_and_reference_dcns() -> None:
    import duckdb

    from lde.nb201 import NB201_DIR, available
    from tapas.core.arch.nb201 import REFERENCE_CELL

    assert available()
    notice = (NB201_DIR.parent / "NOTICE.md").read_text()
    assert "MIT License" in notice and "NATS-Bench" in notice
    con = duckdb.connect()
    exps = str(NB201_DIR / "experiments" / "*" / "*.parquet")
    n, lo, hi = con.execute(f"SELECT count(*), min(accuracy), max(accuracy) "
                            f"FROM read_parquet('{exps}')").fetchone()
    assert n == NB201_EXPERIMENTS and 0.0 <= lo < hi <= 1.0
    meta = con.execute(f"SELECT name, dcn, dcn_meta FROM "
                       f"read_parquet('{NB201_DIR / 'datasets.parquet'}')").fetchall()
    assert {m[0] for m in meta} == {"cifar10", "cifar100", "ImageNet16-120"}
    assert all(REFERENCE_CELL in m[2] for m in meta)
    # the reference cell's own accuracy is the DCN (the convention the card documents)
    ref = dict(con.execute(f"""
        SELECT e.dataset_id, e.accuracy FROM read_parquet('{exps}', hive_partitioning = true) e
        JOIN read_parquet('{NB201_DIR / 'architectures.parquet'}') a ON a.id = e.arch_id
        WHERE a.nb201_cell = '{REFERENCE_CELL}'""").fetchall())
    assert {m[0]: round(m[1], 6) for m in meta} == {k: round(v, 6) for k, v in ref.items()}


def test_missing_starter_data_warns(tmp_path: Path) -> None:
    with Store(tmp_path / "x.duckdb") as store, pytest.warns(RuntimeWarning, match="starter"):
        assert seed_starter(store, tmp_path / "nothing") is None
        assert store.counts()["experiments"] == 0


def test_card_block_round_trips(tmp_path: Path, stats: dict) -> None:
    card = tmp_path / "card.md"
    card.write_text("# card\n\n" + render_stats_block(stats) + "\n\nmore text\n")
    assert card_stats(card) == stats
    card.write_text("# no block\n")
    with pytest.raises(ValueError, match="starter-stats"):
        card_stats(card)


def test_label_kendall_compares_two_independent_means_of_seeds() -> None:
    rng = np.random.default_rng(0)
    truth = np.linspace(0.3, 0.8, 30)
    runs = [("d", f"n{i}", s, float(t + rng.normal(0, 0.05)))
            for i, t in enumerate(truth) for s in range(8)]
    runs += [("d", f"m{i}", s, 0.5) for i in range(10) for s in range(2)]  # two runs only
    got = label_kendall(runs)
    tau, k = got["d"]
    assert k == 4  # 30 networks hold 8 runs: two labels of 4 seeds each
    by = {}
    for _, n, _, a in runs:
        by.setdefault(n, []).append(a)
    want = seed_to_seed_kendall([("d", np.mean(v[0::2]), np.mean(v[1::2]))
                                 for n, v in by.items() if n.startswith("n")])["d"]
    assert tau == want
    one = seed_to_seed_kendall([("d", v[0], v[1]) for n, v in by.items() if n.startswith("n")])
    assert tau > one["d"]  # averaging seeds makes the label more reproducible
    assert label_kendall(runs, min_networks=40)["d"][1] == 1  # 40 networks hold 2 runs
    assert label_kendall(runs, min_networks=41) == {}
