"""The space registry: a contract every registered space passes, the stored starter
genotypes read back as the networks they were trained as, and each space's own rules."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from tapas.app.search import check_space
from tapas.core import spaces
from tapas.core.arch import ArchError, Architecture
from tapas.core.spaces import SPACES, Space
from tapas.core.types import Target

# every input shape the starter datasets use: digits 8x8, MNIST 7x7 and 4x4, MNIST-1D 5x8,
# the 28x28 / 32x32 inputs of the v2 datasets and the benchmarks, and a 64x64 one (down-sampled
# ImageNet) for the ImageNet-sized space
SHAPES = [((1, 8, 8), 10), ((1, 7, 7), 10), ((1, 4, 4), 10), ((1, 5, 8), 10), ((1, 8, 8), 4),
          ((3, 28, 28), 3), ((3, 16, 32), 10), ((1, 3, 8), 10), ((3, 32, 32), 100),
          ((3, 64, 64), 200)]


class SpaceContract:
    """What every space promises its users (the search, the experiment planner, the
    scorer). Reusable: a test class for a new space subclasses it and overrides the
    ``space`` fixture; :class:`TestRegisteredSpaces` runs it on every registered one."""

    @pytest.fixture
    def space(self) -> Space:
        raise NotImplementedError

    def test_metadata_and_search_protocol(self, space: Space) -> None:
        assert SPACES[space.name] is space
        assert space.description and "\n" not in space.description and space.inputs
        assert space.size is None or space.size > 1
        check_space(space)  # what a search needs

    def test_sample_is_seeded_and_diverse(self, space: Space) -> None:
        a, b = space.sample(random.Random(7)), space.sample(random.Random(7))
        assert a == b
        many = {space.format(space.sample(random.Random(s))) for s in range(40)}
        assert len(many) > 30
        assert spaces.sample_unique(space.name, 20, 3) == spaces.sample_unique(space.name, 20, 3)

    def test_notation_round_trips(self, space: Space) -> None:
        for g in spaces.sample_unique(space.name, 10, 1):
            assert space.parse(space.format(g)) == g
            assert space.parse(json.loads(json.dumps(g))) == g  # JSON-able
            assert spaces.space_of(g) is space
        with pytest.raises(ValueError):
            space.parse({"space": space.name + "-nope"})

    def test_key_is_stable_and_one_per_network(self, space: Space) -> None:
        gs = spaces.sample_unique(space.name, 25, 2)
        keys = [space.key(g) for g in gs]
        assert keys == [space.key(copy.deepcopy(g)) for g in gs]
        assert len(set(keys)) == len(gs)  # distinct networks, distinct keys
        assert len({spaces.template_of(g) for g in gs}) == len(gs)

    def test_mutate_is_one_seeded_valid_edit(self, space: Space) -> None:
        rng = random.Random(0)
        for g in spaces.sample_unique(space.name, 10, 4):
            before = space.format(g)
            m1, m2 = space.mutate(g, random.Random(5)), space.mutate(g, random.Random(5))
            assert m1 == m2 and m1 != g
            assert space.format(g) == before  # the argument is unchanged
            for _ in range(5):
                m1 = space.mutate(m1, rng)
                space.validate(m1)

    def test_template_does_not_depend_on_the_input(self, space: Space) -> None:
        fitting = [(s, k) for s, k in SHAPES if space.fits(s)]
        assert len(fitting) >= 2
        for g in spaces.sample_unique(space.name, 3, 5):
            built = [space.build(g, s, k) for s, k in fitting]
            assert len({a.template_id for a in built}) == 1
            assert len({a.id for a in built}) == len(built)
            for a, (s, k) in zip(built, fitting, strict=True):
                assert a.input_shape == s and a.output_shape == (k,)
                assert Architecture.from_json(a.canonical_json) == a

    def test_check_rejects_impossible_inputs(self, space: Space) -> None:
        g = space.sample(random.Random(0))
        bad = [s for s, _ in SHAPES if not space.fits(s)]
        assert bad, "every space has inputs it cannot build for"
        for s in bad:
            with pytest.raises(ValueError, match=f"the {space.name} space needs"):
                space.check(Target(dcn=0.5, dataset=None, num_classes=10, input_shape=s))
            with pytest.raises(ValueError, match=str(list(s)).replace("[", r"\[")):
                space.build(g, s, 10)
        space.check(Target(dcn=0.5, dataset=None, num_classes=10,
                           input_shape=next(s for s, _ in SHAPES if space.fits(s))))

    def test_query_is_what_the_scorer_expands(self, space: Space) -> None:
        g = space.sample(random.Random(3))
        for s, k in [(s, k) for s, k in SHAPES if space.fits(s)][:2]:
            target = Target(dcn=0.5, dataset=None, num_classes=k, input_shape=s)
            assert spaces.parse_arch(space.query(g, target), k, s) == space.build(g, s, k)


class TestRegisteredSpaces(SpaceContract):
    @pytest.fixture(params=list(SPACES))
    def space(self, request: pytest.FixtureRequest) -> Space:
        return SPACES[request.param]


def test_the_registry_names_each_space_once() -> None:
    assert list(SPACES) == ["nb201", "nb201-small", "chain", "darts", "nb101", "macro", "accel",
                           "nb101-small", "macro-small", "resnet"]
    with pytest.raises(ValueError, match="unknown search space 'resnet50'; expected one of nb201"):
        spaces.get_space("resnet50")
    with pytest.raises(ValueError, match="already registered"):
        spaces.register(SPACES["chain"])
    assert SPACES["nb201"].size == 15_625 and len(SPACES["nb201"].enumerate()) == 15_625


def _stored_genotypes() -> list[tuple[Any, str, tuple[int, int, int], int]]:
    import duckdb

    from lde.starter import STARTER_DIR

    con = duckdb.connect()
    try:
        rows = con.execute(f"""
            SELECT DISTINCT json_extract(e.hparams, '$.genotype')::VARCHAR, e.arch_id,
                   a.input_shape, a.num_classes
            FROM read_parquet('{STARTER_DIR}/experiments/*/*.parquet') e
            JOIN read_parquet('{STARTER_DIR}/architectures.parquet') a ON a.id = e.arch_id
            ORDER BY 2""").fetchall()
    finally:
        con.close()
    return [(json.loads(g), a, tuple(s), k) for g, a, s, k in rows]


def test_stored_starter_genotypes_build_the_networks_they_trained() -> None:
    """The starter data stores the reduced NAS-Bench-201 genotypes with the tag "nb201":
    the registry reads them as ``nb201-small`` and builds the very networks stored, so
    no stored architecture id, template id or job key changes."""
    rows = _stored_genotypes()
    assert {g["space"] for g, *_ in rows} == {"chain", "nb201"}
    for g, arch_id, shape, k in rows:
        space = spaces.space_of(g)
        assert space.name == {"chain": "chain", "nb201": "nb201-small"}[g["space"]]
        assert space.parse(g) == g  # the legacy tag is kept, not rewritten
        assert spaces.build(g, shape, k).id == arch_id
    g = next(r[0] for r in rows if r[0]["space"] == "nb201")
    renamed = {**g, "space": "nb201-small"}
    assert SPACES["nb201-small"].parse(renamed) == g
    assert spaces.template_of(renamed) == spaces.template_of(g)


def test_chain_covers_its_documented_choices() -> None:
    from tapas.core.spaces import chain

    gs = spaces.sample_unique("chain", 300, 0)
    ops = {layer[0] for g in gs for layer in SPACES["chain"].build(g, (1, 8, 8), 10).layers}
    assert {"conv", "bn", "relu", "add", "maxpool", "avgpool", "dropout", "gap", "flatten",
            "linear"} <= ops
    assert {len(g["stages"]) for g in gs} == {1, 2, 3}
    assert {b["kernel"] for g in gs for s in g["stages"] for b in s["blocks"]} == {1, 3, 5}
    assert {g["bn"] for g in gs} == set(chain.BNS)


@pytest.mark.parametrize("name", ["nb201", "nb201-small"])
def test_nb201_mutation_changes_one_edge(name: str) -> None:
    from tapas.core.arch import cell_ops, cell_string

    space = SPACES[name]
    cell = cell_string(["nor_conv_3x3"] * 6)
    g: Any = cell if name == "nb201" else {"space": "nb201", "cell": cell, "channels": 8,
                                           "cells_per_stage": 1}
    rng = random.Random(1)
    for _ in range(20):
        m = space.mutate(g, rng)
        if name == "nb201":
            assert sum(a != b for a, b in zip(cell_ops(g), cell_ops(m), strict=True)) == 1
            continue
        changed = sum(a != b for a, b in zip(cell_ops(g["cell"]), cell_ops(m["cell"]),
                                             strict=True))
        macro = (m["channels"], m["cells_per_stage"]) != (8, 1)
        assert changed + macro == 1


def test_bad_genotypes_are_named() -> None:
    chain = SPACES["chain"]
    g = spaces.sample_unique("chain", 1, 0)[0]
    with pytest.raises(ValueError, match="width"):
        chain.build({**g, "stages": [{"width": 7, "blocks": g["stages"][0]["blocks"]}]},
                    (1, 8, 8), 10)
    with pytest.raises(ValueError, match="'bn'"):
        chain.build({**g, "bn": "sometimes"}, (1, 8, 8), 10)
    with pytest.raises(ValueError, match="not a genotype of the chain space"):
        chain.build({**g, "space": "darts"}, (1, 8, 8), 10)
    with pytest.raises(ValueError, match="unknown search space"):
        spaces.build({"space": "resnet50"}, (1, 8, 8), 10)
    with pytest.raises(ValueError, match="JSON object"):
        chain.parse("{stages")
    cell = spaces.sample_unique("nb201-small", 1, 0)[0]
    with pytest.raises(ValueError, match="multiple of 4"):
        spaces.build(cell, (1, 5, 8), 10)
    with pytest.raises(ArchError, match="unknown NAS-Bench-201 op"):
        spaces.build({**cell, "cell": cell["cell"].replace("~0", "x~0", 1).replace(
            "|", "|conv9", 1)}, (1, 8, 8), 10)
    with pytest.raises(ValueError, match="not a genotype of any search space"):
        spaces.space_of("resnet18")


def test_built_networks_run_in_torch() -> None:
    torch = pytest.importorskip("torch")
    from tapas.core.arch import to_module

    torch.set_num_threads(1)
    for name in ("chain", "nb201-small"):
        for g in spaces.sample_unique(name, 2, 9):
            for shape, k in SHAPES[:4]:
                if not SPACES[name].fits(shape):
                    continue
                out = to_module(spaces.build(g, shape, k)).eval()(torch.zeros(2, *shape))
                assert tuple(out.shape) == (2, k)
