"""NAS-Bench-201 in the default database: real benchmark results, shipped as an LDE export.

The folder holds an LDE export (see :mod:`lde.parquet_io`) of the benchmark's final
*test* accuracies (200 epochs, mean over seeds) of all 15,625 cells on CIFAR-10,
CIFAR-100 and ImageNet16-120: 46,875 experiments whose networks are stored by cell
string (rebuilt with :func:`tapas.core.arch.from_nb201`). It is a derived table of
NATS-Bench (MIT licence, see ``NOTICE.md``), the one piece of shared data the package
ships, so that a fresh install knows the CIFAR-sized networks most users score.

Each dataset's DCN follows the reference-cell convention (``dcn_meta.method ==
"reference-cell"``): the raw images are not shipped, so no probe can run on them and
the DCN is the test accuracy of one fixed cell (:data:`tapas.core.arch.nb201.REFERENCE_CELL`),
which is what a probe network measures. A user who has the images can replace it with
the probe's value: ``tapas dcn IMAGES --as cifar10`` (``Pipeline.recharacterize``; the
row's experiments stay, the replaced value is kept in ``dcn_meta["replaced"]``).

``python -m lde.nb201 ../shared/data/nb201.csv`` rebuilds the folder from the CSV.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lde.ingest import ingest_nb201
from lde.shipped import ShippedExport, build_export
from lde.store import IngestReport, Store
from tapas.core.arch.nb201 import REFERENCE_CELL

NB201_DIR = Path(__file__).resolve().parent / "export"
SOURCE = "nas-bench-201"
#: CSV column -> dataset name in the LDE.
COLUMNS = {"cifar10_test": "cifar10", "cifar100_test": "cifar100",
           "imagenet16_test": "ImageNet16-120"}


EXPORT = ShippedExport(SOURCE, NB201_DIR, "NAS-Bench-201 data")


def available(directory: Path | None = None) -> bool:
    return EXPORT.at(directory).available()


def seed_nb201(store: Store, directory: Path | None = None) -> IngestReport | None:
    """Merge the shipped NAS-Bench-201 results into ``store`` (idempotent)."""
    return EXPORT.at(directory).seed(store)


def reference_dcns(csv_path: Path) -> dict[str, float]:
    """Each dataset's DCN: the reference cell's test accuracy in [0, 1]."""
    with Path(csv_path).open(newline="") as f:
        for row in csv.DictReader(f):
            if row["arch_str"] == REFERENCE_CELL:
                return {name: float(row[col]) / 100.0 for col, name in COLUMNS.items()}
    raise ValueError(f"{csv_path}: the reference cell {REFERENCE_CELL} is missing")


def build(csv_path: Path, out: Path = NB201_DIR) -> IngestReport:
    """Rebuild the shipped export from ``nb201.csv`` (the test columns only)."""
    dcn = reference_dcns(csv_path)

    def fill(store: Store) -> IngestReport:
        rep = ingest_nb201(store, csv_path, columns=list(COLUMNS), dcn=dcn, source=SOURCE)
        for name, v in dcn.items():
            row = store.dataset(name)
            assert row is not None
            store.set_dcn(row.id, v, {"method": "reference-cell", "cell": REFERENCE_CELL,
                                      "metric": "NAS-Bench-201 test accuracy, 200 epochs"})
        return rep

    return build_export(out, fill)
