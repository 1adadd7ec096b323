"""What a new database starts with: the starter experiments and NAS-Bench-201's results.

A fresh install's predictions rest on these alone, so both are seeded when a database
is created (:class:`tapas.pipeline.Pipeline`): the starter LDE (:mod:`lde.starter`,
tapas's own training runs on small offline datasets) and the NAS-Bench-201 test
accuracies (:mod:`lde.nb201`, CIFAR-sized networks). Seeding is idempotent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lde.nb201 import seed_nb201
from lde.starter import seed_starter

if TYPE_CHECKING:
    from lde.store import IngestReport, Store


def seed_default(store: Store) -> list[IngestReport]:
    """Merge every shipped data set into ``store``; returns the reports of those present."""
    reports = [seed_starter(store), seed_nb201(store)]
    return [r for r in reports if r is not None]
