"""What a store holds: the snapshot id, counts and per-dataset statistics."""

from __future__ import annotations

import hashlib
from typing import Any

from lde.schema import SCHEMA_VERSION
from lde.store.connection import Connection


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
                "input_shapes": dict(sorted(shapes.items())), "per_dataset": datasets}
