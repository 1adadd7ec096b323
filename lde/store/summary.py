"""What a store holds: the snapshot id, counts and per-dataset statistics."""

from __future__ import annotations

import hashlib
from typing import Any

from lde.schema import SCHEMA_VERSION
from lde.store.connection import Connection

#: The search space of each published benchmark's runs, by experiment source (the
#: shipped tables, :mod:`lde.default_data`, and what ``tapas ingest`` names them).
SOURCE_SPACES = {"nas-bench-201": "nb201", "nas-bench-101": "nb101", "nas-bench-macro": "macro"}
#: A run whose space nothing names.
OTHER_SPACE = "other"


class Summary(Connection):
    """Read-only totals over every table."""

    def snapshot_id(self) -> str:
        """Identifies the content the filters see (experiments and DCNs); changes on writes."""
        n, hi = self._q1("SELECT count(*), coalesce(max(seq), 0) FROM experiments")
        ds = self._q1("SELECT coalesce(string_agg(id || '=' || coalesce(CAST(dcn AS VARCHAR), '-')"
                      ", ',' ORDER BY id), '') FROM datasets")[0]
        return hashlib.sha256(f"v{SCHEMA_VERSION}|{n}|{hi}|{ds}".encode()).hexdigest()[:16]

    def counts(self) -> dict[str, int]:
        r = self._q1("""SELECT (SELECT count(*) FROM datasets),
                               (SELECT count(*) FROM architectures),
                               (SELECT count(DISTINCT family) FROM architectures),
                               (SELECT count(*) FROM experiments),
                               (SELECT count(*) FROM predictors)""")
        return dict(zip(("datasets", "architectures", "families", "experiments", "predictors"),
                        (int(x) for x in r), strict=True))

    def stats(self) -> dict[str, Any]:
        """Totals, the DCN range, the datasets per input shape, and one summary per dataset
        (DCN, experiment counts by split, accuracy)."""
        per = self._q("""SELECT d.id, d.name, d.dcn, d.n_classes, d.input_shape, d.source,
                                count(e.seq), count(DISTINCT e.arch_id),
                                count(e.seq) FILTER (WHERE e.split = 'test'),
                                count(e.seq) FILTER (WHERE e.split = 'valid'),
                                count(e.seq) FILTER (WHERE e.split = 'train'),
                                avg(e.accuracy), max(e.accuracy)
                         FROM datasets d LEFT JOIN experiments e ON e.dataset_id = d.id
                         GROUP BY ALL ORDER BY d.dcn NULLS LAST, d.name""")
        keys = ("id", "name", "dcn", "n_classes", "input_shape", "source", "experiments",
                "architectures", "test", "valid", "train", "mean_accuracy", "max_accuracy")
        datasets = [dict(zip(keys, r, strict=True)) for r in per]
        shapes: dict[str, int] = {}
        for d in datasets:
            d["input_shape"] = list(d["input_shape"])
            key = "x".join(map(str, d["input_shape"]))
            shapes[key] = shapes.get(key, 0) + 1
        dcns = [d["dcn"] for d in datasets if d["dcn"] is not None]
        return {"path": str(self.path), "schema_version": self.schema_version,
                "snapshot": self.snapshot_id(), **self.counts(),
                "dcn_min": min(dcns, default=None), "dcn_max": max(dcns, default=None),
                "input_shapes": dict(sorted(shapes.items())), "spaces": self.spaces(),
                "per_dataset": datasets}

    def spaces(self) -> dict[str, dict[str, int]]:
        """Per search space, the datasets and experiments the LDE holds. A run's space is
        the one its job names (``hparams.space``: the experiment runner's runs), else its
        published benchmark's (:data:`SOURCE_SPACES`), else ``nb201`` for a stored
        NAS-Bench-201 cell, else :data:`OTHER_SPACE`."""
        known = " ".join(f"WHEN '{src}' THEN '{sp}'" for src, sp in SOURCE_SPACES.items())
        rows = self._q(f"""
            SELECT coalesce(CASE WHEN json_valid(e.hparams)
                                 THEN json_extract_string(e.hparams, '$.space') END,
                            CASE e.source {known} END,
                            CASE WHEN a.nb201_cell IS NOT NULL THEN 'nb201' END,
                            '{OTHER_SPACE}') AS space,
                   count(DISTINCT e.dataset_id), count(*)
            FROM experiments e LEFT JOIN architectures a ON a.id = e.arch_id
            GROUP BY space ORDER BY space""")
        return {sp: {"datasets": int(nd), "experiments": int(n)} for sp, nd, n in rows}
