"""Search spaces: seeded sampling, valid builds on every dataset shape, shared templates,
and mutation."""

from __future__ import annotations

import json
import random

import pytest

from tapas import spaces
from tapas.arch import ArchError, Architecture
from tapas.spaces import chain, nb201

# every input shape the starter datasets use: digits 8x8, MNIST 7x7 and 4x4, MNIST-1D 5x8
SHAPES = [((1, 8, 8), 10), ((1, 7, 7), 10), ((1, 4, 4), 10), ((1, 5, 8), 10), ((1, 8, 8), 4),
          ((3, 28, 28), 3)]


@pytest.mark.parametrize("mod", [chain, nb201])
def test_sample_is_seeded(mod) -> None:
    a = [mod.sample(random.Random(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    many = {json.dumps(mod.sample(random.Random(s)), sort_keys=True) for s in range(50)}
    assert len(many) > 40
    assert spaces.sample_unique(mod.NAME, 30, 3) == spaces.sample_unique(mod.NAME, 30, 3)


@pytest.mark.parametrize("name", ["chain", "nb201"])
def test_builds_share_a_template_across_datasets(name: str) -> None:
    mod = spaces.get_space(name)
    gs = spaces.sample_unique(name, 40, 1)
    templates = set()
    for g in gs:
        json.loads(json.dumps(g))  # JSON-able
        built = [spaces.build(g, shape, k) for shape, k in SHAPES if mod.compatible(shape)]
        assert len(built) >= 2
        assert len({a.template_id for a in built}) == 1, spaces.genotype_key(g)
        assert len({a.id for a in built}) == len(built)
        for a, (shape, k) in zip(built, [s for s in SHAPES if mod.compatible(s[0])],
                                 strict=True):
            assert a.input_shape == shape and a.output_shape == (k,)
            assert Architecture.from_json(a.canonical_json) == a
        templates.add(built[0].template_id)
    assert len(templates) == len(gs)  # sample_unique gives distinct networks


def test_chain_covers_its_documented_choices() -> None:
    gs = spaces.sample_unique("chain", 300, 0)
    ops = {layer[0] for g in gs for layer in chain.build(g, (1, 8, 8), 10).layers}
    assert {"conv", "bn", "relu", "add", "maxpool", "avgpool", "dropout", "gap", "flatten",
            "linear"} <= ops
    assert {len(g["stages"]) for g in gs} == {1, 2, 3}
    assert {b["kernel"] for g in gs for s in g["stages"] for b in s["blocks"]} == {1, 3, 5}
    assert {g["bn"] for g in gs} == set(chain.BNS)


@pytest.mark.parametrize("name", ["chain", "nb201"])
def test_mutate_is_a_seeded_local_edit(name: str) -> None:
    mod = spaces.get_space(name)
    rng = random.Random(0)
    for g in spaces.sample_unique(name, 30, 2):
        before = json.dumps(g, sort_keys=True)
        m1 = mod.mutate(g, random.Random(5))
        m2 = mod.mutate(g, random.Random(5))
        assert m1 == m2 and m1 != g
        assert json.dumps(g, sort_keys=True) == before  # the argument is unchanged
        for _ in range(5):
            g2 = mod.mutate(m1, rng)
            spaces.build(g2, (1, 8, 8), 10)  # still valid
            m1 = g2


def test_nb201_mutation_changes_one_edge() -> None:
    g = {"space": "nb201", "cell": nb201.cell_string(["nor_conv_3x3"] * 6), "channels": 8,
         "cells_per_stage": 1}
    rng = random.Random(1)
    for _ in range(20):
        m = nb201.mutate(g, rng)
        changed = sum(a != b for a, b in zip(nb201.cell_ops(g["cell"]), nb201.cell_ops(m["cell"]),
                                             strict=True))
        macro = (m["channels"], m["cells_per_stage"]) != (8, 1)
        assert changed + macro == 1


def test_bad_genotypes_and_shapes_are_named() -> None:
    g = spaces.sample_unique("chain", 1, 0)[0]
    with pytest.raises(ValueError, match="width"):
        chain.build({**g, "stages": [{"width": 7, "blocks": g["stages"][0]["blocks"]}]},
                    (1, 8, 8), 10)
    with pytest.raises(ValueError, match="'bn'"):
        chain.build({**g, "bn": "sometimes"}, (1, 8, 8), 10)
    with pytest.raises(ValueError, match="unknown search space"):
        spaces.build({"space": "resnet"}, (1, 8, 8), 10)
    cell = spaces.sample_unique("nb201", 1, 0)[0]
    with pytest.raises(ValueError, match="multiple of 4"):
        spaces.build(cell, (1, 5, 8), 10)
    with pytest.raises(ArchError, match="unknown NAS-Bench-201 op"):
        spaces.build({**cell, "cell": cell["cell"].replace("~0", "x~0", 1).replace(
            "|", "|conv9", 1)}, (1, 8, 8), 10)
    assert not chain.compatible((1, 3, 8))


def test_built_networks_run_in_torch() -> None:
    torch = pytest.importorskip("torch")
    from tapas.arch import to_module

    torch.set_num_threads(1)
    for name in ("chain", "nb201"):
        for g in spaces.sample_unique(name, 2, 9):
            for shape, k in SHAPES[:4]:
                if not spaces.get_space(name).compatible(shape):
                    continue
                out = to_module(spaces.build(g, shape, k)).eval()(torch.zeros(2, *shape))
                assert tuple(out.shape) == (2, k)
