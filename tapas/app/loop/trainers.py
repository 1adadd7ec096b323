"""Trainers: how the lifelong loop obtains a network's true accuracy, into the LDE.

A trainer turns genotypes into experiments on one dataset and writes them to the LDE
itself, each carrying in its ``hparams`` the genotype, the space, a ``job_key`` (what
determines the result) and ``loop_trainer`` (the trainer's :attr:`signature`). The loop
reads every accuracy back from the LDE by those keys, so what a trainer wrote once is
never trained again: an interrupted loop resumes, a second loop reuses.

* :class:`RunnerTrainer` trains for real with the experiment runner
  (:func:`tapas.app.experiments.run_jobs`: local processes or Ray), curves included;
* :class:`LookupTrainer` looks accuracies up in a table of results trained elsewhere
  (NAS-Bench-201's stored test accuracies): a "training" that costs nothing, for
  benchmarks and for spaces whose results are published.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lde import ExperimentRecord
from tapas.app.experiments import STARTER_RECIPE, Job, run_jobs
from tapas.app.experiments.jobs import dataset_info
from tapas.core.spaces import SearchSpace

if TYPE_CHECKING:
    from lde import Store

LOOP_SOURCE = "tapas-loop"
"""The LDE ``source`` of the experiments a loop trains, followed by ``:`` and the trainer's
signature (the LDE's natural key holds the source but not the recipe: two trainers'
results on one network and dataset must not collide)."""


class TrainingFailed(RuntimeError):
    """A trainer could not obtain the accuracy of some networks; the message names them."""


class Trainer(Protocol):
    """What the loop needs of a trainer (see the module doc)."""

    dataset: str
    """The LDE name of the dataset it trains on."""
    signature: str
    """Tells this trainer's results apart from others' on the same dataset (recipe, table)."""

    def job_key(self, genotype: Any) -> str:
        """What identifies the result of training ``genotype`` (``hparams.job_key``)."""

    def train(self, genotypes: Sequence[Any], store: Store,
              progress: Callable[[int, int], None] | None = None) -> None:
        """Obtain and write the experiments of ``genotypes`` (``TrainingFailed`` when some
        cannot be trained)."""


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()[:24]


# ---------------------------------------------------------------------------- reading back
def stored_accuracies(store: Store, keys: Sequence[str]) -> dict[str, float]:
    """Accuracy of each ``job_key`` the LDE holds (the first one stored when repeated)."""
    if not keys:
        return {}
    t = store.sql("SELECT json_extract_string(hparams, '$.job_key') AS k, accuracy "
                  "FROM experiments WHERE hparams IS NOT NULL AND "
                  "json_extract_string(hparams, '$.job_key') IN (SELECT unnest(?)) "
                  "ORDER BY seq", [list(dict.fromkeys(keys))])
    out: dict[str, float] = {}
    for k, a in zip(t.column("k").to_pylist(), t.column("accuracy").to_pylist(), strict=True):
        out.setdefault(k, float(a))
    return out


def stored_networks(store: Store, trainer: Trainer, space: str) -> list[tuple[Any, float]]:
    """(genotype, accuracy) of every network ``trainer`` wrote on its dataset in ``space``,
    in the order they were written (what an earlier loop trained)."""
    ds = store.dataset(trainer.dataset)
    if ds is None:
        return []
    t = store.sql("SELECT json_extract(hparams, '$.genotype') AS g, accuracy "
                  "FROM experiments WHERE dataset_id = ? AND hparams IS NOT NULL AND "
                  "json_extract_string(hparams, '$.loop_trainer') = ? AND "
                  "json_extract_string(hparams, '$.space') = ? ORDER BY seq",
                  [ds.id, trainer.signature, space])
    seen: dict[str, tuple[Any, float]] = {}
    for g, a in zip(t.column("g").to_pylist(), t.column("accuracy").to_pylist(), strict=True):
        geno = json.loads(g)
        seen.setdefault(json.dumps(geno, sort_keys=True), (geno, float(a)))
    return list(seen.values())


# ---------------------------------------------------------------------------- real training
@dataclass
class RunnerTrainer:
    """Real training with the experiment runner: each genotype becomes one
    :class:`~tapas.app.experiments.Job` on dataset ``spec`` with ``recipe`` (default: the
    starter recipe, four epochs), trained on ``backend`` (``local``: ``workers``
    processes, 0 for this one; ``ray``) and written to the LDE with its curve."""

    spec: str
    recipe: dict[str, Any] = field(default_factory=lambda: dict(STARTER_RECIPE))
    seed: int = 0
    workers: int = 0
    backend: str = "local"
    address: str | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.dataset = dataset_info(self.spec)["name"]
        self.signature = "runner:" + _digest([self.spec, self.recipe, self.seed])
        self.source = f"{LOOP_SOURCE}:{self.signature}"

    def _job(self, genotype: Any) -> Job:
        if not isinstance(genotype, dict):
            raise TrainingFailed(f"the experiment runner trains genotypes written as JSON "
                                 f"objects (spaces chain, nb201-small, ...), got {genotype!r}")
        return Job(genotype=genotype, dataset=self.spec, recipe=self.recipe, seed=self.seed,
                   source=self.source, tags={"loop_trainer": self.signature})

    def job_key(self, genotype: Any) -> str:
        return self._job(genotype).key

    def train(self, genotypes: Sequence[Any], store: Store,
              progress: Callable[[int, int], None] | None = None) -> None:
        jobs = [self._job(g) for g in genotypes]
        cb = None if progress is None else (lambda done, total, _r: progress(done, total))
        rep = run_jobs(jobs, store, workers=self.workers, device=self.device,
                       callback=cb, backend=self.backend, address=self.address)
        if rep.interrupted:
            raise KeyboardInterrupt
        if rep.failed:
            raise TrainingFailed("training failed on " + self.dataset + ": " + "; ".join(
                f"job {k}: {e}" for k, e in rep.failed))


# ---------------------------------------------------------------------------- lookup
@dataclass
class LookupTrainer:
    """A "training" that looks the accuracy up in ``table`` (genotype key -> accuracy
    in [0, 1], results trained elsewhere) and records it in the LDE on ``dataset`` (a
    dataset the LDE holds) as an experiment of ``epochs`` epochs, without a curve.
    ``name`` tells tables apart (``signature``)."""

    table: Mapping[str, float]
    dataset: str
    space: SearchSpace
    name: str = "lookup"
    epochs: int | None = None

    def __post_init__(self) -> None:
        self.signature = f"lookup:{self.name}"
        self.source = f"{LOOP_SOURCE}:{self.signature}"

    def job_key(self, genotype: Any) -> str:
        return _digest(["lookup", self.name, self.dataset, self.space.key(genotype)])

    def train(self, genotypes: Sequence[Any], store: Store,
              progress: Callable[[int, int], None] | None = None) -> None:
        missing = [self.space.describe(g) for g in genotypes
                   if self.space.key(g) not in self.table]
        if missing:
            raise TrainingFailed(f"the {self.name} table has no accuracy for "
                                 f"{len(missing)} network(s), e.g. {missing[0]}")
        ds = store.dataset(self.dataset)
        if ds is None:
            raise TrainingFailed(f"dataset {self.dataset!r} is not in the LDE; register it "
                                 "(with its DCN) first")
        recs = [ExperimentRecord(
            arch=g if isinstance(g, str) else self.space.build(  # type: ignore[attr-defined]
                g, tuple(ds.input_shape), ds.n_classes), dataset=self.dataset,
            accuracy=float(self.table[self.space.key(g)]), split="test", epochs=self.epochs,
            hparams={"genotype": g, "space": self.space.name, "job_key": self.job_key(g),
                     "loop_trainer": self.signature},
            seed=0, source=self.source) for g in genotypes]
        rep = store.add_experiments(recs)
        if rep.rejected:
            raise TrainingFailed(f"the LDE rejected {len(rep.rejected)} lookup result(s) on "
                                 f"{self.dataset}: {rep.rejected[0][1]}")
        if progress is not None:
            progress(len(genotypes), len(genotypes))


NB201_COLUMNS: dict[str, str] = {"cifar10": "cifar10_test", "cifar100": "cifar100_test",
                                 "ImageNet16-120": "imagenet16_test"}
"""LDE dataset name -> column of NAS-Bench-201's test accuracy (percent) in ``nb201.csv``."""


def nb201_table(path: str | Path, dataset: str) -> dict[str, float]:
    """Cell string -> test accuracy in [0, 1] of ``dataset`` (cifar10, cifar100,
    ImageNet16-120) from a NAS-Bench-201 table (``arch_str`` and percent columns)."""
    p = Path(path)
    if dataset not in NB201_COLUMNS:
        raise ValueError(f"no NAS-Bench-201 column for dataset {dataset!r}; expected one of "
                         f"{', '.join(NB201_COLUMNS)}")
    if not p.is_file():
        raise FileNotFoundError(f"no NAS-Bench-201 table at {p}")
    col = NB201_COLUMNS[dataset]
    with p.open(newline="") as f:
        rows = csv.DictReader(f)
        if rows.fieldnames is None or "arch_str" not in rows.fieldnames \
                or col not in rows.fieldnames:
            raise ValueError(f"{p}: needs the columns arch_str and {col}")
        return {r["arch_str"]: float(r[col]) / 100.0 for r in rows}
