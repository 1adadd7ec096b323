"""``tapas bench first-prediction``: a new user's time to the first predictions.

On a fresh default database (a new DuckDB file in a temporary folder, seeded with the
starter and NAS-Bench-201 data when opened), for a dataset the LDE does not hold yet
(default: a built-in variant of digits), three phases are timed separately:

* ``characterize``: computing the dataset's DCN with ProbeNet (and recording it);
* ``train``: the predictor for that DCN (:meth:`tapas.app.pipeline.Pipeline.train`): on a
  new database, the one shipped with tapas when the DCN's selection is one of the release
  grid's (a lookup: its file unpacked and loaded; ``predictor_origin`` ``shipped``), else
  trained on the experiments the DCN filter selects (``trained``). ``shipped=False``
  (``--no-shipped``) registers no shipped predictor, so it always trains;
* ``score``: building ``n_networks`` networks of a search space (sampled, seeded,
  before the clock starts) for the dataset's input and classes and predicting them.

``first_prediction_s`` is their sum. Seeding the new database happens once per
install and is reported on its own (``seed_s``), not in the total.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tapas.app.pipeline import Pipeline, is_shipped
from tapas.core.config import get_settings
from tapas.core.device import apply_threads, resolve_device
from tapas.core.lazy import LazyImport
from tapas.core.spaces import build, sample_unique

torch = LazyImport("torch")

DEFAULT_DATASET = "digits?per_class=60&pixel_noise=0.15"
"""A dataset whose DCN selection stays small (starter datasets only)."""
NB201_DATASET = "digits"
"""The README's own dataset: its selection reaches the NAS-Bench-201 tables (~20,000
experiments of 8 datasets), the case a new user meets."""
PHASES = ("characterize", "train", "score")
SCORE_BATCH = 250

#: ``progress(phase, done, total)``; ``total`` None while unknown.
Progress = Callable[[str, int, "int | None"], None]


def run_first_prediction(dataset: str = DEFAULT_DATASET, *, n_networks: int = 1000,
                         space: str = "chain", seed: int = 0, threads: int | None = None,
                         database: Path | None = None, seed_database: bool = True,
                         predictor_params: dict[str, Any] | None = None,
                         min_experiments: int | None = None,
                         probe: dict[str, Any] | None = None, shipped: bool = True,
                         progress: Progress | None = None,
                         log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time characterisation, training and scoring for ``dataset`` (see the module doc).

    ``database``: use this (new or existing) database instead of a fresh one in a
    temporary folder; ``seed_database=False`` leaves a new one empty (tests seed their
    own). ``predictor_params``/``min_experiments`` go to the pipeline, ``probe`` (e.g.
    ``epochs``, ``max_samples``) to ProbeNet; ``threads`` sets torch's thread count
    (default: the ``TAPAS_THREADS`` budget's, :func:`tapas.core.device.apply_threads`; stated
    in the report). ``shipped``: register the shipped predictors in the new database (as
    a user's first start does); False times the training they save.
    """
    if n_networks < 1:
        raise ValueError(f"n_networks must be >= 1, got {n_networks}")
    if threads is not None:  # overrides the budget, also for the pipeline below
        apply_threads(int(threads))
    say = log or (lambda s: None)
    tick = progress or (lambda phase, done, total: None)
    genotypes = sample_unique(space, n_networks, seed)
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tapas-first-") as tmp:
        db = Path(database) if database is not None else Path(tmp) / "lde.duckdb"
        pipe = Pipeline(db, model_dir=Path(tmp) / "models", seed=seed_database,
                        predictor_params=predictor_params, min_experiments=min_experiments,
                        shipped=shipped)
        tick("seeding the new database", 0, None)
        t0 = time.perf_counter()
        with pipe:  # opening (entering) a new database creates and seeds it
            counts = pipe.store.counts()
            seed_s = time.perf_counter() - t0
            say(f"database ready in {seed_s:.1f} s: {counts}")
            phases: dict[str, float] = {}

            tick("characterize", 0, None)
            t0 = time.perf_counter()
            info, res = pipe.characterize(dataset, seed=seed, **(probe or {}),
                                          progress=lambda d, n: tick("characterize", d, n))
            phases["characterize"] = time.perf_counter() - t0
            say(f"DCN of {dataset}: {res.dcn:.4f} ({phases['characterize']:.1f} s)")

            tick("train", 0, None)
            t0 = time.perf_counter()
            _, pinfo = pipe.train(float(info.dcn), progress=lambda e, n: tick("train", e, n))
            phases["train"] = time.perf_counter() - t0
            origin = "shipped" if is_shipped(pinfo) else "trained"
            say(f"predictor {pinfo.id} ({origin}: "
                f"{'loaded' if pinfo.cached else 'trained'} here) for {pinfo.n_train:,} "
                f"experiments of {len(pinfo.datasets)} datasets ({phases['train']:.1f} s)")

            tick("score", 0, n_networks)
            t0 = time.perf_counter()
            preds: list[Any] = []
            for start in range(0, n_networks, SCORE_BATCH):
                archs = [build(g, info.input_shape, info.n_classes)
                         for g in genotypes[start:start + SCORE_BATCH]]
                preds += pipe.predict(archs, dataset=info.id)
                tick("score", len(preds), n_networks)
            phases["score"] = time.perf_counter() - t0
            say(f"{n_networks:,} {space} networks scored ({phases['score']:.2f} s)")
    total = sum(phases.values())
    return {"first_prediction_s": round(total, 3),
            "first_prediction_phases": {k: round(phases[k], 3) for k in PHASES},
            "seed_s": round(seed_s, 3), "database": counts, "dataset": dataset,
            "dataset_id": info.id, "dcn": float(res.dcn), "space": space,
            "n_networks": n_networks, "predictor": pinfo.id, "n_train": pinfo.n_train,
            "predictor_origin": origin, "trained": not pinfo.cached,
            "train_datasets": len(pinfo.datasets),
            "in_domain_fraction": round(sum(p.in_domain for p in preds) / len(preds), 4),
            "device": str(resolve_device(get_settings().device)),
            "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "load_average": {"start": [round(v, 2) for v in load_start],
                             "end": [round(v, 2) for v in os.getloadavg()]},
            "seed": seed}


__all__ = ["DEFAULT_DATASET", "NB201_DATASET", "PHASES", "run_first_prediction"]
