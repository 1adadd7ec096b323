"""NAS-Bench-101 in the default database: 1,000 published cells on CIFAR-10.

The folder holds an LDE export (:mod:`lde.parquet_io`) of the 1,000 NAS-Bench-101 cells
of ``nb101_cifar10.csv``: each cell's network (the benchmark's: stem of 128 channels,
3 stacks of 3 cells, CIFAR-10 classes; the parameter count checked equal to the
published one for every row when built), its *validation* accuracy after 108 epochs as
the label (``split = "valid"``; the table has no test accuracies) and its curve at 4,
12, 36 and 108 epochs (``hparams.curve_epochs``). The dataset is NAS-Bench-201's
``cifar10`` row (:func:`lde.shipped.nb201_dataset`): the same images, so the same DCN.
A derived table of NAS-Bench-101 (Apache-2.0; see ``NOTICE.md``).

``python -m lde.nb101 ../shared/data/nb101_cifar10.csv`` rebuilds the folder.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from lde.shipped import ShippedExport, nb201_dataset, write_export
from lde.store import IngestReport
from tapas.core.records import ExperimentRecord
from tapas.core.spaces import get_space

NB101_DIR = Path(__file__).resolve().parent / "export"
SOURCE = "nas-bench-101"
EXPORT = ShippedExport(SOURCE, NB101_DIR, "NAS-Bench-101 data")
#: The table's curve points, in epochs.
CURVE_EPOCHS = (4, 12, 36, 108)


def records(csv_path: Path) -> list[ExperimentRecord]:
    """One record per row, its network built and its parameter count checked."""
    space = get_space("nb101")
    out = []
    with Path(csv_path).open(newline="") as f:
        for line, r in enumerate(csv.DictReader(f), 2):
            arch = space.build({"space": "nb101", "matrix": json.loads(r["matrix"]),
                                "ops": json.loads(r["ops"])},
                               (3, 32, 32), 10)
            if arch.params != int(r["params"]):
                raise ValueError(f"{csv_path}:{line}: {arch.params:,} parameters built, "
                                 f"{int(r['params']):,} published")
            curve = [float(r[f"val_acc_{e}"]) for e in CURVE_EPOCHS]
            out.append(ExperimentRecord(arch, "cifar10", curve[-1], split="valid",
                                        epochs=CURVE_EPOCHS[-1], curve=curve,
                                        hparams={"curve_epochs": list(CURVE_EPOCHS)},
                                        source=SOURCE))
    return out


def build(csv_path: Path, out: Path = NB101_DIR) -> IngestReport:
    """Rebuild the shipped export from ``nb101_cifar10.csv``."""
    return write_export(records(csv_path), [nb201_dataset("cifar10")], out)
