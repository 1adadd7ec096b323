"""Benchmark of the LDE: Parquet ingest rate, DCN-filter latency, NAS-Bench-201 ingest time.

1. A source database gets ``rows`` synthetic experiments (2,000 small real
   architectures x ``n_datasets`` datasets x seeds) through the Arrow bulk path,
   is exported to partitioned Parquet, and the export is imported into a fresh
   database: ``ingest_rows_per_s`` is experiments / import seconds (validation,
   deduplication and the transaction included).
2. ``filter_by_dcn(dcn, 0.05)`` is timed ``repeats`` times at random DCNs on the
   imported database: ``filter_p50_ms`` (and p90, and the adaptive filter's p50),
   answered from the store's in-memory columns as a running service would;
   ``filter_cold_ms`` is the first query (which loads them) and
   ``filter_sql_p50_ms`` the same query sent to DuckDB every time.
3. The three test columns of the NAS-Bench-201 table (46,875 experiments) are
   ingested into a fresh database: ``nb201_ingest_s`` (and a repeated, idempotent
   ingest: ``nb201_reingest_s``). Null when the table is absent.

Everything is written under a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lde import Store
from lde.archs import arch_row
from lde.ingest import ingest_nb201
from lde.store import experiment_table
from predictor.table import SHARED_DATA
from tapas.core.arch import Architecture

SHARED_NB201 = SHARED_DATA / "nb201.csv"
NB201_TEST_COLUMNS = ["cifar10_test", "cifar100_test", "imagenet16_test"]


def synthetic_archs(n: int, num_classes: int = 10, seed: int = 0) -> list[Any]:
    """``n`` distinct small conv nets (real, validated IR) for (3, 32, 32) inputs."""
    rng = np.random.default_rng(seed)
    seen: dict[str, Any] = {}
    while len(seen) < n:
        layers: list[dict[str, Any]] = []
        for _ in range(int(rng.integers(1, 5))):
            layers += [{"op": "conv", "out": int(rng.choice([8, 12, 16, 24, 32, 48, 64])),
                        "kernel": int(rng.choice([1, 3, 5])),
                        "stride": int(rng.choice([1, 1, 2]))}, {"op": "bn"}, {"op": "relu"}]
        layers += [{"op": "gap"}, {"op": "linear", "out": num_classes}]
        a = Architecture.from_dict({"input": {"shape": [3, 32, 32], "num_classes": num_classes},
                                    "layers": layers})
        seen.setdefault(a.id, a)
    return list(seen.values())


def build_synthetic(store: Any, rows: int, n_datasets: int, seed: int = 0) -> None:
    """Fill ``store`` with ``rows`` experiments over ``n_datasets`` datasets (Arrow bulk path)."""
    rng = np.random.default_rng(seed)
    archs = synthetic_archs(2000, seed=seed)
    dcns = np.clip(np.linspace(0.05, 0.95, n_datasets) + rng.normal(0, 0.005, n_datasets),
                   0, 1)
    ds_ids = [store.upsert_dataset(f"synthetic-{j:02d}", f"synthetic:{j}", 10_000, 10,
                                   (3, 32, 32), float(dcns[j]), {"method": "synthetic"},
                                   "bench") for j in range(n_datasets)]
    ids = np.array([a.id for a in archs], dtype=object)
    n_seeds = -(-rows // (len(archs) * n_datasets))
    k = np.arange(rows)
    arch_idx = k % len(archs)
    ds_idx = (k // len(archs)) % n_datasets
    seeds = k // (len(archs) * n_datasets)
    assert seeds.max() < n_seeds
    acc = np.clip(dcns[ds_idx] * 0.8 + rng.normal(0, 0.05, rows), 0, 1)
    table = experiment_table({
        "arch_id": ids[arch_idx], "dataset_id": np.array(ds_ids, dtype=object)[ds_idx],
        "split": ["test"] * rows, "seed": seeds, "source": ["bench"] * rows,
        "accuracy": acc, "epochs": np.full(rows, 12)})
    store.ingest_rows([arch_row(a) for a in archs], table, kind="bench")


def run(rows: int = 1_000_000, n_datasets: int = 50, repeats: int = 50,
        nb201: Path | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        workers: int | None = None) -> dict[str, Any]:
    """Run the three measurements; returns the JSON-ready result (stable keys).

    ``workers`` is passed to the NB201 ingest (None: one per core, as the CLI does).
    """
    def tick(phase: str, done: int, total: int) -> None:
        if progress:
            progress(phase, done, total)

    res: dict[str, Any] = {"rows": rows, "datasets": n_datasets}
    with tempfile.TemporaryDirectory(prefix="tapas-bench-lde-") as tmp:
        tmp_p = Path(tmp)
        tick("build synthetic LDE", 0, 1)
        with Store(tmp_p / "source.duckdb") as src:
            build_synthetic(src, rows, n_datasets)
            src.export_parquet(tmp_p / "export")
        tick("build synthetic LDE", 1, 1)

        tick("import Parquet", 0, 1)
        with Store(tmp_p / "target.duckdb") as dst:
            t0 = time.perf_counter()
            rep = dst.import_parquet(tmp_p / "export")
            dt = time.perf_counter() - t0
            if rep.added != rows:
                raise RuntimeError(f"import added {rep.added} of {rows} rows")
            res["ingest_rows_per_s"] = rows / dt
            res["ingest_s"] = dt
            tick("import Parquet", 1, 1)

            rng = np.random.default_rng(1)
            times, sizes, adaptive = [], [], []
            t0 = time.perf_counter()
            dst.filter_by_dcn(0.5, 0.05)  # the first query loads the in-memory columns
            res["filter_cold_ms"] = (time.perf_counter() - t0) * 1e3
            for i in range(repeats):
                target = float(rng.uniform(0.1, 0.9))
                t0 = time.perf_counter()
                s = dst.filter_by_dcn(target, 0.05)
                times.append(time.perf_counter() - t0)
                sizes.append(len(s))
                t0 = time.perf_counter()
                dst.filter_adaptive(target, min_experiments=50_000, min_datasets=2)
                adaptive.append(time.perf_counter() - t0)
                tick("filter queries", i + 1, repeats)
            res["filter_p50_ms"] = statistics.median(times) * 1e3
            res["filter_p90_ms"] = float(np.percentile(times, 90)) * 1e3
            res["filter_rows_p50"] = int(statistics.median(sizes))
            res["adaptive_p50_ms"] = statistics.median(adaptive) * 1e3
        with Store(tmp_p / "target.duckdb", cache_rows=0) as dst:  # DuckDB query each time
            sql_times = []
            for i in range(max(5, repeats // 5)):
                target = float(rng.uniform(0.1, 0.9))
                t0 = time.perf_counter()
                dst.filter_by_dcn(target, 0.05)
                sql_times.append(time.perf_counter() - t0)
                tick("filter queries (SQL)", i + 1, max(5, repeats // 5))
            res["filter_sql_p50_ms"] = statistics.median(sql_times) * 1e3

        path = nb201 or SHARED_NB201
        res["nb201_ingest_s"] = None
        res["nb201_reingest_s"] = None
        if path.is_file():
            tick("NAS-Bench-201 ingest", 0, 2)
            with Store(tmp_p / "nb201.duckdb") as st:
                dcn = {"cifar10": 0.9, "cifar100": 0.65, "ImageNet16-120": 0.45}
                t0 = time.perf_counter()
                rep = ingest_nb201(st, path, columns=NB201_TEST_COLUMNS, dcn=dcn,
                                   workers=workers)
                res["nb201_ingest_s"] = time.perf_counter() - t0
                res["nb201_experiments"] = rep.added
                tick("NAS-Bench-201 ingest", 1, 2)
                t0 = time.perf_counter()
                ingest_nb201(st, path, columns=NB201_TEST_COLUMNS, dcn=dcn, workers=workers)
                res["nb201_reingest_s"] = time.perf_counter() - t0
                tick("NAS-Bench-201 ingest", 2, 2)
    return res
