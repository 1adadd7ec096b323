"""Arrow tables of architectures and experiments: the shape of one vectorised write."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lde.archs import ArchRow
from tapas.core.lazy import LazyImport

pa = LazyImport("pyarrow")


def arch_table(rows: Sequence[ArchRow], source: str) -> pa.Table:
    return pa.table({
        "id": pa.array([r.id for r in rows], pa.string()),
        "family": pa.array([r.family for r in rows], pa.string()),
        "canonical_json": pa.array([r.canonical_json for r in rows], pa.string()),
        "params": pa.array([r.params for r in rows], pa.int64()),
        "flops": pa.array([r.flops for r in rows], pa.int64()),
        "n_layers": pa.array([r.n_layers for r in rows], pa.int32()),
        "num_classes": pa.array([r.num_classes for r in rows], pa.int32()),
        "input_shape": pa.array([list(r.input_shape) for r in rows], pa.list_(pa.int32())),
        "nb201_cell": pa.array([r.nb201_cell for r in rows], pa.string()),
        "source": pa.array([source] * len(rows), pa.string()),
    })


EXPERIMENT_COLUMNS = ("arch_id", "dataset_id", "split", "seed", "source", "accuracy", "epochs",
                      "hparams", "curve")


def experiment_table(cols: dict[str, Sequence[Any]]) -> pa.Table:
    """Arrow table of experiments in the store's column types (``hparams`` as JSON text)."""
    types = {"arch_id": pa.string(), "dataset_id": pa.string(), "split": pa.string(),
             "seed": pa.int64(), "source": pa.string(), "accuracy": pa.float64(),
             "epochs": pa.int32(), "hparams": pa.string(), "curve": pa.list_(pa.float64())}
    n = len(cols["arch_id"])
    return pa.table({k: pa.array(cols[k] if k in cols else [None] * n, types[k])
                     for k in EXPERIMENT_COLUMNS})


__all__ = ["EXPERIMENT_COLUMNS", "arch_table", "experiment_table"]
