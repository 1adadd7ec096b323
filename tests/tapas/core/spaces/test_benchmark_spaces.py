"""The NAS-Bench-Macro and Accel-NASBench spaces' own rules (the registry's contract
test runs the rest): keys that tell networks apart exactly, mutations that change the
network, and the benchmarks' notations read as published."""

from __future__ import annotations

import itertools
import random

import pytest

from tapas.core import spaces
from tapas.core.arch.accel import VARIABLES, from_accel
from tapas.core.arch.macro import from_macro
from tapas.core.spaces import SPACES

macro, accel = SPACES["macro"], SPACES["accel"]


def test_macro_keys_are_the_trained_strings() -> None:
    strings = ["".join(p) for p in itertools.product("012", repeat=8)]
    assert macro.size == len(strings) == 6561
    by_key: dict[str, list[str]] = {}
    for s in strings:
        by_key.setdefault(macro.key(s), []).append(s)
    assert len(by_key) == 3969  # the benchmark's distinct trained networks
    assert macro.key("00101001") == "00110010" and macro.key("00110010") == "00110010"
    rng = random.Random(0)
    for key in rng.sample(sorted(by_key), 40):  # strings of one key build one network
        group = by_key[key]
        assert {macro.build(s, (3, 32, 32), 10).id for s in group} == {from_macro(key).id}


def test_macro_notation_and_mutation() -> None:
    assert spaces.space_of("02012100") is macro
    assert macro.parse(" 02012100\n") == "02012100"
    with pytest.raises(ValueError, match="8 characters"):
        macro.parse("0201210")
    rng = random.Random(1)
    g = "00000000"
    for _ in range(50):
        m = macro.mutate(g, rng)
        assert sum(a != b for a, b in zip(g, m, strict=True)) == 1
        assert macro.key(m) != macro.key(g)
        g = m
    assert macro.fits((3, 8, 8)) and not macro.fits((3, 7, 32))


def test_accel_reads_the_published_designs() -> None:
    row = dict(zip(VARIABLES, [6, 3, 2, 1, 1, 5, 3, 1, 1, 5, 1, 1, 1, 5, 2, 1, 4, 3, 1, 1, 1,
                               5, 2, 1, 4, 5, 1, 1], strict=True))
    g = accel.parse({"space": "accel", **row})
    assert g["block0_se"] is True and accel.parse(accel.format(g)) == g
    assert accel.key({"space": "accel", **row}) == accel.key(g)
    assert accel.build(g, (3, 224, 224), 1000) == from_accel(row)
    assert accel.describe(g).split()[:2] == ["e6k3l2se", "e1k5l3se"]
    assert accel.size == 36 ** 6 * 48
    assert accel.fits((3, 32, 32)) and not accel.fits((3, 28, 28))


def test_accel_mutation_sets_one_variable() -> None:
    rng = random.Random(2)
    g = accel.sample(rng)
    for _ in range(50):
        m = accel.mutate(g, rng)
        assert sum(g[v] != m[v] for v in VARIABLES) == 1 and accel.key(m) != accel.key(g)
        g = m
    assert {g["block5_l"] for g in (accel.sample(random.Random(s)) for s in range(60))} == {
        1, 2, 3, 4}
