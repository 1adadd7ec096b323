"""Experiment records as users write them, parsed without a database.

The record format (one experiment per JSONL line, CSV row or Parquet row; see
:mod:`lde.ingest` for the columns) is read here, where the CLI, the HTTP client and the
LDE's own ingest share it: :func:`iter_rows` reads a file, :func:`record_from_row`
validates one row into an :class:`ExperimentRecord` (``ValueError`` naming the field),
:func:`normalize` turns rows into the API's ``ExperimentIn`` JSON. Pure Python: no
duckdb, no torch (``pyarrow`` only to read a Parquet file).
"""

from __future__ import annotations

import csv
import json
import math
import numbers
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tapas.core.config import MAX_CURVE_LEN, MAX_EPOCHS, MAX_HPARAMS_BYTES, SEED_RANGE
from tapas.core.errors import Invalid
from tapas.core.lazy import LazyImport

pq = LazyImport("pyarrow.parquet")

SPLITS = ("test", "valid", "train")
RECORD_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet")
_FIELDS = ("arch", "dataset", "accuracy", "split", "epochs", "hparams", "curve", "seed",
           "source")


class RecordError(Invalid):
    """A whole input cannot be read (missing file, unknown format, missing columns)."""


@dataclass
class ExperimentRecord:
    """One training run to ingest.

    ``arch``: an :class:`~tapas.core.arch.Architecture`, its canonical dict, IR JSON text
    or a NAS-Bench-201 cell string (expanded for the dataset's classes and input).
    ``dataset``: id or name of a dataset already in the store. ``accuracy`` and
    ``curve`` are fractions in [0, 1].
    """

    arch: Any
    dataset: str
    accuracy: float
    split: str = "test"
    epochs: int | None = None
    hparams: dict[str, Any] | None = None
    curve: list[float] | None = None
    seed: int | None = None
    source: str = "user"


def iter_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row dict) per record; a string instead of a dict is a parse error."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        with path.open(encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    yield i, f"malformed JSON at column {e.colno}: {e.msg}"
                    continue
                yield i, obj if isinstance(obj, dict) else f"expected an object, got {obj!r:.40}"
    elif suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames:
                raise RecordError(f"{path} is empty")
            check_columns(path, reader.fieldnames)
            start = 2
            for row in reader:
                yield start, {k: v for k, v in row.items() if k is not None}
                start = reader.line_num + 1
    elif suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow raises several types for unreadable files
            raise RecordError(f"{path} is not a readable Parquet file: {e}") from None
        check_columns(path, table.column_names)
        for i, row in enumerate(table.to_pylist(), 1):
            yield i, row
    else:
        raise RecordError(f"{path}: unknown record format {suffix!r} (use .jsonl, .csv or "
                          ".parquet)")


def check_columns(path: Path, cols: list[str]) -> None:
    missing = [c for c in ("arch", "dataset") if c not in cols]
    if "accuracy" not in cols and "accuracy_pct" not in cols:
        missing.append("accuracy (or accuracy_pct)")
    if missing:
        raise RecordError(f"{path}: missing column(s) {', '.join(missing)}; found "
                          f"{', '.join(cols)}")


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _num(v: Any, what: str) -> float:
    """A finite number (NaN, infinity and 1e999 are errors naming ``what``)."""
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            raise ValueError(f"{what} must be a number, got {v[:40]!r}") from None
    elif isinstance(v, bool) or not isinstance(v, numbers.Real):  # numpy's numbers too
        raise ValueError(f"{what} must be a number, got {v!r:.40}")
    else:
        try:
            f = float(v)
        except OverflowError:
            raise ValueError(f"{what} is out of range ({str(v)[:40]})") from None
    if not math.isfinite(f):
        raise ValueError(f"{what} must be a finite number (not NaN or infinity), got {v!r:.40}")
    return f


def fraction(v: Any, what: str = "accuracy") -> float:
    """A finite number in [0, 1] (an accuracy, a curve point, a DCN); ValueError naming
    ``what`` otherwise."""
    f = _num(v, what)
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"{what} {f!r} is outside [0, 1]")
    return f


