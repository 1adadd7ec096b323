"""The experiments table a predictor trains on: one row per (network, dataset) with the
dataset's DCN and final accuracy, from any ``.parquet``/``.csv`` export
(:func:`load_table_file`) or from NAS-Bench-201's ``nb201.csv`` (:func:`load_nb201`).
``tapas train`` reads it; the benchmarks' evaluation scenarios run over it.

NAS-Bench-201 (``load_nb201``): the raw images are not available, so no ProbeNet
can run on them. Each dataset's DCN is instead the final test accuracy of one
fixed *reference network* trained on it: the benchmark's ResNet-like cell
``|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|``. This is
what a probe network is (a fixed small network's accuracy ranks datasets by
difficulty); it costs one label of the target dataset (one trained network), and
that cell is marked (``Table.reference``) so it is never scored against itself.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tapas.core.arch import NB201_BY_KEY, REFERENCE_CELL, Architecture, from_nb201
from tapas.core.lazy import LazyImport
from tapas.core.spaces import parse_arch as load_arch

pq = LazyImport("pyarrow.parquet")

#: Where ``nb201.csv`` and the other shared tables lie in a checkout: ``../shared/data``
#: beside the repository (``tapas train --nb201`` and the benchmarks read it by default).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

NB201_DATASETS = NB201_BY_KEY
"""The NAS-Bench-201 datasets by the benchmarks' short key (``tapas.core.arch``'s table)."""


@dataclass
class Table:
    """Experiments: one row per (network, dataset) with the dataset's DCN and final accuracy."""

    archs: list[Architecture]
    datasets: np.ndarray
    dcns: np.ndarray
    accuracies: np.ndarray
    names: list[str] = field(default_factory=list)
    """Optional per-row label (e.g. the NAS-Bench-201 cell string)."""
    reference: np.ndarray | None = None
    """Rows that define a DCN (never scored)."""

    def __post_init__(self) -> None:
        n = len(self.archs)
        self.datasets = np.asarray(self.datasets, dtype=object)
        self.dcns = np.asarray(self.dcns, dtype=np.float64)
        self.accuracies = np.asarray(self.accuracies, dtype=np.float64)
        if not (len(self.datasets) == len(self.dcns) == len(self.accuracies) == n):
            raise ValueError("archs, datasets, dcns and accuracies must have equal lengths")
        if self.reference is None:
            self.reference = np.zeros(n, dtype=bool)

    def dataset_dcn(self) -> dict[str, float]:
        return {str(ds): float(self.dcns[self.datasets == ds][0])
                for ds in dict.fromkeys(self.datasets.tolist())}

    def take(self, idx: np.ndarray) -> tuple[list[Architecture], np.ndarray, np.ndarray]:
        return [self.archs[i] for i in idx], self.dcns[idx], self.accuracies[idx]


def load_nb201(data_dir: Path, datasets: Sequence[str] = tuple(NB201_DATASETS),
               limit: int | None = None, progress: Callable[[int], None] | None = None
               ) -> Table:
    """The NAS-Bench-201 table from ``nb201.csv`` (accuracies / 100; see the module doc)."""
    path = Path(data_dir) / "nb201.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if limit is not None:
        ref = [r for r in rows if r["arch_str"] == REFERENCE_CELL]
        rng = np.random.default_rng(0)
        keep = rng.permutation(len(rows))[:limit]
        rows = ref + [rows[i] for i in sorted(keep) if rows[i]["arch_str"] != REFERENCE_CELL]
    archs, dsets, dcns, accs, names, refs = [], [], [], [], [], []
    for ds in datasets:
        spec = NB201_DATASETS[ds]
        col = spec.column
        ref_rows = [r for r in rows if r["arch_str"] == REFERENCE_CELL]
        if not ref_rows:
            raise ValueError(f"{path}: the reference cell {REFERENCE_CELL} is missing")
        dcn = float(ref_rows[0][col]) / 100.0
        for r in rows:
            archs.append(from_nb201(r["arch_str"], num_classes=spec.num_classes,
                                    input_size=spec.input_size))
            dsets.append(ds)
            dcns.append(dcn)
            accs.append(float(r[col]) / 100.0)
            names.append(r["arch_str"])
            refs.append(r["arch_str"] == REFERENCE_CELL)
            if progress is not None:
                progress(1)
    return Table(archs, np.array(dsets, dtype=object), np.array(dcns), np.array(accs), names,
                 np.array(refs))


def load_table_file(paths: Sequence[Path] | Path) -> Table:
    """A table from Parquet or CSV files with columns ``arch`` (IR JSON or a NAS-Bench-201
    cell string), ``dataset``, ``dcn`` and ``accuracy`` (in [0, 1]); optional
    ``num_classes``/``input_size`` for cell strings. This is how other experiment
    collections (the starter LDE, exports of an LDE) plug into the scenarios."""
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    recs: list[dict[str, Any]] = []
    for p in files:
        if p.suffix == ".parquet":
            recs += pq.read_table(p).to_pylist()
        elif p.suffix == ".csv":
            with p.open(newline="") as f:
                recs += list(csv.DictReader(f))
        else:
            raise ValueError(f"{p}: expected a .parquet or .csv experiments table")
    if not recs:
        raise ValueError("the experiments table is empty")
    need = {"arch", "dataset", "dcn", "accuracy"}
    missing = need - set(recs[0])
    if missing:
        raise ValueError(f"the experiments table lacks column(s) {sorted(missing)}")
    archs, dsets, dcns, accs = [], [], [], []
    for i, r in enumerate(recs):
        try:
            shape = None
            if r.get("input_size"):
                s = int(r["input_size"])
                shape = (3, s, s)
            nc = int(r["num_classes"]) if r.get("num_classes") else None
            archs.append(load_arch(r["arch"], num_classes=nc, input_shape=shape))
            dcns.append(float(r["dcn"]))
            accs.append(float(r["accuracy"]))
        except (ValueError, TypeError) as e:
            raise ValueError(f"experiments table row {i}: {e}") from None
        dsets.append(str(r["dataset"]))
    return Table(archs, np.array(dsets, dtype=object), np.array(dcns), np.array(accs))
