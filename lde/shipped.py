"""Exports shipped inside the package: one rule to seed, count and rebuild each of them.

The default database is the merge of several LDE exports (:mod:`lde.parquet_io`) that
ship with the package: tapas's own starter runs and derived tables of published
benchmarks. Each is a folder with a ``manifest.json``; an installation that leaves one
out starts without it (a warning, not an error). The published tables on CIFAR-10 share
NAS-Bench-201's dataset row (same images, same reference-cell DCN), so a network of any
of these spaces is ranked against the others on one dataset.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lde.store import IngestReport, Store
from tapas.core.lazy import LazyImport
from tapas.core.records import ExperimentRecord

pq = LazyImport("pyarrow.parquet")

#: The NAS-Bench-201 export, whose dataset rows the other CIFAR tables reuse.
NB201_EXPORT = Path(__file__).resolve().parent / "nb201" / "export"
COUNT_KEYS = ("architectures", "families", "experiments")


@dataclass(frozen=True)
class ShippedExport:
    """One shipped export: its source name, folder and what a warning calls it."""

    name: str
    directory: Path
    what: str

    def available(self) -> bool:
        return all((self.directory / f).is_file() for f in ("manifest.json", "datasets.parquet"))

    def at(self, directory: Path | None) -> ShippedExport:
        """The same export read from ``directory`` (default: where it ships)."""
        return self if directory is None else replace(self, directory=Path(directory))

    def seed(self, store: Store) -> IngestReport | None:
        """Merge it into ``store`` (idempotent); None when this installation left it out."""
        return store.seed_shipped(self.directory, self.available(), self.what)

    def counts(self) -> dict[str, Any] | None:
        """The manifest's counts and the dataset names (None when left out), read without
        opening a database."""
        try:
            counts = json.loads((self.directory / "manifest.json").read_text())["counts"]
            names = pq.read_table(self.directory / "datasets.parquet",
                                  columns=["name"]).column("name").to_pylist()
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return {"name": self.name, "dataset_names": sorted(names),
                **{k: int(counts.get(k, 0)) for k in COUNT_KEYS}}


def nb201_dataset(name: str) -> dict[str, Any]:
    """NAS-Bench-201's row for ``name`` (``cifar10``...), as :meth:`Store.upsert_dataset`
    keywords, so another table on the same images lands on the same dataset."""
    rows = pq.read_table(NB201_EXPORT / "datasets.parquet").to_pylist()
    for r in rows:
        if r["name"] == name:
            return {"name": r["name"], "fingerprint": r["fingerprint"], "n_samples": None,
                    "n_classes": r["n_classes"], "input_shape": list(r["input_shape"]),
                    "dcn": r["dcn"], "dcn_meta": json.loads(r["dcn_meta"]),
                    "source": r["source"]}
    raise ValueError(f"{NB201_EXPORT}: no dataset {name!r}")


def build_export(out: Path, fill: Callable[[Store], IngestReport]) -> IngestReport:
    """Fill a throwaway store with ``fill`` and write it as the export at ``out``, which is
    replaced whole, or left as it was when ``fill`` raises."""
    with tempfile.TemporaryDirectory() as tmp:
        with Store(Path(tmp) / "build.duckdb") as store:
            rep = fill(store)
            staged = Path(tmp) / "export"
            store.export_parquet(staged)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(staged, out)
    return rep


def write_export(records: Sequence[ExperimentRecord], datasets: Sequence[dict[str, Any]],
                 out: Path) -> IngestReport:
    """Build an export at ``out`` from ``records`` on ``datasets``
    (:meth:`Store.upsert_dataset` keywords). Every record must be stored: a rejected one
    is a bug in the table's reader, so it raises and ``out`` is left as it was."""
    def fill(store: Store) -> IngestReport:
        for d in datasets:
            store.upsert_dataset(**d)
        rep = store.add_experiments(records)
        if rep.rejected:
            i, why = rep.rejected[0]
            raise ValueError(f"{len(rep.rejected)} record(s) rejected, the first (#{i}): {why}")
        return rep

    return build_export(out, fill)
