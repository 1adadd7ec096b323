"""The shipped starter LDE: its data card matches the Parquet, it meets the issue's
requirements, and it seeds a fresh database."""

from __future__ import annotations

from pathlib import Path

import pytest

from lde import Store
from lde.starter import (
    STARTER_DIR,
    STARTER_SOURCE,
    available,
    card_stats,
    render_stats_block,
    seed_starter,
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
    assert stats["min_families_per_dataset"] >= 150
    assert stats["families_on_8_or_more_datasets"] >= 300
    assert stats["parquet_bytes"] < 25 * 2**20
    assert stats["experiments_with_curves"] == stats["experiments"]
    assert stats["sources"] == [STARTER_SOURCE]
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


def test_pipeline_seeds_a_new_default_database(tapas_home: Path, stats: dict) -> None:
    from tapas.pipeline import Pipeline

    with Pipeline() as app:
        assert app.store.counts()["experiments"] == stats["experiments"]
    with Pipeline() as app:  # an existing database is not re-seeded or changed
        assert app.store.counts()["experiments"] == stats["experiments"]


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
