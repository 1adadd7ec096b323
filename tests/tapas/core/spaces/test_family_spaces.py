"""The scaled spaces of the starter families (``resnet``, ``nb101-small``,
``macro-small``): their published sizes build the published networks, and their rules."""

from __future__ import annotations

import random

import pytest

from tapas.core import spaces
from tapas.core.spaces import SPACES

resnet = SPACES["resnet"]


def _resnet(block: str, stem: int, widths: list[int], depths: list[int]) -> dict:
    return {"space": "resnet", "block": block, "stem": stem,
            "stages": [{"width": w, "depth": d} for w, d in zip(widths, depths, strict=True)]}


def test_resnet_18_and_50_have_their_published_parameter_counts() -> None:
    # the CIFAR ResNets (3x3 stem at stride 1, projection shortcuts), 10 classes
    r18 = resnet.build(_resnet("basic", 64, [64, 128, 256, 512], [2, 2, 2, 2]), (3, 32, 32), 10)
    assert r18.params == 11_173_962
    r50 = resnet.build(_resnet("bottleneck", 64, [256, 512, 1024, 2048], [3, 4, 6, 3]),
                       (3, 32, 32), 10)
    assert r50.params == 23_520_842


def test_resnet_rules_are_named() -> None:
    g = _resnet("bottleneck", 8, [16, 32], [1, 2])
    with pytest.raises(ValueError, match="divisible by 4"):
        resnet.validate({**g, "stages": [{"width": 18, "depth": 1}]})
    with pytest.raises(ValueError, match="'depth'"):
        resnet.validate({**g, "stages": [{"width": 16, "depth": 0}]})
    with pytest.raises(ValueError, match="1 to 4 stages"):
        resnet.validate({**g, "stages": []})
    with pytest.raises(ValueError, match="'block'"):
        resnet.validate({**g, "block": "dense"})
    assert resnet.describe(g) == "bottleneck stem=8 16x1 32x2"


def test_resnet_samples_cover_the_family_and_mutation_reaches_every_gene() -> None:
    gs = spaces.sample_unique("resnet", 150, 0)
    assert {g["block"] for g in gs} == {"basic", "bottleneck"}
    assert {len(g["stages"]) for g in gs} == {2, 3}
    rng = random.Random(0)
    changed = set()
    for g in gs[:40]:
        m = resnet.mutate(g, rng)
        changed |= {k for k in ("block", "stem") if m[k] != g[k]}
        if len(m["stages"]) != len(g["stages"]):
            changed.add("stages")
        elif m["stages"] != g["stages"]:
            changed.add("stage")
    assert changed == {"block", "stem", "stages", "stage"}


def test_scaled_spaces_at_published_size_build_the_published_networks() -> None:
    rng = random.Random(4)
    for _ in range(5):
        s = SPACES["macro"].sample(rng)
        small = {"space": "macro-small", "arch": s, "stem": 32, "head": 1280}
        assert SPACES["macro-small"].build(small, (3, 32, 32), 10) == \
            SPACES["macro"].build(s, (3, 32, 32), 10)
        cell = SPACES["nb101"].sample(rng)
        big = {**cell, "space": "nb101-small", "stem_channels": 128, "stacks": 3,
               "cells_per_stack": 3}
        assert SPACES["nb101-small"].build(big, (3, 32, 32), 10) == \
            SPACES["nb101"].build(cell, (3, 32, 32), 10)


def test_scaled_spaces_keep_their_size_through_mutation_and_name_bad_sizes() -> None:
    rng = random.Random(1)
    for name, size in (("macro-small", {"stem": 4, "head": 128}),
                       ("nb101-small", {"stem_channels": 16, "stacks": 3, "cells_per_stack": 1})):
        g = {**SPACES[name].sample(rng), **size}
        m = SPACES[name].mutate(g, rng)
        assert {k: m[k] for k in size} == size and m != g
        key = next(iter(size))
        with pytest.raises(ValueError, match=f"'{key}' must be an integer"):
            SPACES[name].validate({**g, key: 0})
        with pytest.raises(ValueError, match="genotype is"):
            SPACES[name].validate({**g, "extra": 1})
