"""Experiment jobs: one (genotype, dataset, seed, recipe) training run each.

:func:`run_job` is a pure function of its :class:`Job`: it reads no settings, no
database and no global state, and returns a plain dict. It may therefore run in any
process or on any machine that has ``tapas`` installed: a
``concurrent.futures`` pool or a Ray task (the two backends of
:mod:`tapas.app.experiments.backends`), a Dask ``client.map(run_job, jobs)``, or one Slurm array
task per slice (``tapas experiments run --preset starter --slice $A:$B --db
part_$SLURM_ARRAY_TASK_ID.duckdb``, then ``tapas lde import`` of each part's export
into one database). Only the parent that owns the database writes results (DuckDB
allows one writer), so workers never need database access.

One cache keeps workers fast without changing results: loaded and split datasets,
keyed by their spec (the same spec always gives the same arrays). With one torch
thread per process and the job's seed, a job is repeatable bit for bit on one machine.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from probenet.datasets import load_dataset, split
from probenet.dcn import compute_dcn
from probenet.train import Recipe, fit_evaluate
from tapas.core import spaces
from tapas.core.arch import to_module
from tapas.core.arch.cache import budgeted

if TYPE_CHECKING:
    from probenet.datasets import Dataset

JOB_VERSION = 1
"""Bumped whenever what a job computes changes (the recipe semantics, the split, ...)."""


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Job:
    """One training run: everything needed to repeat it, and nothing else.

    ``genotype``: a search-space genotype (see :mod:`tapas.core.spaces`); ``dataset``: a
    dataset spec for :func:`probenet.load_dataset`; ``recipe``: the fields of
    :class:`probenet.train.Recipe`; the dataset is split with
    :func:`probenet.split` (``test_fraction``, ``split_seed``) and the network trained
    on one part and scored on the other with ``seed``.
    """

    genotype: dict[str, Any]
    dataset: str
    recipe: dict[str, Any]
    seed: int = 0
    test_fraction: float = 1 / 3
    split_seed: int = 0
    source: str = "tapas-experiments"
    tags: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Content hash of what determines the result (not the tags or source)."""
        return hashlib.sha256(_canon([JOB_VERSION, self.genotype, self.dataset, self.recipe,
                                      self.seed, round(self.test_fraction, 9),
                                      self.split_seed]).encode()).hexdigest()[:24]

    def hparams(self) -> dict[str, Any]:
        """What the LDE stores as the experiment's hyper-parameters: the whole job."""
        return {"recipe": dict(self.recipe), "genotype": self.genotype,
                "space": self.genotype.get("space"), "dataset_spec": self.dataset,
                "test_fraction": self.test_fraction, "split_seed": self.split_seed,
                "job_key": self.key, "job_version": JOB_VERSION, **self.tags}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_hparams(cls, hparams: dict[str, Any], seed: int, source: str) -> Job:
        """Rebuild the job of a stored experiment (to re-run it)."""
        return cls(genotype=hparams["genotype"], dataset=hparams["dataset_spec"],
                   recipe=hparams["recipe"], seed=int(seed),
                   test_fraction=float(hparams["test_fraction"]),
                   split_seed=int(hparams["split_seed"]), source=source)


_SPLITS = budgeted("experiment-datasets")
"""Loaded and split datasets by (spec, test fraction, split seed), by their arrays' bytes."""


def load_split(spec: str, test_fraction: float, split_seed: int) -> tuple[Dataset, Dataset,
                                                                          Dataset]:
    """(full, train, test) for a dataset spec; cached per process (same spec, same arrays)."""
    key = (spec, float(test_fraction), int(split_seed))
    hit = _SPLITS.get(key)
    if hit is None:
        ds = load_dataset(spec)
        hit = (ds, *split(ds, test_fraction, split_seed))
        _SPLITS.put(key, hit, sum(d.x.nbytes + d.y.nbytes for d in hit) + len(spec))
    return hit


def dataset_info(spec: str) -> dict[str, Any]:
    """Name, fingerprint, size, classes and input shape of a dataset spec."""
    ds = load_dataset(spec)
    return {"name": ds.name, "fingerprint": ds.fingerprint, "n_samples": ds.n_samples,
            "num_classes": ds.num_classes, "input_shape": list(ds.input_shape)}


def run_job(job: Job, device: str = "cpu") -> dict[str, Any]:
    """Build the job's network, train it and return a JSON-able result.

    Keys: ``key``, ``dataset`` (canonical name), ``fingerprint``, ``arch`` (canonical
    IR dict), ``arch_id``, ``template_id``, ``params``, ``flops``, ``accuracy`` (final
    held-out accuracy in [0, 1]), ``curve`` (per epoch), ``epochs``, ``seconds``,
    ``seed``, ``hparams``, ``source``. Failures to build (a genotype that does not fit
    the dataset) raise ``ValueError`` with the job named.
    """
    t0 = time.perf_counter()
    ds, tr, te = load_split(job.dataset, job.test_fraction, job.split_seed)
    try:
        arch = spaces.build(job.genotype, ds.input_shape, ds.num_classes)
    except ValueError as e:
        raise ValueError(f"job {job.key} ({job.dataset}): {e}") from e
    recipe = Recipe(**job.recipe)
    res = fit_evaluate(to_module(arch), tr, te, recipe, job.seed, device)
    return {"key": job.key, "dataset": ds.name, "fingerprint": ds.fingerprint,
            "arch": arch.to_dict(), "arch_id": arch.id, "template_id": arch.template_id,
            "params": arch.params, "flops": arch.flops,
            "accuracy": float(res.final_accuracy), "curve": [float(a) for a in res.curve],
            "epochs": res.epochs, "seconds": time.perf_counter() - t0, "seed": job.seed,
            "hparams": job.hparams(), "source": job.source}


def dcn_job(spec: str, seed: int, epochs: int, max_samples: int,
            device: str = "cpu", max_steps: int | None = None) -> dict[str, Any]:
    """Characterise one dataset (its DCN with :mod:`probenet.dcn`); JSON-able result.

    ``epochs``/``max_samples``/``max_steps`` are passed in (the parent reads them from
    the settings) so the job itself reads no configuration (``max_steps=None``, for a
    caller that passes only the first five, falls back to ``Settings.probe_max_steps``).
    """
    ds = load_dataset(spec)
    r = compute_dcn(ds, seed=seed, device=device, epochs=epochs, max_samples=max_samples,
                    max_steps=max_steps)
    return {"spec": spec, **dataset_info(spec), "dcn": r.dcn, "meta": r.meta}
