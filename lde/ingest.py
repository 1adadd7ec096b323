"""Ingest formats: the project's own experiment records and NAS-Bench-201 tables.

Every ingest is one transaction (all of a file lands or none of it), idempotent
(a second ingest of the same file adds nothing), and reports rows added, skipped
(already present) and rejected, with the line number and the reason.

Own records (``.jsonl``, ``.csv`` or ``.parquet``), one experiment per row/line:

=================  ===========================================================
column             meaning
=================  ===========================================================
``arch``           required. IR JSON (an object in JSONL/Parquet, or JSON text)
                   or any notation (:func:`tapas.core.spaces.read_notation`): a NAS-Bench-201
                   cell string ``|op~0|+|op~0|op~1|+|...|``, a DARTS genotype
                   ``Genotype(normal=[...], ...)``, ``{"genotype": ..., "C": ..,
                   "layers": ..}`` or a NAS-Bench-101 ``{"matrix": .., "ops": ..}``,
                   expanded for the dataset's classes and input size.
``dataset``        required. Name (or id) of the dataset.
``accuracy``       final accuracy as a fraction in [0, 1] ...
``accuracy_pct``   ... or as a percentage in [0, 100] (exactly one of the two;
                   there is no guessing: 0.9 is 0.9 and 90 in ``accuracy`` is an
                   error). Stored as a fraction.
``split``          ``test`` (default), ``valid`` or ``train``.
``epochs``         optional integer.
``hparams``        optional object (or JSON text in CSV).
``curve``          optional per-epoch accuracies, a list (or JSON text in CSV),
                   on the same scale as the accuracy column used.
``seed``           optional integer.
``source``         optional; default: the ``source`` given to the ingest (``user``:
                   the same run from ``runs.jsonl`` and ``runs.csv`` is one run).
``num_classes``,   optional; only used to register a dataset that is not yet in
``input_shape``    the LDE and whose DCN is given to the ingest (``input_shape``
                   as ``[C, H, W]`` or ``"CxHxW"``).
=================  ===========================================================

A dataset that is not in the LDE is registered when its DCN is given to the
ingest (``dcn={"name": 0.81}``) and at least one of its records is stored (a rejected
batch stores nothing); otherwise its rows are rejected. A DCN other than the one stored
for a name is a :class:`~lde.errors.DatasetConflict` (the store's identity rule), never
an overwrite.

NAS-Bench-201 tables (CSV, the layout of ``nb201.csv``): an ``arch_str`` column of
cell strings and one accuracy column per (dataset, split), in **percent**. Known
columns map by default (:data:`NB201_COLUMNS`); ``<dataset>_<test|valid|val>``
maps when the dataset is known; others need an explicit mapping.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from pathlib import Path
from typing import Any

from lde.archs import ArchRow, iter_nb201_rows
from lde.errors import IngestError, LDEError
from lde.store import (
    DatasetRow,
    IngestReport,
    Progress,
    Store,
    check_accuracy,
    experiment_table,
)
from tapas.core.arch import NB201_DATASETS, ArchError, Architecture, is_nb201_string, parse_cell
from tapas.core.records import (
    SPLITS,
    ExperimentRecord,
    RecordError,
    iter_rows,
    record_from_row,
    whole,
)
from tapas.core.spaces import parse_arch
from tapas.core.types import parse_input_shape

NB201_COLUMNS: dict[str, tuple[str, str]] = {
    "cifar10_test": ("cifar10", "test"),
    "cifar100_test": ("cifar100", "test"),
    "imagenet16_test": ("ImageNet16-120", "test"),
    "cifar10_valid_val": ("cifar10", "valid"),
    "cifar100_val": ("cifar100", "valid"),
    "imagenet16_val": ("ImageNet16-120", "valid"),
}
_ALIASES = {"imagenet16": "ImageNet16-120", "imagenet16-120": "ImageNet16-120",
            "cifar10-valid": "cifar10"}
_CHUNK = 1000


# ------------------------------------------------------------------------ DCN mapping
def parse_dcn_items(items: list[str]) -> dict[str, float]:
    """``["cifar10=0.9", ...]`` -> ``{"cifar10": 0.9}`` (errors name the bad item)."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise IngestError(f"--dcn {item!r}: expected NAME=VALUE, e.g. cifar10=0.91")
        try:
            out[name.strip()] = check_accuracy(float(value), f"DCN of {name.strip()!r}")
        except ValueError as e:
            raise IngestError(f"--dcn {item!r}: {e}") from None
    return out


