"""A new user's first NAS-Bench-201 ranking on a fresh default database.

``python -m benchmarks.fresh_install [DATA_DIR]`` seeds a new database (starter data and
the shipped NAS-Bench-201 results), trains the predictor for DCN 0.86 (CIFAR-10-like) and
scores 1,000 seeded NAS-Bench-201 cells at 3x32x32 / 10 classes, then prints Kendall tau
against their CIFAR-10 test accuracy (from ``DATA_DIR/nb201.csv``, default
``../shared/data``): once with CIFAR-10 selectable, once with it excluded from the LDE.
"""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from pathlib import Path


def main(data_dir: Path) -> None:
    import numpy as np
    import torch

    from predictor.metrics import kendall
    from tapas.app.pipeline import Pipeline
    from tapas.core.arch import from_nb201

    torch.set_num_threads(1)
    with (data_dir / "nb201.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    pick = [rows[i] for i in np.random.default_rng(0).choice(len(rows), 1000, replace=False)]
    archs = [from_nb201(r["arch_str"], num_classes=10, input_size=32) for r in pick]
    truth = np.array([float(r["cifar10_test"]) for r in pick])
    with tempfile.TemporaryDirectory() as d, \
            Pipeline(Path(d) / "lde.duckdb", model_dir=Path(d) / "models") as pipe:
        t0 = time.perf_counter()
        counts = pipe.store.counts()  # opening a new database seeds it
        print(f"seeded in {time.perf_counter() - t0:.1f} s: {counts}", flush=True)
        for excl in ((), ("cifar10",)):
            t0 = time.perf_counter()
            model, info = pipe.train(0.86, exclude_datasets=excl)
            p = model.predict_interval(archs, 0.86)
            print(f"excluded {list(excl)}: trained on {info.n_train} experiments of "
                  f"{len(info.datasets)} datasets; Kendall tau {kendall(p.mean, truth):.4f}; "
                  f"in domain {float(np.mean(p.in_domain)):.2f}; "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/data"))
