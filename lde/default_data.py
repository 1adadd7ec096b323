"""What a new database starts with: the starter experiments and published benchmark tables.

A fresh install's predictions rest on these alone, so all are seeded when a database is
created (:class:`tapas.app.pipeline.Pipeline`): the starter LDE (:mod:`lde.starter`,
tapas's own training runs on small offline datasets) and derived tables of published
benchmarks (:mod:`lde.nb201` NAS-Bench-201 on three datasets, :mod:`lde.nb101`
NAS-Bench-101 and :mod:`lde.macro` NAS-Bench-Macro on CIFAR-10). Seeding is idempotent.
"""

from __future__ import annotations

from typing import Any

from lde import macro, nb101, nb201, starter
from lde.shipped import COUNT_KEYS, ShippedExport
from lde.store import IngestReport, Store

#: Every export a new database merges, in order.
SHIPPED: tuple[ShippedExport, ...] = (starter.EXPORT, nb201.EXPORT, nb101.EXPORT, macro.EXPORT)


def seed_default(store: Store) -> list[IngestReport]:
    """Merge every shipped data set into ``store``; returns the reports of those present."""
    reports = [export.seed(store) for export in SHIPPED]
    return [r for r in reports if r is not None]


def shipped_counts() -> dict[str, Any]:
    """What a new database will hold, from the shipped exports' manifests (no database is
    opened): ``datasets`` (distinct: the published CIFAR-10 tables share one),
    ``architectures``, ``families`` and ``experiments`` summed over the exports present
    (they share no networks), and ``sources``, each one's name and counts. Lets
    ``tapas lde stats`` answer on a fresh home without seeding."""
    sources = [c for c in (export.counts() for export in SHIPPED) if c is not None]
    names = {n for c in sources for n in c["dataset_names"]}
    total: dict[str, Any] = {"datasets": len(names)}
    total.update({k: sum(c[k] for c in sources) for k in COUNT_KEYS})
    out = [{"name": c["name"], "datasets": len(c["dataset_names"]),
            **{k: c[k] for k in COUNT_KEYS}} for c in sources]
    return {**total, "sources": out}