def read_dcn_file(path: Path) -> dict[str, float]:
    """A small mapping file: a JSON object ``{"cifar10": 0.9}`` or ``name,dcn`` CSV lines."""
    if not path.is_file():
        raise IngestError(f"DCN mapping file {path} not found")
    text = path.read_text()
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise IngestError(f"{path}: malformed JSON at line {e.lineno}: {e.msg}") from None
        if not isinstance(obj, dict):
            raise IngestError(f"{path}: expected an object mapping dataset names to DCNs")
        items = [f"{k}={v}" for k, v in obj.items()]
    else:
        items = []
        for i, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#") or (i == 1 and "dcn" in line.lower()):
                continue
            parts = re.split(r"\s*[,=:\s]\s*", line, maxsplit=1)
            if len(parts) != 2:
                raise IngestError(f"{path} line {i}: expected 'name,dcn', got {line!r}")
            items.append(f"{parts[0]}={parts[1]}")
    try:
        return parse_dcn_items(items)
    except IngestError as e:
        raise IngestError(f"{path}: {e}") from None


def _shape(v: Any) -> tuple[int, int, int] | None:
    return None if v is None or v == "" else parse_input_shape(v)


def _given_dcn(store: Store, row: DatasetRow, name: str, dcn: dict[str, float]) -> bool:
    """Whether ``--dcn`` gives a stored dataset the DCN it lacks (to be set once a record
    for it is stored). A DCN other than the stored one is a
    :class:`~lde.errors.DatasetConflict` (the store's identity rule), never an overwrite."""
    if name not in dcn:
        return False
    store.check_dataset(row.name, None, None, None, dcn[name])
    return row.dcn is None


def _ensure_datasets(store: Store, wanted: dict[str, dict[str, Any]], dcn: dict[str, float],
                     source: str, rep: IngestReport) -> tuple[dict[str, str], dict[str, str]]:
    """Register datasets named in ``dcn`` but absent (``{name: id}`` of those added) and
    find present ones the ``dcn`` gives a DCN they lack (``{name: id}``: set by
    :func:`_settle_datasets` when a record for them is stored)."""
    added: dict[str, str] = {}
    fill: dict[str, str] = {}
    for name, info in wanted.items():
        row = store.dataset(name)
        if row is None:
            if name not in dcn:
                continue
            if info.get("num_classes") is None or info.get("input_shape") is None:
                continue
            added[name] = store.upsert_dataset(name, info.get("fingerprint"), None,
                                               info["num_classes"], info["input_shape"],
                                               dcn[name], {"method": "given at ingest"}, source)
            rep.datasets_added += 1
        elif _given_dcn(store, row, name, dcn):
            fill[name] = row.id
    return added, fill


def _settle_datasets(store: Store, added: dict[str, str], fill: dict[str, str],
                     used: set[str], dcn: dict[str, float], rep: IngestReport) -> None:
    """A rejected batch stores nothing: datasets this ingest registered but stored no
    record for are removed again, and a given DCN is set only where a record landed."""
    for name, did in added.items():
        if name not in used and did not in used:
            store.discard_dataset(did)
            rep.datasets_added -= 1
    for name, did in fill.items():
        if name in used or did in used:
            store.set_dcn(did, dcn[name], {"method": "given at ingest"})


