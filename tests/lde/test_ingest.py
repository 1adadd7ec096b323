"""Ingest formats: own records (JSONL/CSV/Parquet), NAS-Bench-201 tables, Parquet round trip."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lde import IngestError, Store
from lde.ingest import ingest_nb201, ingest_records, read_dcn_file
from tests.lde.conftest import CELLS, small_arch

NB201_HEADER = ["arch_str", "cifar10_test", "cifar100_test", "imagenet16_test",
                "cifar10_valid_val", "cifar100_val", "imagenet16_val"]


def _records(tmp: Path) -> list[dict]:
    a = small_arch()
    return [
        {"arch": a.to_dict(), "dataset": "toy", "accuracy": 0.8, "seed": 1, "epochs": 5,
         "hparams": {"lr": 0.1}, "curve": [0.5, 0.8]},                       # line 1
        {"arch": CELLS[0], "dataset": "cifar10", "accuracy_pct": 93.5},       # line 2
        {"arch": a.to_dict(), "dataset": "toy", "accuracy": 80},              # line 3: >1
        {"arch": "|bogus~0|+|x|", "dataset": "cifar10", "accuracy": 0.5},     # line 4
        {"arch": a.to_dict(), "dataset": "unknown", "accuracy": 0.5},         # line 5
        {"arch": a.to_dict(), "dataset": "toy", "accuracy": float("nan")},    # line 6
        {"arch": a.to_dict(), "dataset": "toy", "accuracy": 0.7, "split": "val", "seed": 2},
    ]


def _check_records_report(rep, store: Store, lines: dict[str, int]) -> None:
    why = dict(rep.rejected)
    assert sorted(why) == sorted(lines.values()), rep.rejected
    assert "outside [0, 1]" in why[lines["range"]]
    assert "bogus" in why[lines["cell"]] or "malformed" in why[lines["cell"]]
    assert "unknown dataset 'unknown'" in why[lines["dataset"]]
    assert "NaN" in why[lines["nan"]]
    assert rep.added == 3 and rep.datasets_added == 2


def test_records_jsonl(store: Store, tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    lines = [json.dumps(r).replace("NaN", "NaN") for r in _records(tmp_path)]
    lines.insert(3, "{not json")          # line 4 is malformed JSON
    lines.insert(4, "")                    # blank line 5 is skipped
    p.write_text("\n".join(lines) + "\n")
    dcn = {"toy": 0.7, "cifar10": 0.9}
    rep = ingest_records(store, p, dcn=dcn)
    why = dict(rep.rejected)
    assert "malformed JSON" in why[4]
    _check_records_report(rep, store, {"range": 3, "cell": 6, "dataset": 7, "nan": 8, "json": 4})
    assert store.dataset("toy").dcn == 0.7 and store.dataset("toy").input_shape == (3, 8, 8)
    assert store.dataset("cifar10").n_classes == 10
    acc = sorted(store.sql("SELECT accuracy FROM experiments").column(0).to_pylist())
    assert acc == pytest.approx([0.7, 0.8, 0.935])
    splits = store.sql("SELECT split FROM experiments ORDER BY seq").column(0).to_pylist()
    assert splits == ["test", "test", "valid"]
    again = ingest_records(store, p, dcn=dcn)
    assert again.added == 0 and again.skipped == 3


def test_records_csv_and_parquet(store: Store, tmp_path: Path) -> None:
    recs = _records(tmp_path)
    cols = ["arch", "dataset", "accuracy", "accuracy_pct", "seed", "epochs", "hparams", "curve",
            "split"]
    p = tmp_path / "runs.csv"
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in recs:
            w.writerow(["" if r.get(c) is None else
                        (json.dumps(r[c]) if isinstance(r[c], dict | list) else r[c])
                        for c in cols])
    rep = ingest_records(store, p, dcn={"toy": 0.7, "cifar10": 0.9})
    _check_records_report(rep, store, {"range": 4, "cell": 5, "dataset": 6, "nan": 7})

    q = tmp_path / "runs.parquet"
    rows = [{**{c: None for c in cols}, **r,
             "arch": json.dumps(r["arch"]) if isinstance(r["arch"], dict) else r["arch"],
             "hparams": json.dumps(r.get("hparams")) if r.get("hparams") else None}
            for r in recs]
    pq.write_table(pa.Table.from_pylist(rows), q)
    rep = ingest_records(store, q)  # the same runs from another file: not stored twice
    assert rep.added == 0 and rep.skipped == 3
    assert sorted(dict(rep.rejected)) == [3, 4, 5, 6]


def test_records_file_level_errors(store: Store, tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("arch,accuracy\nfoo,0.5\n")
    with pytest.raises(IngestError, match="missing column.*dataset"):
        ingest_records(store, p)
    with pytest.raises(IngestError, match="not found"):
        ingest_records(store, tmp_path / "missing.jsonl")
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    with pytest.raises(IngestError, match="unknown record format"):
        ingest_records(store, bad)
    assert store.counts()["experiments"] == 0


def test_dcn_file(tmp_path: Path) -> None:
    j = tmp_path / "dcn.json"
    j.write_text('{"cifar10": 0.9, "ImageNet16-120": 0.4}')
    assert read_dcn_file(j) == {"cifar10": 0.9, "ImageNet16-120": 0.4}
    c = tmp_path / "dcn.csv"
    c.write_text("name,dcn\ncifar10,0.9\ncifar100 = 0.6\n")
    assert read_dcn_file(c) == {"cifar10": 0.9, "cifar100": 0.6}
    c.write_text("cifar10,1.9\n")
    with pytest.raises(IngestError, match="outside"):
        read_dcn_file(c)


def _small_nb201(shared_data: Path, tmp_path: Path, n: int = 40) -> Path:
    """The first ``n`` rows of the real table plus malformed rows at known lines."""
    with (shared_data / "nb201.csv").open() as f:
        lines = [next(f) for _ in range(n + 1)]
    good = lines[1]
    cell = good.split(",")[0]
    bad = [
        good.replace(cell, "|nor_conv_3x3~0|+|bogus~0|"),                    # bad cell
        ",".join([lines[2].split(",")[0], "105.0"] + lines[2].split(",")[2:]),  # > 100 %
        ",".join([lines[3].split(",")[0], "nan"] + lines[3].split(",")[2:]),    # NaN
        ",".join([lines[4].split(",")[0], ""] + lines[4].split(",")[2:]),       # empty
    ]
    p = tmp_path / "nb.csv"
    p.write_text(lines[0].strip() + ",mystery_metric\n"
                 + "".join(x.strip() + ",1.0\n" for x in lines[1:] + bad))
    return p


def test_nb201_table_with_malformed_rows(store: Store, shared_data: Path, tmp_path: Path) -> None:
    from tapas.core.arch import from_nb201

    p = _small_nb201(shared_data, tmp_path)
    rep = ingest_nb201(store, p, dcn={"cifar10": 0.9, "cifar100": 0.6, "ImageNet16-120": 0.4})
    why = dict(rep.rejected)
    assert "mystery_metric" in why[1] and "unknown dataset column" in why[1]
    assert "bogus" in why[42]
    assert "105.0" in why[43] and "outside" in why[43]
    assert "NaN" in why[44] and "not a number" in why[45]
    assert len(rep.rejected) == 5
    # 40 good lines x 6 columns land; the bad-value lines repeat cells of lines 3-5, so
    # their 5 good columns each are already present (skipped, not added twice)
    assert (rep.added, rep.skipped) == (40 * 6, 3 * 5)
    c = store.counts()
    assert (c["families"], c["architectures"], c["experiments"]) == (40, 120, 240)
    # accuracies are stored as fractions, mapped to the right dataset and split
    with (shared_data / "nb201.csv").open() as f:
        next(f)
        first = next(f).strip().split(",")
    arch = from_nb201(first[0], 120, 16)
    got = store.sql("SELECT split, accuracy FROM experiments WHERE arch_id = ? ORDER BY split",
                    [arch.id]).to_pylist()
    assert got == [{"split": "test", "accuracy": pytest.approx(float(first[3]) / 100)},
                   {"split": "valid", "accuracy": pytest.approx(float(first[6]) / 100)}]
    assert store.dataset("ImageNet16-120").input_shape == (3, 16, 16)
    assert store.dataset("cifar100").dcn == 0.6
    # idempotent
    assert ingest_nb201(store, p).added == 0


def test_nb201_column_mapping_and_errors(store: Store, shared_data: Path, tmp_path: Path) -> None:
    p = _small_nb201(shared_data, tmp_path, 5)
    rep = ingest_nb201(store, p, columns=["cifar10_test", "mystery_metric"],
                       mapping={"mystery_metric": ("cifar10", "train")}, dcn={"cifar10": 0.9})
    assert (rep.added, rep.skipped) == (5 * 2, 3)  # bad lines repeat earlier cells
    assert not [r for r in rep.rejected if r[0] == 1]  # every selected column maps
    assert store.sql("SELECT count(*) FROM experiments WHERE split = 'train'").column(0)[0] \
        .as_py() == 5
    with pytest.raises(IngestError, match="not in the header"):
        ingest_nb201(store, p, columns=["nope"])
    with pytest.raises(IngestError, match="register it first"):
        ingest_nb201(store, p, columns=["cifar10_test"], mapping={"cifar10_test": ("svhn", "test")})


@pytest.mark.slow
def test_nb201_full_table_twice(store: Store, shared_data: Path) -> None:
    """The issue's acceptance test: three test columns twice -> 15,625 cells, 46,875 runs."""
    cols = ["cifar10_test", "cifar100_test", "imagenet16_test"]
    dcn = {"cifar10": 0.9, "cifar100": 0.6, "ImageNet16-120": 0.4}
    first = ingest_nb201(store, shared_data / "nb201.csv", columns=cols, dcn=dcn)
    assert (first.added, first.skipped, first.rejected) == (46_875, 0, [])
    second = ingest_nb201(store, shared_data / "nb201.csv", columns=cols, dcn=dcn)
    assert (second.added, second.skipped, second.rejected) == (0, 46_875, [])
    c = store.counts()
    assert c["experiments"] == 46_875
    assert c["families"] == 15_625  # one per cell: the "15,625 architectures"
    assert c["architectures"] == 46_875  # exact networks: 10, 100 and 120 classes differ
    assert store.sql("SELECT count(DISTINCT nb201_cell) FROM architectures").column(0)[0] \
        .as_py() == 15_625
    s = store.filter_by_dcn(0.6, 0.05)
    assert len(s) == 15_625 and set(s.dataset_id) == {"cifar100"}


