"""Errors raised by the LDE; each says what is wrong and how to proceed."""

from __future__ import annotations

from tapas.core.errors import Busy, DatasetExists, TapasError


class LDEError(TapasError):
    """Base class: a problem with the database or with data handed to it."""


class LockedError(LDEError, Busy):
    """The DuckDB file is held by another process (DuckDB allows one writer)."""

    def __init__(self, path: str, detail: str = "") -> None:
        self.path = path
        self.detail = detail
        holder = f" ({detail})" if detail else ""
        super().__init__(
            f"the experiment database {path} is locked by another process{holder}. "
            "DuckDB allows one writing process at a time: a running `tapas serve` (or another "
            "`tapas ingest`) holds it. Stop that process and retry, or send the data to the "
            "running server over HTTP instead of opening the file directly."
        )


class DatabaseError(LDEError):
    """DuckDB failed on a query (callers never see ``duckdb.Error``); a failed write
    transaction was rolled back, so nothing was written."""


class SchemaError(LDEError):
    """The file is not an LDE, or was written by a newer version of tapas."""


class OldSchemaError(SchemaError):
    """A read-only open of a database written with an older schema: one writable open
    migrates it (a reader cannot)."""


class IngestError(LDEError):
    """A whole input cannot be read (missing file, missing columns, bad mapping)."""


class DatasetConflict(LDEError, DatasetExists):
    """A dataset name already stands for other content (other data, or a DCN, shape or
    class count that would change): registering it again would silently rewrite what
    its experiments describe. ``differences`` says what differs."""

    def __init__(self, name: str, differences: list[str]) -> None:
        self.name = name
        self.differences = list(differences)
        super().__init__(
            f"dataset {name!r} is already stored with other content ({'; '.join(differences)}); "
            "nothing was changed. Store these data under another name, or replace the stored "
            f"DCN explicitly with `tapas dcn IMAGES --as {name}` (the old DCN is kept in its "
            "dcn_meta.replaced)")
