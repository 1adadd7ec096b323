"""The published tables shipped in the default database beside NAS-Bench-201 (issue 34):
NAS-Bench-101 and NAS-Bench-Macro on CIFAR-10, with their notices, on NAS-Bench-201's
CIFAR-10 row, rebuilt exactly from the shared tables."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pytest

from lde import macro, nb101
from lde.default_data import SHIPPED, seed_default, shipped_counts
from lde.nb201 import NB201_DIR
from lde.shipped import nb201_dataset, write_export
from lde.store import Store
from tapas.core.records import ExperimentRecord
from tests.lde.conftest import small_arch

EXPORTS = {"nb101": (nb101, "nb101_cifar10.csv"), "macro": (macro, "nas_bench_macro_cifar10.csv")}


def _exps(directory: Path) -> list[tuple]:
    path = directory / "experiments" / "*" / "*.parquet"
    return duckdb.sql(f"""SELECT arch_id, dataset_id, split, seed, source, accuracy, epochs,
                                 curve, hparams
                          FROM read_parquet('{path}', hive_partitioning = true)
                          ORDER BY ALL""").fetchall()


def _datasets(directory: Path) -> list[tuple]:
    return duckdb.sql(f"""SELECT id, name, fingerprint, n_classes, input_shape, dcn, dcn_meta,
                                 source FROM read_parquet('{directory / "datasets.parquet"}')
                          ORDER BY id""").fetchall()


def test_each_table_carries_its_notice_and_nb201s_cifar10_row() -> None:
    cifar10 = [r for r in _datasets(NB201_DIR) if r[1] == "cifar10"]
    for name, (module, _) in EXPORTS.items():
        assert module.EXPORT.available(), name
        notice = (module.EXPORT.directory.parent / "NOTICE.md").read_text()
        assert "Apache License, Version 2.0" in notice and "Source:" in notice
        assert _datasets(module.EXPORT.directory) == cifar10  # same images, same DCN


def test_nb101_stores_the_108_epoch_label_and_its_curve() -> None:
    rows = _exps(nb101.NB101_DIR)
    assert len(rows) == 1000 and len({r[0] for r in rows}) == 1000
    for _arch_id, ds, split, seed, source, acc, epochs, curve, hp in rows:
        assert (ds, split, seed, source, epochs) == ("cifar10", "valid", None, "nas-bench-101", 108)
        assert len(curve) == 4 and curve[-1] == acc and '"curve_epochs": [4, 12, 36, 108]' in hp


def test_macro_stores_three_seeds_of_every_trained_network() -> None:
    rows = _exps(macro.MACRO_DIR)
    archs = {r[0] for r in rows}
    assert len(archs) == 3969 and len(rows) == 3 * 3969
    assert {r[3] for r in rows} == {0, 1, 2}
    assert {(r[1], r[2], r[4], r[6]) for r in rows} == {("cifar10", "test", "nas-bench-macro", 50)}


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_a_rebuild_from_the_shared_table_is_the_shipped_export(
        name: str, shared_data: Path, tmp_path: Path) -> None:
    """Rebuilding checks every row's parameter count against the published one."""
    module, table = EXPORTS[name]
    module.build(shared_data / table, tmp_path / "export")
    assert _exps(tmp_path / "export") == _exps(module.EXPORT.directory)


def test_a_published_parameter_count_that_differs_names_its_line(
        shared_data: Path, tmp_path: Path) -> None:
    with (shared_data / "nb101_cifar10.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))[:3]
    rows[1]["params"] = str(int(rows[1]["params"]) + 1)
    bad = tmp_path / "nb101.csv"
    with bad.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(ValueError, match=r"nb101.csv:3: .* parameters built"):
        nb101.records(bad)


def test_a_rejected_record_leaves_the_export_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "export"
    shutil.copytree(nb101.NB101_DIR, out)
    before = _exps(out)
    recs = [ExperimentRecord(small_arch(shape=(3, 32, 32)), "cifar10", 0.5),
            ExperimentRecord(small_arch(), "not-registered", 0.5)]
    with pytest.raises(ValueError, match="1 record.* rejected.*not-registered"):
        write_export(recs, [nb201_dataset("cifar10")], out)
    assert _exps(out) == before


def test_a_new_database_holds_every_shipped_table_once(tmp_path: Path) -> None:
    with Store(tmp_path / "lde.duckdb") as store:
        assert len(seed_default(store)) == len(SHIPPED)
        counts = store.counts()
        assert len(seed_default(store)) == len(SHIPPED)  # idempotent
        assert store.counts() == counts
        with store.connection() as con:
            by_source = dict(con.execute(
                "SELECT source, count(*) FROM experiments GROUP BY source").fetchall())
    shipped = shipped_counts()
    assert {k: counts[k] for k in ("datasets", "architectures", "families", "experiments")} == \
        {k: shipped[k] for k in ("datasets", "architectures", "families", "experiments")}
    assert by_source["nas-bench-101"] == 1000 and by_source["nas-bench-macro"] == 3 * 3969
    assert {s["name"] for s in shipped["sources"]} == {e.name for e in SHIPPED}


def test_every_published_table_names_its_space() -> None:
    """``tapas lde stats`` counts a published table's runs under its space by source."""
    from lde.store.summary import SOURCE_SPACES

    assert {e.name for e in SHIPPED} - {"starter"} <= set(SOURCE_SPACES)
    assert (SOURCE_SPACES[nb101.SOURCE], SOURCE_SPACES[macro.SOURCE]) == ("nb101", "macro")
