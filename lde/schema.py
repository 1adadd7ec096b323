"""DuckDB schema of the LDE, its version and the migrations between versions.

Version history:

* 1: datasets, architectures, experiments, predictors.
* 2: architecture ``family`` (identity without input shape and class count, so one
  NAS-Bench-201 cell on three datasets is one family) and ``nb201_cell``; an
  ``ingest_batches`` log of every committed batch; ``canonical_json`` may be null
  (NAS-Bench-201 networks are rebuilt from their cell).

A database is migrated in one transaction when a writer opens it; a read-only
open of an old database asks for a writable open first.
"""

from __future__ import annotations

import json
from typing import Any

from lde.archs import family_of

SCHEMA_VERSION = 2

_V1 = [
    """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS datasets (
        id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL UNIQUE,
        fingerprint VARCHAR,
        n_samples BIGINT,
        n_classes INTEGER NOT NULL,
        input_shape INTEGER[] NOT NULL,
        dcn DOUBLE,
        dcn_meta VARCHAR,
        source VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
    """CREATE TABLE IF NOT EXISTS architectures (
        id VARCHAR PRIMARY KEY,
        canonical_json VARCHAR NOT NULL,
        params BIGINT NOT NULL,
        flops BIGINT NOT NULL,
        n_layers INTEGER NOT NULL,
        num_classes INTEGER NOT NULL,
        input_shape INTEGER[] NOT NULL,
        source VARCHAR NOT NULL,
        added_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
    """CREATE TABLE IF NOT EXISTS experiments (
        seq BIGINT NOT NULL,
        arch_id VARCHAR NOT NULL,
        dataset_id VARCHAR NOT NULL,
        split VARCHAR NOT NULL,
        seed BIGINT,
        source VARCHAR NOT NULL,
        accuracy DOUBLE NOT NULL,
        epochs INTEGER,
        hparams VARCHAR,
        curve DOUBLE[],
        ingested_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS predictors (
        id VARCHAR PRIMARY KEY,
        dcn DOUBLE NOT NULL,
        tau DOUBLE NOT NULL,
        dcn_lo DOUBLE NOT NULL,
        dcn_hi DOUBLE NOT NULL,
        snapshot VARCHAR NOT NULL,
        n_train BIGINT NOT NULL,
        metrics VARCHAR NOT NULL,
        artifact VARCHAR NOT NULL,
        provenance VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
]

_V2 = [
    "ALTER TABLE architectures ADD COLUMN family VARCHAR",
    "ALTER TABLE architectures ADD COLUMN nb201_cell VARCHAR",
    "ALTER TABLE architectures ALTER COLUMN canonical_json DROP NOT NULL",
    """CREATE TABLE IF NOT EXISTS ingest_batches (
        batch BIGINT PRIMARY KEY,
        kind VARCHAR NOT NULL,
        origin VARCHAR,
        added BIGINT NOT NULL,
        skipped BIGINT NOT NULL,
        rejected BIGINT NOT NULL,
        seq_lo BIGINT,
        seq_hi BIGINT,
        ingested_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
]

# MIGRATIONS[v] brings a database from version v - 1 to v (version 0: empty file).
MIGRATIONS: dict[int, list[str]] = {1: _V1, 2: _V2}


def current_version(con: Any) -> int | None:
    """The stored schema version; 0 for an empty database; None for a foreign one."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()}
    if not tables:
        return 0
    if "meta" not in tables:
        return None
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    return int(row[0][0]) if row else None


def _fill_families(con: Any) -> None:
    """Version 2 adds ``family``: compute it for architectures stored by version 1."""
    rows = con.execute("SELECT id, canonical_json FROM architectures").fetchall()
    if rows:
        con.executemany("UPDATE architectures SET family = ? WHERE id = ?",
                        [[family_of(json.loads(cj)), i] for i, cj in rows])


def migrate(con: Any, from_version: int, to_version: int = SCHEMA_VERSION) -> None:
    """Apply the migrations ``from_version + 1 .. to_version`` in one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        for v in range(from_version + 1, to_version + 1):
            for stmt in MIGRATIONS[v]:
                con.execute(stmt)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(v)])
            if v == 2:
                _fill_families(con)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
