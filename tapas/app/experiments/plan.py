"""Planning: which architectures train on which datasets, and the starter preset.

:func:`plan_jobs` samples distinct genotypes from each search space (seeded) and
gives each one ``datasets_per_arch`` of the datasets it fits, always picking the
least-used datasets so every dataset gets about the same number of runs. Giving one
genotype several datasets of different difficulty is what lets the predictor learn
how one architecture's accuracy moves with the DCN. Jobs are ordered architecture by
architecture, so a run stopped half-way has complete rows of datasets for the
architectures it did.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from probenet.train import Recipe
from tapas.app.experiments.jobs import Job, dataset_info
from tapas.core.spaces import DictSpace, genotype_key, get_space, sample_unique, space_of

STARTER_SOURCE = "tapas-starter-v1"

#: The recipe of every starter run (fields of :class:`probenet.train.Recipe`): short,
#: fixed and identical for every architecture and dataset.
STARTER_RECIPE: dict[str, Any] = {
    "epochs": 4, "batch_size": 64, "lr": 0.01, "optimizer": "adamw", "momentum": 0.9,
    "weight_decay": 5e-4, "schedule": "onecycle", "augmentation": "none",
    "label_smoothing": 0.0, "standardize": True,
}

#: Built-in datasets and variants of graded difficulty (specs for probenet.load_dataset).
#: Each is capped at a few hundred images per class so a run takes about a second on
#: one core; 8x8 digits and 4x4 MNIST also fit the NAS-Bench-201 skeleton. Four entries
#: replaced datasets on which networks barely separate (three- and four-class subsets,
#: 1-D signals with label noise or five classes), chosen by their four-seed label's
#: reproducibility (``lde/starter/DATA_CARD.md``); each takes the place of one that fits
#: the same search spaces, so every network keeps its datasets' positions in the plan.
STARTER_DATASETS: tuple[str, ...] = (
    "digits?per_class=75",
    "digits?per_class=40",
    "digits?per_class=75&label_noise=0.2",
    "digits?per_class=75&label_noise=0.45",
    "digits?per_class=75&pixel_noise=0.35",
    "digits?per_class=75&occlude=0.5",
    "digits?per_class=75&pixel_noise=0.5",
    "digits?per_class=75&pixel_noise=0.25&label_noise=0.3",
    "mnist5k?per_class=75&downsample=4",
    "mnist5k?per_class=75&downsample=4&label_noise=0.3",
    "mnist5k?per_class=75&downsample=4&occlude=0.4",
    "mnist5k?per_class=75&downsample=4&pixel_noise=0.3",
    "mnist5k?per_class=75&downsample=4&occlude=0.3&label_noise=0.2",
    "mnist5k?per_class=100&downsample=7",
    "mnist1d?per_class=75",
    "mnist1d?per_class=120",
    "mnist5k?per_class=75&downsample=4&label_noise=0.5",
    "mnist5k?per_class=75&resize=10&pixel_noise=0.2",
)

#: Architectures sampled per space for the starter data, and datasets per architecture.
STARTER_SPACES: dict[str, int] = {"chain": 480, "nb201-small": 30}
STARTER_DATASETS_PER_ARCH = 8
STARTER_SEED = 0
STARTER_TEST_FRACTION = 1 / 3


@dataclass(frozen=True)
class Plan:
    """Jobs plus what the planner learned about the datasets."""

    jobs: list[Job]
    datasets: dict[str, dict[str, Any]]
    """spec -> name, fingerprint, n_samples, num_classes, input_shape."""

    def summary(self) -> dict[str, Any]:
        per_ds = Counter(j.dataset for j in self.jobs)
        per_space = Counter(space_of(j.genotype).name for j in self.jobs)
        archs = {genotype_key(j.genotype) for j in self.jobs}
        per_arch = Counter(genotype_key(j.genotype) for j in self.jobs)
        return {"jobs": len(self.jobs), "architectures": len(archs),
                "datasets": len(per_ds), "per_dataset": dict(per_ds),
                "per_space": dict(per_space),
                "archs_on_8_or_more_datasets": sum(1 for n in per_arch.values() if n >= 8)}




def plan_jobs(datasets: Sequence[str], spaces: dict[str, int], datasets_per_arch: int,
              recipe: dict[str, Any], seed: int = 0, test_fraction: float = STARTER_TEST_FRACTION,
              split_seed: int = 0, train_seed: int = 0,
              source: str = "tapas-experiments") -> Plan:
    """Sample ``spaces[name]`` distinct genotypes per space and spread them over
    ``datasets`` (each genotype on ``datasets_per_arch`` compatible datasets)."""
    if not datasets:
        raise ValueError("no datasets given")
    if datasets_per_arch < 1:
        raise ValueError(f"datasets_per_arch must be >= 1, got {datasets_per_arch}")
    Recipe(**recipe)  # validates the recipe before any work
    infos = {d: dataset_info(d) for d in dict.fromkeys(datasets)}
    rng = random.Random(seed)
    genotypes: list[dict[str, Any]] = []
    for i, (name, n) in enumerate(spaces.items()):
        if not isinstance(get_space(name), DictSpace):
            raise ValueError(f"experiments store a space's genotypes as JSON objects, which the "
                             f"{name!r} space has not (its genotypes are cell strings); the "
                             "starter data's NAS-Bench-201 networks are the 'nb201-small' space")
        if not any(get_space(name).fits(tuple(v["input_shape"])) for v in infos.values()):
            raise ValueError(f"search space {name!r} fits none of the datasets "
                             f"({', '.join(infos)})")
        genotypes += sample_unique(name, n, seed * 1000 + i)
    rng.shuffle(genotypes)
    load: Counter[str] = Counter()
    jobs: list[Job] = []
    for g in genotypes:
        space = space_of(g)
        fits = [d for d in infos if space.fits(tuple(infos[d]["input_shape"]))]
        rng.shuffle(fits)
        fits.sort(key=lambda d: load[d])  # stable: random among the least used
        for d in sorted(fits[:datasets_per_arch], key=list(infos).index):
            load[d] += 1
            jobs.append(Job(genotype=g, dataset=d, recipe=dict(recipe), seed=train_seed,
                            test_fraction=test_fraction, split_seed=split_seed, source=source))
    return Plan(jobs, infos)


#: Seeds of every starter network on every dataset: each run is stored as its own
#: experiment, and a network's label is their mean
#: (:meth:`lde.rows.ExperimentSet.mean_over_seeds`). One seed's ranking of networks of
#: similar accuracy is mostly noise (seed-to-seed Kendall tau 0.74); the mean of four
#: ranks them reproducibly (``lde/starter/DATA_CARD.md``).
STARTER_SEEDS: tuple[int, ...] = (0, 1, 2, 3)
#: Networks per starter dataset trained with four seeds more (:data:`NOISE_SEEDS`): two
#: independent four-seed labels of the same networks measure how reproducible a label is.
NOISE_NETWORKS_PER_DATASET = 60
NOISE_SEEDS: tuple[int, ...] = (4, 5, 6, 7)


def _with_seeds(plan: Plan, seeds: Sequence[int]) -> Plan:
    """Every job once per seed, a network's seeds together (a run stopped half-way still
    holds complete labels)."""
    return Plan([replace(j, seed=s) for j in plan.jobs for s in seeds], plan.datasets)


def _v1_plan() -> Plan:
    return plan_jobs(STARTER_DATASETS, STARTER_SPACES, STARTER_DATASETS_PER_ARCH,
                     STARTER_RECIPE, seed=STARTER_SEED, source=STARTER_SOURCE)


def starter_plan(seeds: Sequence[int] = STARTER_SEEDS) -> Plan:
    """The exact plan behind the shipped starter v1 data (``--preset starter``)."""
    return _with_seeds(_v1_plan(), seeds)


def starter_noise_plan(per_dataset: int = NOISE_NETWORKS_PER_DATASET,
                       seeds: Sequence[int] = NOISE_SEEDS) -> Plan:
    """The first ``per_dataset`` v1 networks of every dataset (plan order), trained with
    ``seeds`` (``--preset starter-noise``): with :data:`STARTER_SEEDS` they give two
    independent four-seed labels, the most any predictor can score against one."""
    base = _v1_plan()
    taken: Counter[str] = Counter()
    jobs = []
    for j in base.jobs:
        if taken[j.dataset] < per_dataset:
            taken[j.dataset] += 1
            jobs.append(j)
    return _with_seeds(Plan(jobs, base.datasets), seeds)


STARTER_V2_SOURCE = "tapas-starter-v2"  # the tag lde.starter.STARTER_V2_SOURCE names

#: Starter v2 adds the input sizes of real NAS work: 16x16 and 28x28 grayscale and
#: 32x32 RGB. Longer than v1 (6 epochs, 100-200 images per class).
STARTER_V2_RECIPE: dict[str, Any] = dict(STARTER_RECIPE, epochs=6)
STARTER_V2_DATASETS: tuple[str, ...] = (
    "mnist5k?per_class=200&resize=16",
    "mnist5k?per_class=200&resize=16&label_noise=0.4",
    "mnist5k?per_class=120&resize=16&occlude=0.5&pixel_noise=0.3",
    "mnist5k?per_class=100",
    "mnist5k?per_class=100&occlude=0.4&pixel_noise=0.5",
    "cmnist?per_class=150",
    "photos?per_class=100",
)
STARTER_V2_SPACES: dict[str, int] = {"chain": 48, "nb201-small": 12}


def starter_v2_plan(seeds: Sequence[int] = STARTER_SEEDS) -> Plan:
    """Starter v2 (``--preset starter-v2``): every sampled network on every v2 dataset,
    once per seed."""
    return _with_seeds(plan_jobs(STARTER_V2_DATASETS, STARTER_V2_SPACES,
                                 len(STARTER_V2_DATASETS), STARTER_V2_RECIPE,
                                 seed=STARTER_SEED + 2, source=STARTER_V2_SOURCE), seeds)


FAMILIES_SOURCE = "tapas-families-v1"


@dataclass(frozen=True)
class Family:
    """One network family of the families preset: a registered space, and the size
    fields merged into every genotype it samples (the family's scaling)."""

    space: str
    size: dict[str, Any] = field(default_factory=dict)

    def sample(self, n: int, seed: int) -> list[dict[str, Any]]:
        """``n`` distinct networks of the family, drawn with ``seed``."""
        return [{**g, **self.size} for g in sample_unique(self.space, n, seed)]


#: The families researchers bring (issue 34), scaled down for the v2 datasets with
#: :data:`STARTER_V2_RECIPE` (``lde/starter/DATA_CARD.md``, "Families"): DARTS cells in
#: the smallest DARTS network (C=4, 3 cells), and the samples of the scaled spaces
#: (NAS-Bench-101 cells from a 16-channel stem in 3 stacks of one cell, NAS-Bench-Macro
#: strings from a 4-channel stem, ResNets of widths 8-32).
FAMILIES: dict[str, Family] = {
    "darts": Family("darts", {"C": 4, "layers": 3}),
    "nb101": Family("nb101-small"),
    "macro": Family("macro-small"),
    "resnet": Family("resnet"),
}
FAMILY_NETWORKS = 150
#: Six of the v2 datasets: both 32x32 RGB ones, both 28x28 ones and two 16x16 ones (the
#: 16x16 one with 40 % label noise, whose two-seed label was the least reproducible of v2,
#: is left out).
FAMILIES_DATASETS: tuple[str, ...] = (
    "mnist5k?per_class=200&resize=16",
    "mnist5k?per_class=120&resize=16&occlude=0.5&pixel_noise=0.3",
    "mnist5k?per_class=100",
    "mnist5k?per_class=100&occlude=0.4&pixel_noise=0.5",
    "cmnist?per_class=150",
    "photos?per_class=100",
)
#: A network's label is the mean of two seeds; the first :data:`FAMILIES_NOISE_NETWORKS`
#: networks of each family get two more, so that two independent two-seed labels (seeds
#: 0, 2 against 1, 3) measure how reproducible a label is, as for starter v2.
FAMILIES_SEEDS: tuple[int, ...] = (0, 1)
FAMILIES_NOISE_NETWORKS = 60
FAMILIES_NOISE_SEEDS: tuple[int, ...] = (2, 3)


def families_plan(families: dict[str, Family] | None = None,
                  networks: int = FAMILY_NETWORKS,
                  datasets: Sequence[str] = FAMILIES_DATASETS) -> Plan:
    """The families preset (``--preset families``): every network of every family on
    every dataset, with :data:`FAMILIES_SEEDS` (and :data:`FAMILIES_NOISE_SEEDS` for the
    first networks). Jobs go network by network, the families in turn, a (network,
    dataset)'s seeds together, so a run stopped at any point has complete labels on
    every dataset for about as many networks of each family."""
    families = FAMILIES if families is None else families
    infos = {d: dataset_info(d) for d in dict.fromkeys(datasets)}
    drawn: dict[str, list[dict[str, Any]]] = {}
    for i, (name, fam) in enumerate(families.items()):
        space = get_space(fam.space)
        misfits = [d for d, v in infos.items() if not space.fits(tuple(v["input_shape"]))]
        if misfits:
            raise ValueError(f"family {name!r} ({fam.space}) does not fit {', '.join(misfits)}")
        drawn[name] = fam.sample(networks, STARTER_SEED * 1000 + i)
    jobs = []
    for k in range(networks):
        seeds = FAMILIES_SEEDS + (FAMILIES_NOISE_SEEDS if k < FAMILIES_NOISE_NETWORKS else ())
        for name, genotypes in drawn.items():
            jobs += [Job(genotype=genotypes[k], dataset=d, recipe=dict(STARTER_V2_RECIPE),
                         seed=s, source=FAMILIES_SOURCE, tags={"family": name})
                     for d in infos for s in seeds]
    return Plan(jobs, infos)


SEALED_SOURCE = "tapas-sealed-v1"

#: The sealed test suite (issue 39; ``lde/sealed/DATA_CARD.md``): datasets from sources
#: and transformations the starter never uses, networks from a sampling seed it never
#: used. It is generated once into its own database, never into the default one, and
#: scored only to report a change after the change is chosen: never to choose one.
SEALED_DATASETS: tuple[str, ...] = (
    "digits?per_class=75&rotate=40",
    "digits?per_class=60&contrast=0.5&invert=0.5&pixel_noise=0.15",
    "mnist5k?per_class=75&resize=12&blur=1&contrast=0.3&pixel_noise=0.1",
    "mnist1d64?per_class=75",
    "hopper?per_class=50",
    "mnist5k?per_class=50&rotate=30&invert=0.3",
)
#: Networks per space: the starter's two spaces, and ResNets, which it never trains.
SEALED_SPACES: dict[str, int] = {"chain": 80, "nb201-small": 20, "resnet": 20}
#: Sampling seed of the sealed networks (``sample_unique(space, n, 39_000 + i)``); the
#: starter presets sample with 0-3 (v1, families) and 2_000-2_001 (v2).
SEALED_SEED = 39
SEALED_RECIPE: dict[str, Any] = dict(STARTER_RECIPE)
#: Every network on every dataset with two seeds (a label is their mean); the first
#: :data:`SEALED_NOISE_NETWORKS` get two more, so two independent two-seed labels
#: (seeds 0, 2 against 1, 3) give the suite's noise ceiling.
SEALED_SEEDS: tuple[int, ...] = (0, 1)
SEALED_NOISE_NETWORKS = 60
SEALED_NOISE_SEEDS: tuple[int, ...] = (2, 3)


def starter_genotype_keys() -> set[str]:
    """Keys of every genotype the starter presets sample (v1, v2, families), drawn
    again from their seeds without loading a dataset."""
    drawn: list[dict[str, Any]] = []
    for seed, spaces_ in ((STARTER_SEED, STARTER_SPACES), (STARTER_SEED + 2, STARTER_V2_SPACES)):
        for i, (name, n) in enumerate(spaces_.items()):
            drawn += sample_unique(name, n, seed * 1000 + i)
    for i, fam in enumerate(FAMILIES.values()):
        drawn += fam.sample(FAMILY_NETWORKS, STARTER_SEED * 1000 + i)
    return {genotype_key(g) for g in drawn}


def sealed_networks(spaces_: dict[str, int] | None = None, seed: int = SEALED_SEED
                    ) -> list[dict[str, Any]]:
    """The sealed networks: ``spaces_[name]`` distinct genotypes per space drawn with
    ``seed``, skipping any a starter preset samples, interleaved across spaces (so a
    run stopped early still has networks of every space)."""
    spaces_ = SEALED_SPACES if spaces_ is None else spaces_
    taken = starter_genotype_keys()
    per_space: list[list[dict[str, Any]]] = []
    for i, (name, n) in enumerate(spaces_.items()):
        pool = sample_unique(name, n + 50, seed * 1000 + i)
        fresh = [g for g in pool if genotype_key(g) not in taken][:n]
        if len(fresh) < n:
            raise ValueError(f"space {name!r}: only {len(fresh)} of {n} sealed networks are "
                             "not already in the starter presets")
        per_space.append(fresh)
    rng = random.Random(seed)
    out = [g for gs in per_space for g in gs]
    rng.shuffle(out)
    return out


def sealed_plan(datasets: Sequence[str] = SEALED_DATASETS,
                spaces_: dict[str, int] | None = None, noise_networks: int = SEALED_NOISE_NETWORKS,
                recipe: dict[str, Any] | None = None) -> Plan:
    """The sealed suite (``--preset sealed``): every sealed network on every sealed
    dataset it fits, seeds :data:`SEALED_SEEDS`; then :data:`SEALED_NOISE_SEEDS` for the
    first ``noise_networks``. Network by network, a (network, dataset)'s seeds together,
    so a run stopped at any point holds complete two-seed labels on every dataset."""
    recipe = dict(SEALED_RECIPE if recipe is None else recipe)
    Recipe(**recipe)
    infos = {d: dataset_info(d) for d in dict.fromkeys(datasets)}
    nets = sealed_networks(spaces_)

    def jobs_for(g: dict[str, Any], seeds: Sequence[int]) -> list[Job]:
        space = space_of(g)
        return [Job(genotype=g, dataset=d, recipe=dict(recipe), seed=s, source=SEALED_SOURCE,
                    tags={"suite": "sealed"})
                for d in infos if space.fits(tuple(infos[d]["input_shape"])) for s in seeds]

    jobs = [j for g in nets for j in jobs_for(g, SEALED_SEEDS)]
    jobs += [j for g in nets[:noise_networks] for j in jobs_for(g, SEALED_NOISE_SEEDS)]
    return Plan(jobs, infos)
