"""What a new database starts with: the starter experiments and NAS-Bench-201's results.

A fresh install's predictions rest on these alone, so both are seeded when a database
is created (:class:`tapas.app.pipeline.Pipeline`): the starter LDE (:mod:`lde.starter`,
tapas's own training runs on small offline datasets) and the NAS-Bench-201 test
accuracies (:mod:`lde.nb201`, CIFAR-sized networks). Seeding is idempotent.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lde.nb201 import NB201_DIR, seed_nb201
from lde.starter import STARTER_DIR, seed_starter

if TYPE_CHECKING:
    from lde.store import IngestReport, Store


def seed_default(store: Store) -> list[IngestReport]:
    """Merge every shipped data set into ``store``; returns the reports of those present."""
    reports = [seed_starter(store), seed_nb201(store)]
    return [r for r in reports if r is not None]


def shipped_counts() -> dict[str, Any]:
    """What a new database will hold, from the shipped exports' manifests (no database is
    opened): ``datasets``, ``architectures``, ``families`` and ``experiments`` summed over
    the data sets present (they share no rows), and ``sources``, each one's name and
    counts. Lets ``tapas lde stats`` answer on a fresh home without seeding."""
    keys = ("datasets", "architectures", "families", "experiments")
    total: dict[str, Any] = dict.fromkeys(keys, 0)
    sources = []
    for name, folder in (("starter", STARTER_DIR), ("nas-bench-201", NB201_DIR)):
        try:
            counts = json.loads((folder / "manifest.json").read_text())["counts"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # left out of this installation: not seeded either
        sources.append({"name": name, **{k: int(counts.get(k, 0)) for k in keys}})
        for k in keys:
            total[k] += int(counts.get(k, 0))
    return {**total, "sources": sources}
