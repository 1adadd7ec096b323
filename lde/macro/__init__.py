"""NAS-Bench-Macro in the default database: its 3,969 networks on CIFAR-10, three seeds each.

The folder holds an LDE export (:mod:`lde.parquet_io`) of every network NAS-Bench-Macro
trained (the 3,969 canonical strings of its 6,561; the others are the same networks):
each network (8 MobileNetV2-block layers in 3 stages, built by
:mod:`tapas.core.arch.macro`, parameter count checked equal to the published one for
every row when built) and its three runs (seeds 0-2) as three experiments; the label is
their mean, as for every network with seeds. The accuracy is the benchmark's: the *best*
CIFAR-10 test accuracy over 50 epochs (``hparams.metric``). The dataset is
NAS-Bench-201's ``cifar10`` row (:func:`lde.shipped.nb201_dataset`). A derived table of
NAS-Bench-Macro (Apache-2.0; see ``NOTICE.md``).

``python -m lde.macro ../shared/data/nas_bench_macro_cifar10.csv`` rebuilds the folder.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lde.shipped import ShippedExport, nb201_dataset, write_export
from lde.store import IngestReport
from tapas.core.records import ExperimentRecord
from tapas.core.spaces import get_space

MACRO_DIR = Path(__file__).resolve().parent / "export"
SOURCE = "nas-bench-macro"
EXPORT = ShippedExport(SOURCE, MACRO_DIR, "NAS-Bench-Macro data")
HPARAMS = {"metric": "best CIFAR-10 test accuracy over 50 epochs", "epochs": 50}


def records(csv_path: Path) -> list[ExperimentRecord]:
    """Three records (seeds 0-2) per trained network, its parameter count checked."""
    space = get_space("macro")
    out = []
    with Path(csv_path).open(newline="") as f:
        for line, r in enumerate(csv.DictReader(f), 2):
            if r["is_trained_arch"] != "1":
                continue  # an equivalent string of a network listed on its own row
            arch = space.build(r["trained_arch"], (3, 32, 32), 10)
            if arch.params != int(r["params"]):
                raise ValueError(f"{csv_path}:{line}: {arch.params:,} parameters built, "
                                 f"{int(r['params']):,} published")
            out.extend(ExperimentRecord(arch, "cifar10", float(r[f"test_acc_seed{s}"]),
                                        epochs=50, seed=s, hparams=HPARAMS, source=SOURCE)
                       for s in range(3))
    return out


def build(csv_path: Path, out: Path = MACRO_DIR) -> IngestReport:
    """Rebuild the shipped export from ``nas_bench_macro_cifar10.csv``."""
    return write_export(records(csv_path), [nb201_dataset("cifar10")], out)