def test_export_import_round_trip(store: Store, shared_data: Path, tmp_path: Path) -> None:
    from lde.ingest import ingest_records

    p = _small_nb201(shared_data, tmp_path, 30)
    ingest_nb201(store, p, dcn={"cifar10": 0.9, "cifar100": 0.6, "ImageNet16-120": 0.4})
    r = tmp_path / "r.jsonl"
    a = small_arch()
    r.write_text(json.dumps({"arch": a.to_dict(), "dataset": "toy", "accuracy": 0.8,
                             "curve": [0.2, 0.8], "hparams": {"lr": 0.1}, "seed": 4}) + "\n")
    ingest_records(store, r, dcn={"toy": 0.3})
    store.register_predictor("p_" + "1" * 16, 0.5, 0.05, 0.45, 0.55, store.snapshot_id(), 10,
                             {"tau": 0.9}, "p1.tap", {"x": 1})
    with store.transaction() as con:  # an older database's absolute model path
        con.execute("UPDATE predictors SET artifact = '/m/p1.tap'")
    out = store.export_parquet(tmp_path / "export")
    assert out["counts"] == store.counts()
    assert (tmp_path / "export" / "experiments" / "dataset_id=cifar10").is_dir()
    with pytest.raises(IngestError, match="not empty"):
        store.export_parquet(tmp_path / "export")

    with Store(tmp_path / "copy.duckdb") as other:
        rep = other.import_parquet(tmp_path / "export")
        assert rep.added == store.counts()["experiments"] and not rep.rejected
        assert other.counts() == store.counts()
        assert other.snapshot_id() == store.snapshot_id()
        for table, order in (("datasets", "id"), ("architectures", "id"),
                             ("experiments", "seq"), ("predictors", "id")):
            q = f"SELECT * FROM {table} ORDER BY {order}"
            want = store.sql(q).to_pylist()
            if table == "predictors":  # exported by file name, never this machine's path
                want = [{**r, "artifact": r["artifact"].rsplit("/", 1)[-1]} for r in want]
            assert other.sql(q).to_pylist() == want, table
        again = other.import_parquet(tmp_path / "export")
        assert again.added == 0 and again.skipped == rep.added
        assert other.architectures([a.id])[a.id] == a


