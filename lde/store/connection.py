"""The open DuckDB file: opening and locking, the schema check, transactions, and DuckDB's
errors as :mod:`lde.errors` (callers import no duckdb); every other part of
:class:`lde.store.Store` reads and writes through these."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Self

from lde.errors import DatabaseError, LDEError, LockedError, OldSchemaError, SchemaError
from lde.schema import SCHEMA_VERSION, current_version, migrate
from tapas.core.config import get_settings, thread_budget
from tapas.core.lazy import LazyImport

duckdb = LazyImport("duckdb")
pa = LazyImport("pyarrow")


def _holder(message: str) -> str:
    """Who holds the file, from DuckDB's lock error (empty when it does not say)."""
    m = re.search(r"held in (.+?) \(PID (\d+)\)", message)
    return f"PID {m.group(2)}, {Path(m.group(1)).name}" if m else ""


def unregister(con: Any, name: str) -> None:
    """Drop a registered Arrow view; quiet when the transaction is already aborted."""
    with suppress(duckdb.Error):
        con.unregister(name)


class Connection:
    """One DuckDB connection, serialised by a re-entrant lock, with the schema checked
    (and migrated, when writable) on open."""

    def __init__(self, path: str | Path | None = None, read_only: bool = False) -> None:
        if path is None:
            path = get_settings().database
        self.path = Path(path).expanduser()
        self.read_only = read_only
        self._lock = threading.RLock()
        self._depth = 0
        self._generation = 0  # bumped by every write transaction (invalidates caches)
        if read_only and not self.path.exists():
            raise LDEError(f"no experiment database at {self.path} (ingest something first)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as e:
            if "lock" in str(e).lower():
                raise LockedError(str(self.path), _holder(str(e))) from None
            raise LDEError(f"cannot open the experiment database {self.path}: {e}") from None
        except duckdb.Error as e:
            raise SchemaError(f"{self.path} is not a usable DuckDB database: {e}") from None

        with suppress(duckdb.Error):
            self._con.execute("SET enable_progress_bar = false")
            # the process's thread budget (TAPAS_THREADS), not every core of the machine
            self._con.execute(f"SET threads = {int(thread_budget())}")
        try:
            self._init_schema()
        except BaseException:
            self._con.close()
            raise

    def _init_schema(self) -> None:
        v = current_version(self._con)
        if v is None:
            raise SchemaError(f"{self.path} is a DuckDB file but not a tapas experiment database")
        if v > SCHEMA_VERSION:
            raise SchemaError(f"{self.path} has schema version {v}, newer than this tapas "
                              f"understands ({SCHEMA_VERSION}); upgrade tapas")
        if v < SCHEMA_VERSION:
            if self.read_only:
                raise OldSchemaError(f"{self.path} has schema version {v}; open it once for "
                                     f"writing (e.g. `tapas lde stats`) to migrate it to "
                                     f"{SCHEMA_VERSION}")
            migrate(self._con, v)

    @property
    def schema_version(self) -> int:
        return int(self._q1("SELECT value FROM meta WHERE key = 'schema_version'")[0])

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, read_only={self.read_only})"

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """All writes inside commit together or not at all (nestable)."""
        with self._lock:
            if self.read_only:
                raise LDEError(f"{self.path} is open read-only")
            if self._depth:
                self._depth += 1
                try:
                    yield self._con
                finally:
                    self._depth -= 1
                return

            self._con.execute("BEGIN TRANSACTION")
            self._depth = 1
            try:
                yield self._con
            except BaseException as e:
                self._depth = 0
                self._generation += 1
                self._con.execute("ROLLBACK")
                if isinstance(e, duckdb.Error):
                    raise DatabaseError(f"database error in {self.path} (nothing was "
                                        f"written): {e}") from e
                raise
            self._depth = 0
            self._generation += 1
            try:
                self._con.execute("COMMIT")
            except duckdb.Error as e:
                raise DatabaseError(f"database error in {self.path} (nothing was written): "
                                    f"{e}") from e

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """DuckDB's errors as :class:`~lde.errors.DatabaseError` (callers import no duckdb)."""
        try:
            yield
        except duckdb.Error as e:
            raise DatabaseError(f"database error in {self.path}: {e}") from e

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """The DuckDB connection, held exclusively for a bulk read (e.g. an export); its
        errors come out as :class:`~lde.errors.DatabaseError`."""
        with self._lock, self._errors():
            yield self._con

    def _q(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self._lock, self._errors():
            return self._con.execute(sql, params or []).fetchall()

    def _q1(self, sql: str, params: Sequence[Any] | None = None) -> tuple:
        rows = self._q(sql, params)
        return rows[0] if rows else ()

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run a read query and return Arrow (for notebooks and ad-hoc analysis)."""
        with self._lock, self._errors():
            return self._con.sql(query, params=params or None).to_arrow_table()
