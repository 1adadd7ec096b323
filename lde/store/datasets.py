"""Datasets: registering one under the identity rule (:func:`identity_differences`), its
DCN, and reading the rows back."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from lde.errors import DatasetConflict, LDEError
from lde.rows import DatasetRow, check_accuracy, dataset_id_for
from lde.store.connection import Connection
from tapas.core.records import whole


def identity_differences(row: DatasetRow, fingerprint: str | None, n_classes: int | None,
                         input_shape: Sequence[int] | None, dcn: float | None, *,
                         probing: bool = False) -> list[str]:
    """What registering ``row.name`` for this content would change; empty when it is the
    same dataset. The one rule for a dataset's identity (uploads, ``tapas dcn``,
    ``tapas ingest --dcn``, experiment runs): equal fingerprints are the same data (a
    re-probe may update the DCN); otherwise the name must keep its fingerprint, class
    count, input shape and DCN. ``dcn=None`` keeps the stored DCN, unless ``probing``:
    a DCN is about to be computed for data the row cannot vouch for."""
    if row.fingerprint and fingerprint:
        if row.fingerprint == fingerprint:
            return []
        return [f"stored fingerprint {row.fingerprint[:16]}, these data {fingerprint[:16]}"]
    diffs = []
    if n_classes is not None and int(n_classes) != int(row.n_classes):
        diffs.append(f"stored with {row.n_classes} classes, these have {int(n_classes)}")
    if input_shape is not None and tuple(int(v) for v in input_shape) != tuple(row.input_shape):
        diffs.append(f"stored input shape {'x'.join(map(str, row.input_shape))}, these "
                     f"{'x'.join(str(int(v)) for v in input_shape)}")
    if row.dcn is not None:
        how = (row.dcn_meta or {}).get("method") or "unknown method"
        if dcn is not None and abs(float(dcn) - float(row.dcn)) > 1e-9:
            diffs.append(f"stored DCN {row.dcn:.4f} ({how}), new DCN {float(dcn):.4f}")
        elif dcn is None and probing:
            diffs.append(f"stored DCN {row.dcn:.4f} ({how}) was not computed from these data")
    return diffs



class Datasets(Connection):
    """The ``datasets`` table."""

    def check_dataset(self, name: str, fingerprint: str | None, n_classes: int | None,
                      input_shape: Sequence[int] | None, dcn: float | None = None, *,
                      probing: bool = False) -> DatasetRow | None:
        """The stored dataset ``name`` (None when the name is free); raise
        :class:`~lde.errors.DatasetConflict` when this content may not take it
        (:func:`identity_differences`). Callers check before slow work; :meth:`upsert_dataset`
        checks again when it writes."""
        did = dataset_id_for(name)
        row = self.dataset(did)
        if row is not None and row.id == did:
            diffs = identity_differences(row, fingerprint, n_classes, input_shape, dcn,
                                         probing=probing)
            if diffs:
                raise DatasetConflict(name, diffs)
            return row
        return None

    def upsert_dataset(self, name: str, fingerprint: str | None, n_samples: int | None,
                       n_classes: int, input_shape: Sequence[int], dcn: float | None = None,
                       dcn_meta: dict[str, Any] | None = None, source: str = "user") -> str:
        """Add a dataset, or update one by name when it is the same dataset; returns its id.
        ``dcn=None`` keeps a stored DCN. Other content under a stored name raises
        :class:`~lde.errors.DatasetConflict` (:func:`identity_differences`), never a silent
        overwrite; :meth:`replace_dcn` is the explicit way to replace a DCN."""
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise LDEError(f"dataset name must be a non-empty string of at most 200 "
                           f"characters, got {name!r}")
        k = whole(n_classes, "n_classes", 2)
        if k is None:
            raise LDEError("n_classes is required")
        shape = [int(x) for x in input_shape]
        if len(shape) != 3 or min(shape) < 1:
            raise LDEError(f"input_shape must be [channels, height, width], got {input_shape!r}")
        if dcn is not None:
            dcn = check_accuracy(dcn, "dcn")
        ns = None if isinstance(n_samples, float) and math.isnan(n_samples) else whole(
            n_samples, "n_samples")  # a missing count read from Parquet is NaN
        did = dataset_id_for(name)
        meta = json.dumps(dcn_meta, sort_keys=True) if dcn_meta is not None else None
        with self.transaction() as con:
            self.check_dataset(name, fingerprint, k, shape, dcn)
            con.execute(
                """INSERT INTO datasets (id, name, fingerprint, n_samples, n_classes, input_shape,
                       dcn, dcn_meta, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET
                       fingerprint = coalesce(excluded.fingerprint, fingerprint),
                       n_samples = coalesce(excluded.n_samples, n_samples),
                       n_classes = excluded.n_classes, input_shape = excluded.input_shape,
                       dcn = coalesce(excluded.dcn, dcn),
                       dcn_meta = CASE WHEN excluded.dcn IS NULL THEN dcn_meta
                                       ELSE excluded.dcn_meta END,
                       source = excluded.source, updated_at = now()""",
                [did, name, fingerprint, ns, k, shape, dcn, meta, source])
        return did

    def discard_dataset(self, dataset_id: str) -> None:
        """Remove a dataset no experiment refers to (one an ingest registered but stored no
        record for: a rejected batch stores nothing); ``LDEError`` when it has experiments."""
        with self.transaction() as con:
            n = con.execute("SELECT count(*) FROM experiments WHERE dataset_id = ?",
                            [dataset_id]).fetchone()[0]
            if n:
                raise LDEError(f"dataset {dataset_id!r} has {n} experiments; not removed")
            con.execute("DELETE FROM datasets WHERE id = ?", [dataset_id])

    def set_dcn(self, dataset_id: str, dcn: float, meta: dict[str, Any] | None = None) -> None:
        """Store a dataset's DCN and how it was computed (changes the snapshot id)."""
        row = self.dataset(dataset_id)
        if row is None:
            raise LDEError(f"unknown dataset {dataset_id!r}")
        d = check_accuracy(dcn, "dcn")
        with self.transaction() as con:
            con.execute("UPDATE datasets SET dcn = ?, dcn_meta = ?, updated_at = current_timestamp "
                        "WHERE id = ?", [d, json.dumps(meta or {}, sort_keys=True), row.id])

    def replace_dcn(self, dataset_id: str, dcn: float, meta: dict[str, Any]) -> DatasetRow:
        """Replace a dataset's DCN and ``dcn_meta`` in one transaction, keeping what it
        replaces in ``dcn_meta["replaced"]`` (``dcn``, ``method`` and the previous
        ``meta``). The row (id, name, shape, classes, source) and its experiments stay as
        they are; the write changes the snapshot id and every cached DCN table. Returns
        the updated row."""
        d = check_accuracy(dcn, "dcn")
        with self.transaction() as con:
            rows = con.execute(f"SELECT {self._DS_COLS} FROM datasets WHERE id = ?",
                               [dataset_id]).fetchall()
            if not rows:
                raise LDEError(f"unknown dataset {dataset_id!r}")
            old = self._ds(rows[0])
            prev = old.dcn_meta or {}
            new = {**meta, "replaced": {"dcn": old.dcn, "method": prev.get("method"),
                                        "meta": prev or None}}
            con.execute("UPDATE datasets SET dcn = ?, dcn_meta = ?, updated_at = now() "
                        "WHERE id = ?", [d, json.dumps(new, sort_keys=True), old.id])
        row = self.dataset(old.id)
        assert row is not None
        return row

    _DS_COLS = "id, name, fingerprint, n_samples, n_classes, input_shape, dcn, dcn_meta, source"

    @staticmethod
    def _ds(r: tuple) -> DatasetRow:
        return DatasetRow(r[0], r[1], r[2], r[3], int(r[4]), tuple(r[5]), r[6],
                          json.loads(r[7]) if r[7] else None, r[8])

    def dataset(self, id_or_name: str) -> DatasetRow | None:
        rows = self._q(f"SELECT {self._DS_COLS} FROM datasets WHERE id = ? OR name = ? "
                       "ORDER BY (id = ?) DESC LIMIT 1", [id_or_name, id_or_name, id_or_name])
        return self._ds(rows[0]) if rows else None

    def dataset_by_fingerprint(self, fingerprint: str) -> DatasetRow | None:
        rows = self._q(f"SELECT {self._DS_COLS} FROM datasets WHERE fingerprint = ? "
                       "ORDER BY updated_at DESC LIMIT 1", [fingerprint])
        return self._ds(rows[0]) if rows else None

    def datasets(self) -> list[DatasetRow]:
        return [self._ds(r) for r in self._q(f"SELECT {self._DS_COLS} FROM datasets ORDER BY name")]