def test_import_rejects_bad_rows(store: Store, shared_data: Path, tmp_path: Path) -> None:
    p = _small_nb201(shared_data, tmp_path, 10)
    ingest_nb201(store, p, dcn={"cifar10": 0.9, "cifar100": 0.6, "ImageNet16-120": 0.4})
    store.export_parquet(tmp_path / "ex")
    part = next((tmp_path / "ex" / "experiments" / "dataset_id=cifar100").glob("*.parquet"))
    t = pq.read_table(part)
    acc = t.column("accuracy").to_pylist()
    acc[2] = 1.7
    acc[5] = float("nan")
    arch = t.column("arch_id").to_pylist()
    arch[7] = "f" * 32
    t = t.set_column(t.column_names.index("accuracy"), "accuracy", pa.array(acc))
    t = t.set_column(t.column_names.index("arch_id"), "arch_id", pa.array(arch))
    pq.write_table(t, part)
    with Store(tmp_path / "other.duckdb") as other:
        rep = other.import_parquet(tmp_path / "ex")
        why = {w: r for w, r in rep.rejected}
        assert len(why) == 3
        keys = sorted(why)
        assert all("dataset_id=cifar100" in k for k in keys)
        assert any("row 3" in k and "outside [0, 1]" in why[k] for k in keys)
        assert any("row 6" in k and "NaN" in why[k] for k in keys)
        assert any("row 8" in k and "unknown architecture" in why[k] for k in keys)
        assert rep.added == store.counts()["experiments"] - 3
    with pytest.raises(IngestError, match="manifest"):
        store.import_parquet(tmp_path)