def whole(v: Any, what: str, lo: int = 0, hi: int | None = None) -> int | None:
    """An integer in [lo, hi] (None for a missing value); exact for integers beyond
    float precision (a 64-bit seed)."""
    if _blank(v):
        return None
    if isinstance(v, str) and v.strip().lstrip("+-").isdigit():
        v = int(v)  # exact: a float cannot hold every 64-bit integer (2**63 - 1)
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        i = int(v)
    else:
        f = _num(v, what)
        if f != int(f):
            raise ValueError(f"{what} must be an integer, got {v!r:.40}")
        i = int(f)
    if hi is None and i < lo:
        raise ValueError(f"{what} must be >= {lo}, got {str(v)[:40]}")
    if hi is not None and not lo <= i <= hi:
        span = " (a signed 64-bit integer)" if (lo, hi) == SEED_RANGE else ""
        raise ValueError(f"{what} must lie in [{lo}, {hi}]{span}, got {str(v)[:40]}")
    return i


def check_hparams(hp: Any) -> dict[str, Any] | None:
    """Hyper-parameters: a JSON object without NaN or infinity, at most
    :data:`~tapas.core.config.MAX_HPARAMS_BYTES` as JSON."""
    if hp is None:
        return None
    if not isinstance(hp, dict):
        raise ValueError(f"hparams must be an object, got {hp!r:.40}")
    try:
        size = len(json.dumps(hp, allow_nan=False))
    except (ValueError, TypeError) as e:
        raise ValueError(f"hparams must be JSON without NaN or infinity ({e})") from None
    if size > MAX_HPARAMS_BYTES:
        raise ValueError(f"hparams take {size:,} bytes as JSON; at most {MAX_HPARAMS_BYTES:,}")
    return hp


def check_record(rec: ExperimentRecord) -> ExperimentRecord:
    """The one rule set of a record's values, whoever built it (a file's row, an API body,
    Python code): ``rec`` with its numbers as Python numbers, or ValueError naming the
    field. The architecture is the store's to check (against the dataset's shape)."""
    if _blank(rec.dataset) or not isinstance(rec.dataset, str):
        raise ValueError(f"dataset must be a name, got {rec.dataset!r}")
    acc = fraction(rec.accuracy)
    curve = rec.curve
    if curve is not None:
        if isinstance(curve, str) or not hasattr(curve, "__len__"):
            raise ValueError(f"curve must be a list of accuracies, got {curve!r:.40}")
        if len(curve) > MAX_CURVE_LEN:
            raise ValueError(f"curve has {len(curve):,} points; at most {MAX_CURVE_LEN:,}")
        curve = [fraction(x, f"curve[{j}]") for j, x in enumerate(curve)]
    if rec.split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {rec.split!r}")
    if not isinstance(rec.source, str) or not rec.source:
        raise ValueError(f"source must be a non-empty string, got {rec.source!r}")
    return ExperimentRecord(arch=rec.arch, dataset=rec.dataset.strip(), accuracy=acc,
                            split=rec.split, epochs=whole(rec.epochs, "epochs", 0, MAX_EPOCHS),
                            hparams=check_hparams(rec.hparams), curve=curve,
                            seed=whole(rec.seed, "seed", *SEED_RANGE), source=rec.source)


def _json_field(v: Any, what: str) -> Any:
    if isinstance(v, str):
        try:
            return json.loads(v)
        except json.JSONDecodeError as e:
            raise ValueError(f"{what} is not valid JSON ({e.msg})") from None
    return v


