"""``tapas bench devices``: the DCN, predictor training and scoring on each device.

The same inputs go to every device and are timed the same way; the answers are then
compared, since a GPU run is only worth its speed if it says what the CPU says:

* ``dcn``: ProbeNet's DCN of 10,000 28x28 images (the DCN benchmark's speed dataset),
  after an untimed warm-up (CUDA's start-up and kernel choice are not the DCN's cost);
* ``train``: a predictor trained on ``train_rows`` experiments of the default database
  (starter + NAS-Bench-201), with their datasets as groups, as the pipeline trains;
* ``score``: ``networks`` never-seen chain networks for a 32x32x3, 10-class input,
  scored with encodings cached (median of 3) and cold, encoding included
  (:func:`measure_throughput`).

``agreement`` compares each device with the first: the DCN's difference, the Kendall
tau between the two trained predictors' scores (training on another device is not
bit-identical), and ``portable_max_abs``: the largest difference between a model's
scores on its own device and the same model saved there and loaded on the first
device (a predictor trained on a GPU must serve on a CPU-only machine).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lde.default_data import seed_default
from lde.store import Store
from predictor import TAPRegressor
from predictor.metrics import kendall
from probenet.datasets import load_dataset
from probenet.dcn import compute_dcn
from tapas.app.bench.dcn import SPEED_SPEC
from tapas.core.lazy import LazyImport
from tapas.core.spaces import build, sample_unique

torch = LazyImport("torch")

SCORE_SHAPE = (3, 32, 32)
SCORE_CLASSES = 10
SCORE_DCN = 0.6

#: ``progress(step)``, a phase name and its device.
Progress = Callable[[str], None]


def clear_encodings(archs: list[Any]) -> None:
    """Drop the encodings cached on each network, so the next scoring pays for them."""
    for a in archs:
        for k in [k for k in a.__dict__ if k.startswith("_tap_steps_")]:
            del a.__dict__[k]


def measure_throughput(model: Any, archs: list[Any], dcn: float, repeats: int = 5
                       ) -> tuple[float, float]:
    """Median networks/s scoring ``archs`` in one batch: (encodings cached, cold)."""
    model.predict(archs, dcn)  # warm up (and fill the per-object encoding cache)
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict(archs, dcn)
        warm.append(len(archs) / (time.perf_counter() - t0))
    cold = []
    for _ in range(max(1, repeats // 2)):
        clear_encodings(archs)
        t0 = time.perf_counter()
        model.predict(archs, dcn)
        cold.append(len(archs) / (time.perf_counter() - t0))
    return statistics.median(warm), statistics.median(cold)


def available_devices() -> list[str]:
    """``cpu``, and ``cuda`` when torch sees a GPU."""
    return ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def _training_rows(n: int, seed: int) -> tuple[list[Any], np.ndarray, np.ndarray, np.ndarray]:
    """``n`` seeded experiments of a new default database: (archs, dcns, accuracies,
    dataset ids)."""
    with tempfile.TemporaryDirectory(prefix="tapas-devices-") as tmp:
        store = Store(Path(tmp) / "lde.duckdb")
        try:
            seed_default(store)
            es = store.filter_by_dcn(0.5, tau=1.0)
            rows = np.sort(np.random.default_rng(seed).choice(len(es), min(n, len(es)),
                                                              replace=False))
            by_id = store.architectures(list(dict.fromkeys(es.arch_id[rows].tolist())))
        finally:
            store.close()
    return ([by_id[a] for a in es.arch_id[rows].tolist()], es.dcn[rows], es.accuracy[rows],
            es.dataset_id[rows])


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _one_device(device: str, data: tuple[Any, ...], score_archs: list[Any], seed: int,
                model_path: Path, tick: Progress) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ds = load_dataset(SPEED_SPEC)
    tick(f"dcn on {device}")
    compute_dcn(ds, seed=seed, device=device, epochs=1, max_samples=200)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    res = compute_dcn(ds, seed=seed, device=device)
    _sync(device)
    out["dcn_s"] = time.perf_counter() - t0
    out["dcn"] = float(res.dcn)

    archs, dcns, acc, groups = data
    clear_encodings(archs)
    tick(f"train on {device}")
    t0 = time.perf_counter()
    model = TAPRegressor(seed=seed, device=device).fit(archs, dcns, acc, groups=groups)
    _sync(device)
    out["train_s"] = time.perf_counter() - t0
    out["train_epochs"] = int(model.epochs_)

    tick(f"score on {device}")
    clear_encodings(score_archs)
    out["score_warm_per_s"], out["score_cold_per_s"] = measure_throughput(
        model, score_archs, SCORE_DCN, repeats=3)
    model.save(model_path)
    out["predictions"] = model.predict(score_archs, SCORE_DCN)
    return out


def run_device_comparison(devices: Sequence[str] | None = None, *, train_rows: int = 10_000,
                          networks: int = 10_000, seed: int = 0, threads: int | None = None,
                          progress: Progress | None = None) -> dict[str, Any]:
    """Time and compare the DCN, training and scoring on ``devices`` (default: every
    available one); see the module doc. Returns one JSON-ready object."""
    devs = list(devices or available_devices())
    if not devs or len(set(devs)) != len(devs):
        raise ValueError(f"devices must be distinct and at least one, got {devs}")
    prev_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _compare(devs, train_rows, networks, seed, progress or (lambda step: None))
    finally:
        torch.set_num_threads(prev_threads)


def _compare(devs: list[str], train_rows: int, networks: int, seed: int,
             tick: Progress) -> dict[str, Any]:
    tick("loading the default database")
    data = _training_rows(train_rows, seed)
    score_archs = [build(g, SCORE_SHAPE, SCORE_CLASSES)
                   for g in sample_unique("chain", networks, seed)]
    report: dict[str, Any] = {"devices": {}, "train_rows": len(data[0]),
                              "networks": networks, "dcn_dataset": SPEED_SPEC,
                              "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                              "gpu": (torch.cuda.get_device_name(0)
                                      if torch.cuda.is_available() else None),
                              "torch": torch.__version__, "seed": seed}
    preds: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="tapas-devices-") as tmp:
        for dev in devs:
            r = _one_device(dev, data, score_archs, seed, Path(tmp) / f"{dev}.tap", tick)
            preds[dev] = r.pop("predictions")
            report["devices"][dev] = {k: round(v, 4) if isinstance(v, float) else v
                                      for k, v in r.items()}
        base = devs[0]
        agreement = {}
        for dev in devs[1:]:
            moved = TAPRegressor.load(Path(tmp) / f"{dev}.tap", device=base)
            again = moved.predict(score_archs, SCORE_DCN)
            agreement[dev] = {
                "dcn_abs_diff": abs(report["devices"][dev]["dcn"]
                                    - report["devices"][base]["dcn"]),
                "kendall_tau_scores": kendall(preds[dev], preds[base]),
                "portable_max_abs": float(np.max(np.abs(again - preds[dev])))}
        report["agreement"] = {"versus": base, **agreement}
    return report


__all__ = ["available_devices", "run_device_comparison"]