def test_nb201_expansion_is_exact_and_parallel_safe() -> None:
    """The fast expansion equals fully built networks; worker processes give the same rows."""
    from lde.archs import arch_row, iter_nb201_rows
    from tapas.core.arch import all_cells, from_nb201

    cells = all_cells()[::1250][:12]
    configs = [(10, 32), (120, 16)]
    seq = [r for _, rows in iter_nb201_rows(cells, configs, chunk=4, workers=1) for r in rows]
    par = [r for _, rows in iter_nb201_rows(cells, configs, chunk=4, workers=2) for r in rows]
    assert seq == par
    for cell, per in zip(cells, seq, strict=True):
        for (k, size), row in zip(configs, per, strict=True):
            want = from_nb201(cell, k, size)
            assert row == arch_row(want, cell)
            assert (row.id, row.params, row.flops) == (want.id, want.params, want.flops)


def test_import_skips_predictor_rows_that_name_paths(store: Store, tmp_path: Path) -> None:
    """Issue 38: a crafted export's registry rows whose id is not a predictor id or whose
    model file is not a plain name (a later delete would reach outside the model dir)
    are skipped and reported; the good row lands."""
    good = "p_" + "1" * 16
    store.register_predictor(good, 0.5, 0.05, 0.45, 0.55, store.snapshot_id(), 10, {},
                             f"{good}.tap", {})
    store.export_parquet(tmp_path / "export")
    f = tmp_path / "export" / "predictors.parquet"
    t = pq.read_table(f)
    row = t.to_pylist()[0]
    bad = [{**row, "id": "../../victim/important"},
           {**row, "id": "p_" + "2" * 16, "artifact": "../../victim/important.tap"},
           {**row, "id": "p_" + "3" * 16, "artifact": "/etc/passwd"}]
    pq.write_table(pa.Table.from_pylist([row, *bad], schema=t.schema), f)
    with Store(tmp_path / "other.duckdb") as other:
        rep = other.import_parquet(tmp_path / "export")
        assert [p.id for p in other.predictors()] == [good]
    reasons = [r for w, r in rep.rejected if w == "predictors.parquet"]
    assert len(reasons) == 3 and all("skipped" in r for r in reasons)
    assert sum("victim" in r for r in reasons) == 2 and any("/etc/passwd" in r for r in reasons)
