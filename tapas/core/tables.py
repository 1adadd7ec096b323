"""Rows of results as CSV text or a Parquet file: the one writer behind every
``--format csv|parquet`` and :meth:`tapas.app.search.SearchResult.save`.

Pure Python until a Parquet file is written (pyarrow is imported then), so the
client-only install can import it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tapas.core.lazy import LazyImport

pa = LazyImport("pyarrow")
pq = LazyImport("pyarrow.parquet")


def _cell(v: Any) -> Any:
    """Nested values (genotype dicts, lists) as JSON text, so every column is flat."""
    return json.dumps(v, sort_keys=True) if isinstance(v, dict | list | tuple) else v


def csv_text(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as CSV with a header (nested values as JSON text)."""
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(v) for k, v in r.items()})
    return buf.getvalue()


def write_parquet(rows: Sequence[dict[str, Any]], path: str | Path,
                  metadata: dict[str, Any] | None = None) -> Path:
    """Rows as a Parquet file, written atomically; ``metadata`` (any JSON) rides in the
    file's key-value metadata under ``tapas`` (read back with :func:`parquet_metadata`)."""
    p = Path(path)
    table = pa.Table.from_pylist([{k: _cell(v) for k, v in r.items()} for r in rows])
    if metadata is not None:
        table = table.replace_schema_metadata({"tapas": json.dumps(metadata, default=str)})
    tmp = p.with_name(p.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(p)
    return p


def write_text(text: str, path: str | Path) -> Path:
    """``text`` to ``path`` atomically (a temporary file renamed at the end)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(p)
    return p


def parquet_metadata(path: str | Path) -> Any:
    """The JSON stored by :func:`write_parquet` (None when the file has none)."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[b"tapas"]) if b"tapas" in meta else None
