"""Store: schema and migrations, datasets, architectures, experiments, filters, registry."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest

from lde import (
    SCHEMA_VERSION,
    DatabaseError,
    ExperimentRecord,
    LDEError,
    SchemaError,
    Store,
)
from lde.schema import MIGRATIONS
from tests.lde.conftest import CELLS, small_arch


def test_schema_created_on_first_use(tapas_home: Path) -> None:
    from tapas.core.config import get_settings

    path = get_settings().database
    assert not path.exists()
    with Store() as s:
        assert s.path == path
        assert s.schema_version == SCHEMA_VERSION
        assert s.counts() == {"datasets": 0, "architectures": 0, "families": 0,
                              "experiments": 0, "predictors": 0}
    assert path.exists()
    with Store(path, read_only=True) as s:  # reopening keeps the version, creates nothing
        assert s.schema_version == SCHEMA_VERSION


def test_migration_from_version_1_keeps_data_and_fills_family(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    arch = small_arch()
    con = duckdb.connect(str(path))
    for stmt in MIGRATIONS[1]:
        con.execute(stmt)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO architectures (id, canonical_json, params, flops, n_layers, "
                "num_classes, input_shape, source) VALUES (?, ?, ?, ?, ?, ?, ?, 'v1')",
                [arch.id, arch.canonical_json, arch.params, arch.flops, len(arch.layers), 10,
                 [3, 8, 8]])
    con.close()
    with pytest.raises(SchemaError, match="migrate"):
        Store(path, read_only=True)
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION == 2
        assert s.counts()["architectures"] == 1
        assert s.architectures([arch.id])[arch.id] == arch
        fam = s.sql("SELECT family FROM architectures").column(0).to_pylist()
        from lde.archs import family_of

        assert fam == [family_of(arch.to_dict())]


def test_newer_or_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(SchemaError, match="newer"):
        Store(path)
    foreign = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    with pytest.raises(SchemaError, match="not a tapas"):
        Store(foreign)
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LDEError):
        Store(junk)


def test_datasets_upsert_lookup_and_dcn(store: Store) -> None:
    did = store.upsert_dataset("digits noisy", "fp1", 1797, 10, (1, 8, 8), source="probe")
    assert did == store.upsert_dataset("digits noisy", None, None, 10, (1, 8, 8))  # stable id
    row = store.dataset(did)
    assert row is not None and row.name == "digits noisy" and row.dcn is None
    assert row.fingerprint == "fp1" and row.n_samples == 1797 and row.input_shape == (1, 8, 8)
    assert store.dataset("digits noisy") == row
    assert store.dataset_by_fingerprint("fp1") == row
    assert store.dataset("nope") is None and store.dataset_by_fingerprint("nope") is None
    store.set_dcn(did, 0.73, {"method": "probenet", "seeds": 3})
    row = store.dataset(did)
    assert row.dcn == pytest.approx(0.73) and row.dcn_meta == {"method": "probenet", "seeds": 3}
    store.upsert_dataset("digits noisy", "fp1", 1797, 10, (1, 8, 8))  # dcn=None keeps it
    assert store.dataset(did).dcn == pytest.approx(0.73)
    assert store.upsert_dataset("cifar10", None, None, 10, (3, 32, 32), 0.9) == "cifar10"
    assert [d.name for d in store.datasets()] == ["cifar10", "digits noisy"]
    for bad in (dict(n_classes=1), dict(input_shape=(3, 8)), dict(dcn=1.5), dict(dcn=float("nan"))):
        kw = dict(n_classes=10, input_shape=(3, 8, 8), dcn=None) | bad
        with pytest.raises((LDEError, ValueError)):
            store.upsert_dataset("bad", None, None, **kw)
    with pytest.raises(LDEError, match="unknown dataset"):
        store.set_dcn("missing", 0.5)


def test_architectures_bulk_add_and_rebuild(store: Store) -> None:
    from tapas.core.arch import from_nb201

    archs = [small_arch(w) for w in range(4, 60)]
    assert store.add_architectures(archs) == len(archs)
    assert store.add_architectures(archs[:10]) == 0  # idempotent
    got = store.architectures([a.id for a in archs] + ["not-an-id"])
    assert set(got) == {a.id for a in archs}
    assert all(got[a.id] == a for a in archs)
    row = store.sql("SELECT params, flops, n_layers FROM architectures WHERE id = ?",
                    [archs[0].id]).to_pylist()[0]
    assert row == {"params": archs[0].params, "flops": archs[0].flops, "n_layers": 5}
    # NAS-Bench-201 networks given as cells are stored by cell and rebuilt exactly
    store.upsert_dataset("cifar100", None, None, 100, (3, 32, 32), 0.6)
    rep = store.add_experiments([ExperimentRecord(c, "cifar100", 0.5) for c in CELLS])
    assert rep.added == 3 and not rep.rejected
    want = {from_nb201(c, 100, 32).id: from_nb201(c, 100, 32) for c in CELLS}
    assert store.architectures(want) == want
    first = next(iter(want))
    assert store.architectures([first])[first].canonical_json == want[first].canonical_json
    # family is the IR's template_id, for stored JSON and for the fast NB201 expansion
    fams = {r["id"]: r["family"]
            for r in store.sql("SELECT id, family FROM architectures").to_pylist()}
    for a in [*archs, *want.values()]:
        assert fams[a.id] == a.template_id


def _setup_filter_store(store: Store) -> None:
    """Six datasets at known DCNs with known experiment counts."""
    archs = [small_arch(w) for w in range(4, 24)]  # 20 networks
    store.add_architectures(archs)
    plan = {"a": (0.10, 5), "b": (0.20, 20), "c": (0.22, 10), "d": (0.50, 20), "e": (0.55, 3),
            "f": (0.90, 20)}
    recs = []
    for name, (dcn, n) in plan.items():
        store.upsert_dataset(name, None, None, 10, (3, 8, 8), dcn)
        recs += [ExperimentRecord(archs[i], name, dcn * 0.9 + i / 1000, seed=i) for i in range(n)]
    store.upsert_dataset("uncharacterised", None, None, 10, (3, 8, 8))
    recs += [ExperimentRecord(archs[0], "uncharacterised", 0.5)]
    assert store.add_experiments(recs).added == len(recs)


def test_filter_by_dcn_and_exclusion(store: Store) -> None:
    _setup_filter_store(store)
    s = store.filter_by_dcn(0.21, 0.05)
    assert len(s) == 30 and sorted(set(s.dataset_id)) == ["b", "c"] and s.tau == 0.05
    assert s.dcn.dtype == np.float64 and set(np.round(s.dcn, 2)) == {0.20, 0.22}
    assert s.num_classes.tolist() == [10] * 30 and set(s.split) == {"test"}
    assert np.all((s.accuracy >= 0) & (s.accuracy <= 1))
    assert len(s.arch_ids()) == 20
    assert set(store.architectures(s.arch_ids())) == set(s.arch_ids())
    assert len(store.filter_by_dcn(0.21, 0.05, exclude_datasets=["c"])) == 20
    assert len(store.filter_by_dcn(0.21, 0.0)) == 0
    assert len(store.filter_by_dcn(0.20, 0.0)) == 20  # inclusive boundary
    assert len(store.filter_by_dcn(0.5, 1.0)) == 78  # the uncharacterised dataset never
    assert len(store.filter_by_dcn(0.21, 0.05, split="valid")) == 0
    with_curves = store.filter_by_dcn(0.9, 0.01, with_curves=True)
    assert with_curves.curves == [None] * 20
    with pytest.raises(LDEError):
        store.filter_by_dcn(0.5, -1)
    with pytest.raises(ValueError):
        store.filter_by_dcn(2.0, 0.05)


def test_mean_over_seeds_gives_one_label_per_network(store: Store) -> None:
    """Seeds stored as separate experiments train and score as one label, their mean."""
    a, b = small_arch(8), small_arch(16)
    store.upsert_dataset("d", None, None, 10, (3, 8, 8), 0.5)
    store.upsert_dataset("e", None, None, 10, (3, 8, 8), 0.6)
    store.add_experiments([
        ExperimentRecord(a, "d", 0.50, seed=0, epochs=2, curve=[0.3, 0.5]),
        ExperimentRecord(b, "d", 0.70, seed=0, epochs=2, curve=[0.4, 0.7]),
        ExperimentRecord(a, "d", 0.60, seed=1, epochs=2, curve=[0.5, 0.6]),
        ExperimentRecord(a, "d", 0.70, seed=2),
        ExperimentRecord(a, "e", 0.20, seed=0),
        ExperimentRecord(a, "d", 0.40, split="valid", seed=0)])
    runs = store.filter_by_dcn(0.55, 0.1, with_curves=True)
    labels = runs.mean_over_seeds()
    got = {(i, d, s): (acc, c) for i, d, s, acc, c in zip(
        labels.arch_id, labels.dataset_id, labels.split, labels.accuracy, labels.curves,
        strict=True)}
    assert len(got) == len(labels) == 4
    acc, curve = got[(a.id, "d", "test")]
    assert acc == pytest.approx(0.6) and curve == pytest.approx([0.4, 0.55])
    assert got[(b.id, "d", "test")] == (pytest.approx(0.7), pytest.approx([0.4, 0.7]))
    assert got[(a.id, "d", "valid")][0] == pytest.approx(0.4)  # splits never mix
    assert got[(a.id, "e", "test")] == (pytest.approx(0.2), None)
    assert set(labels.dcn.round(2)) == {0.5, 0.6} and labels.tau == runs.tau
    once = store.filter_by_dcn(0.6, 0.0)  # one run per network: the set itself
    assert once.mean_over_seeds() is once
    # the selection counts labels, not runs: d's 5 runs are 3 labels, so 4 need e as well
    _, tau = store.filter_adaptive(0.5, min_experiments=4, min_datasets=1, tau=0.0)
    assert tau == pytest.approx(0.1)
    _, tau = store.filter_adaptive(0.5, min_experiments=3, min_datasets=1, tau=0.0)
    assert tau == 0.0


def test_memory_and_sql_filters_agree(store: Store) -> None:
    _setup_filter_store(store)
    with Store(store.path.with_name("other.duckdb"), cache_rows=0) as sql_only:
        store.export_parquet(store.path.parent / "ex")
        sql_only.import_parquet(store.path.parent / "ex")
        for dcn, tau, split in ((0.21, 0.05, None), (0.5, 1.0, None), (0.5, 1.0, "valid"),
                                (0.9, 0.0, "test"), (0.0, 0.01, None)):
            a = store.filter_by_dcn(dcn, tau, split=split)
            b = sql_only.filter_by_dcn(dcn, tau, split=split)
            c = store.filter_by_dcn(dcn, tau, split=split, with_curves=True)  # SQL path
            for x in (b, c):
                for col in ("arch_id", "dataset_id", "dcn", "accuracy", "num_classes", "split"):
                    assert getattr(a, col).tolist() == getattr(x, col).tolist(), col
    # a write in this process refreshes the in-memory columns
    n = len(store.filter_by_dcn(0.9, 0.0))
    store.add_experiments([ExperimentRecord(small_arch(99), "f", 0.5)])
    assert len(store.filter_by_dcn(0.9, 0.0)) == n + 1


def test_filter_adaptive_widens_tau(store: Store) -> None:
    _setup_filter_store(store)
    s, tau = store.filter_adaptive(0.52, min_experiments=10, min_datasets=2, tau=0.05)
    assert tau == pytest.approx(0.05) and sorted(set(s.dataset_id)) == ["d", "e"]
    # needs 40: d(20)+e(3) are within 0.05; next nearest are c (0.30 away) then b (0.32)
    s, tau = store.filter_adaptive(0.52, min_experiments=40, min_datasets=2, tau=0.05)
    assert tau == pytest.approx(0.32) and sorted(set(s.dataset_id)) == ["b", "c", "d", "e"]
    assert len(s) == 53 and s.satisfied and s.tau == pytest.approx(0.32)
    # the target's own dataset left out
    s, tau = store.filter_adaptive(0.5, min_experiments=20, tau=0.01, exclude_datasets=["d"])
    assert "d" not in set(s.dataset_id) and len(s) >= 20
    # impossible: everything is used and the set says so
    s, tau = store.filter_adaptive(0.5, min_experiments=10_000)
    assert not s.satisfied and len(s) == 78


def test_experiments_validation_and_idempotence(store: Store) -> None:
    store.upsert_dataset("d1", None, None, 10, (3, 8, 8), 0.5)
    a = small_arch()
    recs = [
        ExperimentRecord(a, "d1", 0.8, epochs=12, hparams={"lr": 0.1}, curve=[0.3, 0.6, 0.8],
                         seed=1),
        ExperimentRecord(a.to_dict(), "d1", 0.81, seed=2),
        ExperimentRecord(a.canonical_json, "d1", 0.82, seed=3, split="valid"),
        ExperimentRecord(a, "d1", 1.2),                       # 3: out of range
        ExperimentRecord(a, "d1", float("nan")),              # 4: NaN
        ExperimentRecord(a, "nope", 0.5),                     # 5: unknown dataset
        ExperimentRecord({"layers": []}, "d1", 0.5),          # 6: bad architecture
        ExperimentRecord(small_arch(num_classes=5), "d1", 0.5),  # 7: class mismatch
        ExperimentRecord(a, "d1", 0.5, curve=[0.1, 2.0]),     # 8: bad curve
        ExperimentRecord(a, "d1", 0.5, split="dev"),          # 9: bad split
        ExperimentRecord(CELLS[0], "d1", 0.5),                # 10: NB201 on an 8x8 dataset? ok
    ]
    rep = store.add_experiments(recs)
    reasons = dict(rep.rejected)
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9]
    assert "outside [0, 1]" in reasons[3] and "NaN" in reasons[4]
    assert "unknown dataset 'nope'" in reasons[5] and "'input'" in reasons[6]
    assert "5 classes" in reasons[7] and "curve[1]" in reasons[8] and "split" in reasons[9]
    assert rep.added == 4 and rep.skipped == 0
    snap = store.snapshot_id()
    rep2 = store.add_experiments(recs)
    assert rep2.added == 0 and rep2.skipped == 4 and store.snapshot_id() == snap
    row = store.sql("SELECT epochs, hparams, curve, seed, source FROM experiments "
                    "WHERE seed = 1").to_pylist()[0]
    assert row == {"epochs": 12, "hparams": json.dumps({"lr": 0.1}), "curve": [0.3, 0.6, 0.8],
                   "seed": 1, "source": "user"}
    # same natural key within one batch: the first wins, the rest are skipped
    rep3 = store.add_experiments([ExperimentRecord(a, "d1", 0.1, seed=9),
                                  ExperimentRecord(a, "d1", 0.2, seed=9)])
    assert (rep3.added, rep3.skipped) == (1, 1)
    assert store.snapshot_id() != snap


def test_snapshot_changes_with_dcn(store: Store) -> None:
    store.upsert_dataset("d1", None, None, 10, (3, 8, 8), 0.5)
    s1 = store.snapshot_id()
    store.set_dcn("d1", 0.6)
    assert store.snapshot_id() != s1


def test_failed_batch_leaves_database_unchanged(store: Store) -> None:
    from lde.archs import arch_row
    from lde.store import experiment_table

    store.upsert_dataset("d1", None, None, 10, (3, 8, 8), 0.5)
    store.add_experiments([ExperimentRecord(small_arch(), "d1", 0.5)])
    before = (store.counts(), store.snapshot_id())
    new_archs = [arch_row(small_arch(w)) for w in range(30, 40)]
    # a NULL accuracy violates NOT NULL inside DuckDB after the architectures went in
    bad = experiment_table({"arch_id": [r.id for r in new_archs], "dataset_id": ["d1"] * 10,
                            "split": ["test"] * 10, "source": ["x"] * 10,
                            "accuracy": [0.5] * 9 + [None]})
    with pytest.raises(DatabaseError, match="nothing was written"):  # never a duckdb.Error
        store.ingest_rows(new_archs, bad, kind="test")
    assert (store.counts(), store.snapshot_id()) == before
    # an error raised by Python code inside an outer transaction rolls back too
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_dataset("d2", None, None, 10, (3, 8, 8), 0.4)
        store.add_experiments([ExperimentRecord(small_arch(50), "d2", 0.5)])
        raise RuntimeError("boom")
    assert (store.counts(), store.snapshot_id()) == before
    assert store.dataset("d2") is None


P1, P2, OLD = "p_" + "1" * 16, "p_" + "2" * 16, "p_" + "0" * 16


def test_predictor_registry(store: Store) -> None:
    snap = store.snapshot_id()
    store.register_predictor(P1, 0.5, 0.05, 0.45, 0.55, snap, 1000, {"kendall": 0.9},
                             f"{P1}.tap", {"code": "0.1.0"})
    store.register_predictor(P2, 0.7, 0.05, 0.65, 0.75, snap, 900, {}, f"{P2}.tap", {})
    store.register_predictor(OLD, 0.5, 0.05, 0.4, 0.6, "other-snapshot", 10, {}, "o.tap", {})
    found = store.covering_predictors(0.52, snap)
    assert [x.id for x in found] == [P1]
    p = found[0]
    assert p.metrics == {"kendall": 0.9} and p.provenance == {"code": "0.1.0"}
    assert p.n_train == 1000 and p.covers(0.52) and not p.covers(0.6)
    assert store.covering_predictors(0.6, snap) == []
    assert store.covering_predictors(0.52, "changed") == []
    assert {x.id for x in store.covering_predictors(0.52)} == {P1, OLD}
    assert [x.id for x in store.covering_predictors(0.7)] == [P2]
    assert [x.id for x in store.predictors()] == [P1, P2, OLD]
    assert store.predictor(P2).artifact == f"{P2}.tap" and store.predictor("zz") is None
    with pytest.raises(LDEError):
        store.register_predictor("p_" + "b" * 16, 0.9, 0.05, 0.1, 0.2, snap, 1, {}, "x", {})
    assert store.delete_predictor(P2) and store.predictor(P2) is None


@pytest.mark.parametrize(("pid", "artifact"), [
    ("../../victim/important", "p_1111111111111111.tap"),
    ("/tmp/abs", "p_1111111111111111.tap"),
    ("p1", "p1.tap"),
    ("p_1111111111111111", "../../victim/important.tap"),
    ("p_1111111111111111", "/etc/passwd"),
    ("p_1111111111111111", "sub/p.tap"),
    ("p_1111111111111111", ".."),
])
def test_registry_ids_and_files_are_names_not_paths(store: Store, pid: str,
                                                    artifact: str) -> None:
    """Issue 38: the registry refuses an id that is not a predictor id and a model file
    that is not a plain name in the model directory; nothing is written."""
    with pytest.raises(LDEError, match="not a predictor id|not a plain file name"):
        store.register_predictor(pid, 0.5, 0.05, 0.4, 0.6, store.snapshot_id(), 1, {},
                                 artifact, {})
    assert store.predictors() == []


def test_stats(store: Store) -> None:
    _setup_filter_store(store)
    s = store.stats()
    assert s["experiments"] == 79 and s["datasets"] == 7 and s["architectures"] == 20
    per = {d["name"]: d for d in s["per_dataset"]}
    assert per["b"]["experiments"] == 20 and per["b"]["test"] == 20
    assert per["uncharacterised"]["dcn"] is None
    json.dumps(s, default=str)


def test_stats_per_space(store: Store) -> None:
    """Issue 34: ``spaces`` counts each run under the space its job names, else its
    published benchmark's, else ``nb201`` for a stored cell, else ``other``."""
    store.upsert_dataset("x", None, None, 10, (3, 32, 32), 0.5)
    store.upsert_dataset("y", None, None, 10, (3, 32, 32), 0.6)
    net = small_arch(8, shape=(3, 32, 32))
    recs = [ExperimentRecord(net, "x", 0.5, hparams={"space": "darts"}, seed=0),
            ExperimentRecord(net, "y", 0.6, hparams={"space": "darts"}, seed=0),
            ExperimentRecord(small_arch(9, shape=(3, 32, 32)), "x", 0.4,
                             source="nas-bench-101"),
            ExperimentRecord(CELLS[0], "x", 0.7),
            ExperimentRecord(small_arch(10, shape=(3, 32, 32)), "x", 0.3)]
    assert store.add_experiments(recs).added == len(recs)
    assert store.stats()["spaces"] == {
        "darts": {"datasets": 2, "experiments": 2}, "nb101": {"datasets": 1, "experiments": 1},
        "nb201": {"datasets": 1, "experiments": 1}, "other": {"datasets": 1, "experiments": 1}}
    with store.transaction() as con:  # a row whose hparams are not JSON (an old export)
        con.execute("UPDATE experiments SET hparams = 'not json' WHERE accuracy = 0.6")
    assert store.spaces()["darts"] == {"datasets": 1, "experiments": 1}
    assert store.spaces()["other"] == {"datasets": 2, "experiments": 2}

def test_selection_rule_widens_to_the_nearest_dataset() -> None:
    from lde.selection import select_adaptive

    rows = [("a", 0.50, 10), ("b", 0.58, 10), ("c", 0.90, 10)]
    assert select_adaptive(rows, 0.52, min_experiments=5, min_datasets=1) == (["a"], 0.05, True)
    keep, tau, ok = select_adaptive(rows, 0.52, min_experiments=15, min_datasets=1)
    assert keep == ["a", "b"] and np.isclose(tau, 0.06) and ok
    keep, _, ok = select_adaptive(rows, 0.52, min_experiments=5, min_datasets=3)
    assert keep == ["a", "b", "c"] and ok
    keep, _, ok = select_adaptive(rows, 0.52, min_experiments=100, min_datasets=1)
    assert keep == ["a", "b", "c"] and not ok
