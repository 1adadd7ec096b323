"""Architectures: storing their rows, and rebuilding networks by id (cached process-wide)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from lde.archs import ArchRow, arch_row
from lde.errors import LDEError
from lde.store.connection import Connection, unregister
from lde.tables import arch_table
from tapas.core.arch import Architecture, from_nb201
from tapas.core.arch.cache import budgeted, network_bytes
from tapas.core.lazy import LazyImport

pa = LazyImport("pyarrow")

_ARCHS = budgeted("lde-archs")
"""Networks rebuilt from their canonical JSON, by id (content-addressed, so shared by every
open store), under their share of TAPAS_CACHE_MB (:mod:`tapas.core.arch.cache`)."""


class Architectures(Connection):
    """The ``architectures`` table."""

    def insert_architectures(self, rows: Sequence[ArchRow], source: str) -> int:
        """Add architecture rows not yet stored (one transaction); how many were new."""
        if not rows:
            return 0
        with self.transaction() as con:
            con.register("_new_archs", arch_table(rows, source))
            try:
                before = con.execute("SELECT count(*) FROM architectures").fetchall()[0][0]
                con.execute(
                    """INSERT INTO architectures (id, canonical_json, params, flops, n_layers,
                           num_classes, input_shape, source, added_at, family, nb201_cell)
                       SELECT n.id, n.canonical_json, n.params, n.flops, n.n_layers,
                              n.num_classes, n.input_shape, n.source, current_timestamp,
                              n.family, n.nb201_cell
                       FROM (SELECT * FROM _new_archs
                             QUALIFY row_number() OVER (PARTITION BY id) = 1) n
                       ANTI JOIN architectures a ON a.id = n.id""")
                after = con.execute("SELECT count(*) FROM architectures").fetchall()[0][0]
            finally:
                unregister(con, "_new_archs")
        return int(after - before)

    def add_architectures(self, archs: Iterable[Architecture], source: str = "user") -> int:
        """Store architectures (already present ones are skipped); returns how many were new."""
        return self.insert_architectures([arch_row(a) for a in archs], source)

    def architectures(self, ids: Iterable[str]) -> dict[str, Architecture]:
        """Rebuild :class:`~tapas.core.arch.Architecture` objects by id (unknown ids are absent).

        NAS-Bench-201 networks come from :func:`tapas.core.arch.from_nb201` (cached process-wide);
        others from their canonical JSON (cached process-wide, under TAPAS_CACHE_MB).
        """
        want = list(dict.fromkeys(str(i) for i in ids))
        out: dict[str, Architecture] = {}
        for i in want:
            hit = _ARCHS.get(i)
            if hit is not None:
                out[i] = hit
        todo = [i for i in want if i not in out]
        if not todo:
            return out
        with self._lock:
            self._con.register("_ids", pa.table({"id": pa.array(todo, pa.string())}))
            try:
                rows = self._con.execute(
                    """SELECT a.id, a.canonical_json, a.nb201_cell, a.num_classes, a.input_shape
                       FROM architectures a SEMI JOIN _ids USING (id)""").fetchall()
            finally:
                unregister(self._con, "_ids")
        for aid, cj, cell, k, shape in rows:
            if cell is not None:
                arch = from_nb201(cell, int(k), int(shape[1]), in_channels=int(shape[0]))
            else:
                arch = Architecture.from_canonical(json.loads(cj))
            if arch.id != aid:
                raise LDEError(f"architecture {aid} does not match its stored description "
                               f"(rebuilt as {arch.id}); the database is inconsistent")
            if cell is None:
                _ARCHS.put(aid, arch, network_bytes(len(arch.layers), len(aid)))
            out[aid] = arch
        return out
