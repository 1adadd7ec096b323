"""Send experiment records to a running service (``tapas ingest --url``).

While ``tapas serve`` runs it holds the database, so other processes add data over
HTTP. Records go in batches; each batch commits on the server on its own, and
re-sending a batch is harmless (ingest is idempotent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

DEFAULT_BATCH = 5_000


class RemoteError(RuntimeError):
    """The server refused a batch or could not be reached; the message says which and why."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None,
                 batch_start: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.batch_start = batch_start


_FIELDS = ("arch", "dataset", "accuracy", "split", "epochs", "hparams", "curve", "seed",
           "source")


def _record_json(rec: Any) -> dict[str, Any]:
    """An ``lde.ExperimentRecord`` as the API's ``ExperimentIn`` JSON."""
    d = {k: getattr(rec, k) for k in _FIELDS}
    arch = d["arch"]
    if hasattr(arch, "to_dict"):
        d["arch"] = arch.to_dict()
    return {k: v for k, v in d.items() if v is not None}


def _where_key(r: dict[str, Any]) -> tuple[int, int, str]:
    w = r["where"]
    return (0, w, "") if isinstance(w, int) else (1, 0, str(w))


def normalize(rows: Iterable[Any], source: str) -> tuple[list[dict[str, Any]],
                                                          list[int], list[tuple[int, str]]]:
    """Rows (record-format dicts, as in a JSONL/CSV file, or ``ExperimentRecord``s) as API
    JSON, parsed exactly as ``tapas ingest`` parses a file (``accuracy_pct``, JSON text
    columns, blanks); returns (records, their input indexes, locally rejected rows)."""
    from lde.ingest import record_from_row

    out, index, rejected = [], [], []
    for i, row in enumerate(rows):
        try:
            rec = record_from_row(dict(row), source) if isinstance(row, dict) else row
            out.append(_record_json(rec))
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            rejected.append((i, str(e)))
            continue
        index.append(i)
    return out, index, rejected


def post_records(url: str, records: Iterable[Any], token: str | None = None, *,
                 source: str = "api", batch_size: int = DEFAULT_BATCH, timeout: float = 300.0,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """POST ``records`` to ``{url}/v1/experiments`` in batches; return the summed report.

    ``records``: record-format dicts (``arch``, ``dataset``, ``accuracy`` or
    ``accuracy_pct``, optional ``split``, ``epochs``, ``hparams``, ``curve``, ``seed``,
    ``source``) or ``lde.ExperimentRecord``s. ``rejected`` entries carry the index in the
    whole input. Raises :class:`RemoteError` when the server is unreachable or refuses a
    batch (e.g. a missing or wrong token); batches sent before it stay committed.
    """
    import httpx

    if not 1 <= batch_size <= 100_000:
        raise ValueError(f"batch_size must be in [1, 100000], got {batch_size}")
    rows, index, local = normalize(records, source)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    total: dict[str, Any] = {"added": 0, "skipped": 0,
                             "rejected": [{"where": w, "reason": r} for w, r in local],
                             "n_rejected": len(local), "architectures_added": 0,
                             "datasets_added": 0, "batches": 0, "seconds": 0.0}
    endpoint = url.rstrip("/") + "/v1/experiments"
    with httpx.Client(timeout=timeout, headers=headers) as client:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            first, last = index[start], index[start + len(chunk) - 1]
            try:
                r = client.post(endpoint, json={"records": chunk})
            except httpx.HTTPError as e:
                raise RemoteError(f"cannot reach {endpoint}: {e}", batch_start=first) from None
            if r.status_code != 200:
                try:
                    err = r.json()["error"]
                    code, msg, path = err.get("code"), err.get("message"), err.get("path")
                except (ValueError, KeyError, TypeError):
                    code, msg, path = None, r.text[:300], None
                where = f" at {path}" if path else ""
                raise RemoteError(f"the server refused records {first}..{last} with "
                                  f"{r.status_code} {code}: {msg}{where}",
                                  r.status_code, code, first)
            rep = r.json()
            for k in ("added", "skipped", "n_rejected", "architectures_added", "datasets_added"):
                total[k] += int(rep.get(k, 0))
            total["seconds"] += float(rep.get("seconds", 0.0))
            total["batches"] += 1
            for rej in rep.get("rejected", []):
                where = rej.get("where")
                if isinstance(where, int) and 0 <= where < len(chunk):
                    where = index[start + where]
                total["rejected"].append({"where": where, "reason": rej.get("reason")})
            if progress is not None:
                progress(start + len(chunk), len(rows))
    total["rejected"].sort(key=_where_key)
    return total


def post_file(url: str, path: str | Path, token: str | None = None, *,
              source: str | None = None, batch_size: int = DEFAULT_BATCH,
              progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """``tapas ingest --url URL FILE``: read own records (JSONL, CSV or Parquet) like the
    local ingest does and send them; ``rejected`` entries name the file's line."""
    from lde.errors import IngestError
    from lde.ingest import _iter_rows

    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path} not found")
    lines, rows, bad = [], [], []
    for line, row in _iter_rows(path):
        if isinstance(row, str):
            bad.append({"where": line, "reason": row})
            continue
        lines.append(line)
        rows.append(row)
    rep = post_records(url, rows, token, source=source or f"file:{path.name}",
                       batch_size=batch_size, progress=progress)
    for r in rep["rejected"]:
        if isinstance(r["where"], int):
            r["where"] = lines[r["where"]]
    rep["rejected"] = sorted(bad + rep["rejected"], key=_where_key)
    rep["n_rejected"] = len(rep["rejected"])
    return rep