def record_from_row(row: dict[str, Any], source: str) -> ExperimentRecord:
    """One record from a parsed row (see the module docstring): the text of a file's
    columns parsed (blanks, JSON text, ``accuracy_pct``, ``val``), then the values checked
    by :func:`check_record`; ValueError names the field."""
    arch = row.get("arch")
    if _blank(arch):
        raise ValueError("arch is missing")
    if isinstance(arch, str) and arch.lstrip().startswith("{"):
        arch = _json_field(arch, "arch")
    dataset = row.get("dataset")
    if _blank(dataset) or not isinstance(dataset, str):
        raise ValueError(f"dataset must be a name, got {dataset!r}")
    pct = not _blank(row.get("accuracy_pct"))
    if pct and not _blank(row.get("accuracy")):
        raise ValueError("give either accuracy or accuracy_pct, not both")
    raw = row.get("accuracy_pct") if pct else row.get("accuracy")
    if _blank(raw):
        raise ValueError("accuracy is missing")
    name = "accuracy_pct" if pct else "accuracy"
    acc = _num(raw, name)
    if pct and not 0 <= acc <= 100:
        raise ValueError(f"accuracy_pct {acc!r} is outside [0, 100]")
    scale = 100.0 if pct else 1.0
    curve = None if _blank(row.get("curve")) else _json_field(row["curve"], "curve")
    if curve is not None:
        if not isinstance(curve, list):
            raise ValueError(f"curve must be a list, got {curve!r:.40}")
        if len(curve) > MAX_CURVE_LEN:  # before the points are read
            raise ValueError(f"curve has {len(curve):,} points; at most {MAX_CURVE_LEN:,}")
        curve = [_num(x, f"curve[{j}]") / scale for j, x in enumerate(curve)]
    hp = None if _blank(row.get("hparams")) else _json_field(row["hparams"], "hparams")
    split = row.get("split")
    split = "test" if _blank(split) else str(split).strip()
    if split == "val":
        split = "valid"
    src = row.get("source")
    return check_record(ExperimentRecord(
        arch=arch, dataset=dataset, accuracy=acc / scale, split=split,
        epochs=whole(row.get("epochs"), "epochs", 0, MAX_EPOCHS), hparams=hp, curve=curve,
        seed=whole(row.get("seed"), "seed", *SEED_RANGE),
        source=source if _blank(src) else str(src)))


def record_json(rec: Any) -> dict[str, Any]:
    """An :class:`ExperimentRecord` (or a record-format dict) as the API's ``ExperimentIn``
    JSON (architecture objects as their IR dict, empty fields left out)."""
    d = dict(rec) if isinstance(rec, dict) else {k: getattr(rec, k, None) for k in _FIELDS}
    arch = d.get("arch")
    if arch is not None and not isinstance(arch, str | dict):
        to_dict = getattr(arch, "to_dict", None)
        if not callable(to_dict):
            raise TypeError(f"cannot send {type(arch).__name__} as an architecture")
        d["arch"] = to_dict()
    out = {k: v for k, v in d.items() if v is not None}
    where = nonfinite_path(out)
    if where is not None:  # JSON has no NaN or infinity: name the field, not the request
        raise ValueError(f"field '{where}': NaN or infinity is not a JSON number")
    return out


def nonfinite_path(obj: Any, path: str = "") -> str | None:
    """The path (``hparams.lr``, ``curve[3]``) of the first NaN or infinite float in
    ``obj`` (dicts and lists walked), or None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (path or "value")
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = nonfinite_path(v, f"{path}.{k}" if path else str(k))
            if found is not None:
                return found
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            found = nonfinite_path(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def normalize(rows: Iterable[Any], source: str) -> tuple[list[dict[str, Any]], list[int],
                                                          list[tuple[int, str]]]:
    """Rows (record-format dicts, as in a JSONL/CSV file, or ``ExperimentRecord``s) as API
    JSON, parsed exactly as ``tapas ingest`` parses a file (``accuracy_pct``, JSON text
    columns, blanks); returns (records, their input indexes, locally rejected rows)."""
    out, index, rejected = [], [], []
    for i, row in enumerate(rows):
        try:
            rec = record_from_row(dict(row), source) if isinstance(row, dict) else row
            out.append(record_json(rec))
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            rejected.append((i, str(e)))
            continue
        index.append(i)
    return out, index, rejected


def read_records(path: str | Path) -> tuple[list[int], list[dict[str, Any]],
                                            list[dict[str, Any]]]:
    """A records file as (line numbers, row dicts, unparsable lines as ``{where, reason}``);
    :class:`RecordError` when the file cannot be read as records at all."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{path} not found")
    lines, rows, bad = [], [], []
    for line, row in iter_rows(path):
        if isinstance(row, str):
            bad.append({"where": line, "reason": row})
            continue
        lines.append(line)
        rows.append(row)
    return lines, rows, bad


__all__ = ["RECORD_SUFFIXES", "SPLITS", "ExperimentRecord", "RecordError", "check_columns",
           "check_hparams", "check_record", "fraction", "iter_rows", "normalize",
           "read_records", "record_from_row", "record_json", "whole"]
