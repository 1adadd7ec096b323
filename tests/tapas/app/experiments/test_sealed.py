"""The sealed test suite's preset (issue 39): its size and seeds, and that its datasets
and networks are none of the starter's, neither planned nor shipped."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import parse_qsl

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from lde.default_data import SHIPPED
from lde.starter import STARTER_DIR
from tapas.app.cli.main import app as cli_app
from tapas.app.experiments.plan import (
    FAMILIES_DATASETS,
    SEALED_DATASETS,
    SEALED_NOISE_NETWORKS,
    SEALED_NOISE_SEEDS,
    SEALED_SEEDS,
    SEALED_SOURCE,
    STARTER_DATASETS,
    STARTER_V2_DATASETS,
    sealed_plan,
    starter_genotype_keys,
)
from tapas.core import spaces

#: Every export a new default database is seeded with.
SHIPPED_FOLDERS = [e.directory for e in SHIPPED]

STARTER_SPECS = (*STARTER_DATASETS, *STARTER_V2_DATASETS, *FAMILIES_DATASETS)


@pytest.fixture(scope="module")
def plan():  # noqa: ANN201
    return sealed_plan()


def _parts(spec: str) -> tuple[str, set[str]]:
    base, _, query = spec.partition("?")
    return base, {k for k, _ in parse_qsl(query)}


def test_size_seeds_and_input_sizes(plan) -> None:  # noqa: ANN001
    assert len(plan.datasets) >= 4
    shapes = {tuple(v["input_shape"]) for v in plan.datasets.values()}
    assert any(s[1:] in ((28, 28), (32, 32)) for s in shapes)  # the sizes of real NAS work
    nets: dict[str, set[str]] = defaultdict(set)
    seeds: dict[tuple[str, str], list[int]] = defaultdict(list)
    for j in plan.jobs:
        k = spaces.genotype_key(j.genotype)
        nets[j.dataset].add(k)
        seeds[(j.dataset, k)].append(j.seed)
        assert j.source == SEALED_SOURCE and j.tags == {"suite": "sealed"}
    assert set(nets) == set(plan.datasets)
    assert min(len(v) for v in nets.values()) >= 100
    assert all(sorted(s)[:2] == list(SEALED_SEEDS) for s in seeds.values())  # every label
    four = Counter(len(s) for s in seeds.values())
    assert set(four) == {2, 4}
    assert four[4] >= SEALED_NOISE_NETWORKS * len(plan.datasets) - 10  # a ResNet may not fit
    assert {s for v in seeds.values() for s in v} == set(SEALED_SEEDS) | set(SEALED_NOISE_SEEDS)
    assert len(plan.jobs) == len({j.key for j in plan.jobs})  # no job twice
    used = Counter(spaces.space_of(j.genotype).name for j in plan.jobs)
    assert {"chain", "nb201-small", "resnet"} <= set(used)  # resnet: the starter never trains it


def test_jobs_go_network_by_network(plan) -> None:  # noqa: ANN001
    """A run stopped early holds complete two-seed labels on every dataset."""
    first = plan.jobs[:100]
    assert {j.seed for j in first} <= set(SEALED_SEEDS)
    assert {j.dataset for j in first} == set(plan.datasets)
    k0 = spaces.genotype_key(plan.jobs[0].genotype)
    head = [j for j in plan.jobs if spaces.genotype_key(j.genotype) == k0]
    assert plan.jobs[:len(head) - len(SEALED_NOISE_SEEDS) * len(plan.datasets)] == [
        j for j in head if j.seed in SEALED_SEEDS]


def test_datasets_are_new_sources_or_new_transformations(plan) -> None:  # noqa: ANN001
    starter_bases = {_parts(s)[0] for s in STARTER_SPECS}
    starter_params = set().union(*(_parts(s)[1] for s in STARTER_SPECS))
    starter_names = set(pq.read_table(STARTER_DIR / "datasets.parquet").column("name")
                        .to_pylist())
    for spec, info in plan.datasets.items():
        base, params = _parts(spec)
        assert base not in starter_bases or params - starter_params - {"per_class"}, spec
        assert info["name"] not in starter_names and spec not in STARTER_SPECS
    assert {_parts(s)[0] for s in SEALED_DATASETS} - starter_bases  # at least one new source


def test_networks_are_none_of_the_starter_s(plan) -> None:  # noqa: ANN001
    keys = {spaces.genotype_key(j.genotype) for j in plan.jobs}
    assert not keys & starter_genotype_keys()
    ids: set[str] = set()
    families: set[str] = set()
    for folder in SHIPPED_FOLDERS:  # everything a default database holds
        if (folder / "architectures.parquet").exists():
            shipped = pq.read_table(folder / "architectures.parquet", columns=["id", "family"])
            ids |= set(shipped.column("id").to_pylist())
            families |= set(shipped.column("family").to_pylist())
    assert len(families) > 500
    built = {(spaces.genotype_key(j.genotype), j.dataset): j for j in plan.jobs}
    for j in built.values():
        info = plan.datasets[j.dataset]
        arch = spaces.build(j.genotype, tuple(info["input_shape"]), info["num_classes"])
        assert arch.id not in ids and arch.template_id not in families, j.genotype


def test_nothing_sealed_is_shipped() -> None:
    """The shipped exports (the data every default database is seeded with) hold no
    sealed run, dataset or source."""
    sealed_names = {s.split("?")[0] for s in SEALED_DATASETS if s.split("?")[0] in
                    ("mnist1d64", "hopper")}
    assert sealed_names  # the new sources' runs would be recognisable by name
    for folder in SHIPPED_FOLDERS:
        if not (folder / "datasets.parquet").exists():
            continue
        names = pq.read_table(folder / "datasets.parquet").column("name").to_pylist()
        assert not set(names) & set(SEALED_DATASETS)
        assert not any(n.split("?")[0] in sealed_names for n in names)
        for part in Path(folder, "experiments").rglob("*.parquet"):
            src = set(pq.read_table(part, columns=["source"]).column("source").to_pylist())
            assert SEALED_SOURCE not in src, part


def test_cli_refuses_the_default_database(tapas_home: Path) -> None:
    res = CliRunner().invoke(cli_app, ["experiments", "run", "--preset", "sealed"])
    assert res.exit_code != 0 and "--preset sealed" in res.output and "--db" in res.output
    res = CliRunner().invoke(cli_app, ["experiments", "run", "--preset", "sealed", "--db",
                                       str(tapas_home / "lde.duckdb")])
    assert res.exit_code != 0 and "never be in the database" in res.output
    assert not (tapas_home / "lde.duckdb").exists()  # refused before anything was written