def ingest_records(store: Store, path: str | Path, *, source: str | None = None,
                   dcn: dict[str, float] | None = None,
                   progress: Progress | None = None) -> IngestReport:
    """Ingest own experiment records (JSONL, CSV or Parquet) in one transaction."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path} not found")
    src = source or "user"  # a run's identity must not depend on the file it came in
    dcn = dcn or {}
    rep = IngestReport()
    records: list[ExperimentRecord] = []
    lines: list[int] = []
    wanted: dict[str, dict[str, Any]] = {}
    try:
        rows = list(iter_rows(path))
    except RecordError as e:
        raise IngestError(str(e)) from None
    for line, row in rows:
        if isinstance(row, str):
            rep.rejected.append((line, row))
            continue
        try:
            rec = record_from_row(row, src)
            if rec.dataset in dcn and rec.dataset not in wanted:
                wanted[rec.dataset] = _dataset_info(rec, row)
        except (ValueError, TypeError) as e:
            rep.rejected.append((line, str(e)))
            continue
        records.append(rec)
        lines.append(line)
    with store.transaction():
        added, fill = _ensure_datasets(store, wanted, dcn, src, rep)
        sub = store.add_experiments(records, progress=progress)
        refused = {i for i, _ in sub.rejected}
        used = {str(r.dataset) for i, r in enumerate(records) if i not in refused}
        _settle_datasets(store, added, fill, used, dcn, rep)
    rep.added, rep.skipped, rep.batch = sub.added, sub.skipped, sub.batch
    rep.architectures_added = sub.architectures_added
    rep.rejected.extend((lines[i], why) for i, why in sub.rejected)  # type: ignore[index]
    rep.rejected.sort(key=lambda r: (r[0] if isinstance(r[0], int) else 0))
    rep.seconds = sub.seconds
    return rep


def _dataset_info(rec: ExperimentRecord, row: dict[str, Any]) -> dict[str, Any]:
    """Classes and input shape of a dataset to register, from the row or its arch."""
    k = whole(row.get("num_classes"), "num_classes", 2, 1_000_000)
    shape = _shape(row.get("input_shape"))
    if (k is None or shape is None) and rec.dataset in NB201_DATASETS:
        nb = NB201_DATASETS[rec.dataset]
        nk, size = nb.num_classes, nb.input_size
        k, shape = k or nk, shape or (3, size, size)
    if (k is None or shape is None) and not (isinstance(rec.arch, str)
                                             and is_nb201_string(rec.arch)):
        arch = rec.arch if isinstance(rec.arch, Architecture) else None
        if arch is None:
            arch = parse_arch(rec.arch)
        k, shape = k or arch.num_classes, shape or tuple(arch.input_shape)
    return {"num_classes": k, "input_shape": shape}


# ------------------------------------------------------------------ NAS-Bench-201
def nb201_column(col: str, known: set[str]) -> tuple[str, str] | None:
    """Default (dataset, split) for a column of an NB201 table, or None if unknown."""
    if col in NB201_COLUMNS:
        return NB201_COLUMNS[col]
    m = re.match(r"^(.+)_(test|valid|val)$", col)
    if m:
        name = _ALIASES.get(m.group(1).lower(), m.group(1))
        if name in known or name in NB201_DATASETS:
            return name, "valid" if m.group(2) == "val" else m.group(2)
    return None


def parse_column_items(items: list[str]) -> dict[str, tuple[str, str]]:
    """``["col=dataset:split", ...]`` -> mapping (errors name the bad item)."""
    out = {}
    for item in items:
        col, sep, rest = item.partition("=")
        name, _, split = rest.partition(":")
        split = split or "test"
        if not sep or not col or not name:
            raise IngestError(f"--column {item!r}: expected COLUMN=DATASET[:SPLIT]")
        if split == "val":
            split = "valid"
        if split not in SPLITS:
            raise IngestError(f"--column {item!r}: split must be one of {', '.join(SPLITS)}")
        out[col] = (name, split)
    return out


def ingest_nb201(store: Store, path: str | Path, *, columns: list[str] | None = None,
                 mapping: dict[str, tuple[str, str]] | None = None,
                 dcn: dict[str, float] | None = None, source: str = "nas-bench-201",
                 progress: Progress | None = None, workers: int | None = 1) -> IngestReport:
    """Ingest a NAS-Bench-201 table (cell + percent accuracy columns) in one transaction.

    ``columns`` selects accuracy columns (default: every column that maps);
    ``mapping`` overrides ``column -> (dataset, split)``; ``dcn`` gives DCNs by name.
    ``workers``: processes expanding cells (None: one per thread of the budget; see
    :func:`lde.archs.iter_nb201_rows` for when that is safe).
    """
    t0 = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path} not found")
    dcn = dcn or {}
    mapping = dict(mapping or {})
    rep = IngestReport()
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise IngestError(f"{path} is empty")
        header = [h.strip() for h in header]
        cell_col = next((c for c in ("arch_str", "arch", "cell") if c in header), None)
        if cell_col is None:
            raise IngestError(f"{path}: no cell column (arch_str) in header {header}")
        known = {d.name for d in store.datasets()}
        acc_cols = [c for c in header if c != cell_col]
        if columns:
            bad = [c for c in columns if c not in acc_cols]
            if bad:
                raise IngestError(f"{path}: column(s) {', '.join(bad)} not in the header "
                                  f"({', '.join(acc_cols)})")
            acc_cols = list(columns)
        targets: dict[str, tuple[str, str]] = {}
        for c in acc_cols:
            t = mapping.get(c) or nb201_column(c, known)
            if t is None:
                rep.rejected.append((1, f"column {c!r}: unknown dataset column; map it with "
                                        f"--column {c}=DATASET:SPLIT"))
            else:
                targets[c] = (_ALIASES.get(t[0].lower(), t[0]) if t[0] not in known else t[0],
                              t[1])
        idx = {c: header.index(c) for c in targets}
        ci = header.index(cell_col)
        rows: list[tuple[int, str, list[tuple[str, float]]]] = []
        bad_cells: dict[str, str] = {}
        for rec in reader:
            line = reader.line_num
            if not rec or not any(x.strip() for x in rec):
                continue
            if len(rec) != len(header):
                rep.rejected.append((line, f"expected {len(header)} fields, found {len(rec)}"))
                continue
            cell = rec[ci].strip()
            if cell not in bad_cells:
                try:
                    parse_cell(cell)
                    bad_cells[cell] = ""
                except ArchError as e:
                    bad_cells[cell] = str(e)
            if bad_cells[cell]:
                rep.rejected.append((line, bad_cells[cell]))
                continue
            vals = []
            for c in targets:
                raw = rec[idx[c]].strip()
                try:
                    v = float(raw)
                except ValueError:
                    rep.rejected.append((line, f"column {c!r}: accuracy {raw!r} is not a number"))
                    continue
                if math.isnan(v):
                    rep.rejected.append((line, f"column {c!r}: accuracy is NaN"))
                elif not 0.0 <= v <= 100.0:
                    rep.rejected.append((line, f"column {c!r}: accuracy {v!r}% is outside "
                                               "[0, 100]"))
                else:
                    vals.append((c, v / 100.0))
            rows.append((line, cell, vals))

    # datasets: known ones, or NAS-Bench-201 ones registered with their DCN
    ds_of: dict[str, Any] = {}
    added: dict[str, str] = {}
    fill: dict[str, str] = {}
    with store.transaction():
        for name, _split in set(targets.values()):
            row = store.dataset(name)
            if row is None:
                if name not in NB201_DATASETS:
                    raise IngestError(f"dataset {name!r} (from the column mapping) is not in "
                                      "the LDE and is not a NAS-Bench-201 dataset; register it "
                                      "first")
                k, size = NB201_DATASETS[name].num_classes, NB201_DATASETS[name].input_size
                added[name] = store.upsert_dataset(
                    name, f"nas-bench-201:{name}", None, k, (3, size, size), dcn.get(name),
                    {"method": "given at ingest"} if name in dcn else None, source)
                rep.datasets_added += 1
                row = store.dataset(name)
            elif _given_dcn(store, row, name, dcn):
                fill[name] = row.id
            ds_of[name] = row

        configs: list[tuple[int, int]] = []
        bad_cfg: dict[str, str] = {}
        for name, row in ds_of.items():
            c, h, w = row.input_shape
            if c != 3 or h != w:
                bad_cfg[name] = (f"dataset {name!r} has input {list(row.input_shape)}; NAS-Bench-"
                                 "201 networks take square 3-channel images")
                continue
            if (row.n_classes, h) not in configs:
                configs.append((row.n_classes, h))
        if bad_cfg:
            raise IngestError("; ".join(bad_cfg.values()))
        cells = list(dict.fromkeys(cell for _, cell, vals in rows if vals))
        # networks already stored need no expansion (a repeated ingest is a lookup)
        arch_of = _stored_nb201(store, configs)
        cells = [c for c in cells if any((c, cfg) not in arch_of for cfg in configs)]
        done = 0
        for chunk, got in iter_nb201_rows(cells, configs, _CHUNK, workers):
            for cell, per in zip(chunk, got, strict=True):
                for cfg, r in zip(configs, per, strict=True):
                    arch_of[(cell, cfg)] = r
            done += len(chunk)
            if progress:
                progress("expand cells", done, len(cells))

        cols: dict[str, list[Any]] = {"arch_id": [], "dataset_id": [], "split": [],
                                      "source": [], "accuracy": []}
        for _line, cell, vals in rows:
            for c, v in vals:
                name, split = targets[c]
                ds = ds_of[name]
                cols["arch_id"].append(arch_of[(cell, (ds.n_classes, ds.input_shape[1]))].id)
                cols["dataset_id"].append(ds.id)
                cols["split"].append(split)
                cols["source"].append(source)
                cols["accuracy"].append(v)
        if progress:
            progress("write", 0, 1)
        store.ingest_rows(list(arch_of.values()), experiment_table(cols), kind="nb201",
                          origin=str(path), arch_source=source, report=rep)
        _settle_datasets(store, added, fill, set(cols["dataset_id"]), dcn, rep)
        if progress:
            progress("write", 1, 1)
    rep.rejected.sort(key=lambda r: (r[0] if isinstance(r[0], int) else 0))
    rep.seconds = time.perf_counter() - t0
    return rep


def _stored_nb201(store: Store, configs: list[tuple[int, int]]
                  ) -> dict[tuple[str, tuple[int, int]], ArchRow]:
    """Stored NAS-Bench-201 networks for ``configs``, keyed by (cell, (classes, size))."""
    out: dict[tuple[str, tuple[int, int]], ArchRow] = {}
    for k, size in configs:
        for aid, fam, p, f, n, cell in store._q(
                """SELECT id, family, params, flops, n_layers, nb201_cell FROM architectures
                   WHERE nb201_cell IS NOT NULL AND num_classes = ?
                     AND input_shape = [3, ?, ?]::INTEGER[]""", [k, size, size]):
            out[(cell, (k, size))] = ArchRow(aid, fam, None, p, f, n, k, (3, size, size), cell)
    return out


# ------------------------------------------------------------------------ dispatch
FORMATS = ("auto", "records", "nb201", "lde")


def detect_format(path: Path) -> str:
    """``lde`` for an export folder, ``nb201`` for a CSV with ``arch_str``, else ``records``."""
    if path.is_dir():
        return "lde"
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
        if "arch_str" in [h.strip() for h in header]:
            return "nb201"
    return "records"


def ingest_path(store: Store, path: str | Path, fmt: str = "auto", **kw: Any) -> IngestReport:
    """Ingest ``path`` in ``fmt`` (see :data:`FORMATS`)."""
    path = Path(path)
    if not path.exists():
        raise IngestError(f"{path} not found")
    if fmt not in FORMATS:
        raise LDEError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(path)
    progress = kw.get("progress")
    if fmt == "lde":
        return store.import_parquet(path, progress)
    if fmt == "nb201":
        return ingest_nb201(store, path, columns=kw.get("columns"), mapping=kw.get("mapping"),
                            dcn=kw.get("dcn"), source=kw.get("source") or "nas-bench-201",
                            progress=progress, workers=kw.get("workers", 1))
    return ingest_records(store, path, source=kw.get("source"), dcn=kw.get("dcn"),
                          progress=progress)
