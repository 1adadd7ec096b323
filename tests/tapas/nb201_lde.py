"""A small real LDE for the client/search/adapter tests: NAS-Bench-201 test accuracies
of a few hundred cells on CIFAR-10 and CIFAR-100 (from ../shared/data/nb201.csv)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

#: DCNs given at ingest (the reference cell's accuracy, as in benchmarks.evaluate).
DCNS = {"cifar10": 0.8634, "cifar100": 0.5865}
TINY = {"hidden_size": 8, "epochs": 3, "n_members": 2, "device": "cpu"}


def build_nb201_lde(shared_data: Path, db: Path, n_cells: int = 150, seed: int = 0) -> Path:
    """Create ``db`` holding ``n_cells`` random cells on CIFAR-10 and CIFAR-100."""
    from lde import Store
    from lde.ingest import ingest_nb201

    with (shared_data / "nb201.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    keep = np.random.default_rng(seed).permutation(len(rows))[:n_cells]
    path = db.parent / "nb201-small.csv"
    db.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch_str", "cifar10_test", "cifar100_test"])
        for i in sorted(keep):
            w.writerow([rows[i]["arch_str"], rows[i]["cifar10_test"], rows[i]["cifar100_test"]])
    with Store(db) as store:
        rep = ingest_nb201(store, path, dcn=DCNS)
        assert rep.added == 2 * n_cells, rep
    return db
