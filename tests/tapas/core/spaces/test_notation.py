"""The one notation reader: every registered space's notation, the benchmarks' own
formats and the IR read to the networks their importers build; named notations,
ambiguity and values no notation reads are errors that say which notations."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from tapas.core import spaces
from tapas.core.arch import DARTS_V2, ArchError, from_darts, from_nb101, from_nb201
from tapas.core.spaces import (
    IR,
    SPACES,
    NotationError,
    notations,
    parse_arch,
    parse_archs,
    read_notation,
)
from tapas.core.spaces.nb201 import NB201Cells
from tapas.core.types import ArchListError
from tests.tapas.core.arch.test_darts_nb101 import NB101_README

CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
        "skip_connect~2|")
SHAPE = (3, 32, 32)


def test_the_order_is_the_registry_then_the_ir() -> None:
    assert notations() == [*SPACES, IR]


@pytest.mark.parametrize("name", list(SPACES))
def test_every_registered_space_reads_its_genotypes_named_or_not(name: str) -> None:
    space = SPACES[name]
    for g in spaces.sample_unique(name, 5, 4):
        net = space.build(g, SHAPE, 10)
        text = space.format(g)
        for value in (g, text, f"{name}:{text}", json.loads(json.dumps(g))):
            n = read_notation(value)
            assert n.space is space and n.value == g, value
            assert parse_arch(value, 10, SHAPE) == net


def test_the_benchmarks_own_notations_build_their_networks() -> None:
    darts_v2 = from_darts(DARTS_V2)  # the evaluation network, C=36, 20 cells
    assert darts_v2.params == 3_349_342
    readme = from_nb101(NB101_README)
    assert readme.params == 8_555_530
    sized = {"genotype": DARTS_V2, "C": 16, "layers": 8}
    untagged = {k: v for k, v in SPACES["darts"].parse(sized).items() if k != "space"}
    cases: list[tuple[Any, str, Any]] = [
        (CELL, "nb201", from_nb201(CELL, 10, 32)),
        (f"  {CELL}  ", "nb201", from_nb201(CELL, 10, 32)),
        (DARTS_V2, "darts", darts_v2),
        (f"darts:{DARTS_V2}", "darts", darts_v2),
        (sized, "darts", from_darts(DARTS_V2, 16, 8)),
        (json.dumps(sized), "darts", from_darts(DARTS_V2, 16, 8)),
        ("darts:" + json.dumps(sized), "darts", from_darts(DARTS_V2, 16, 8)),
        (untagged, "darts", from_darts(DARTS_V2, 16, 8)),
        (NB101_README, "nb101", readme),
        (json.dumps(NB101_README), "nb101", readme),
        ("nb101:" + json.dumps(NB101_README), "nb101", readme),
        (readme.to_dict(), IR, readme),
        (readme.canonical_json, IR, readme),
        ("ir:" + readme.canonical_json, IR, readme),
        (readme, IR, readme),
    ]
    for value, name, net in cases:
        assert read_notation(value).name == name, value
        assert parse_arch(value) == net, value
    assert parse_archs([c[0] for c in cases]) == [c[2] for c in cases]
    # the IR keeps its own input; a genotype is built for the target
    assert parse_arch(readme.to_dict(), 100, (3, 16, 16)) == readme
    assert parse_arch(NB101_README, 100, (3, 16, 16)).num_classes == 100


def test_a_prefix_may_leave_out_the_space_tag() -> None:
    g = spaces.sample_unique("chain", 1, 0)[0]
    bare = {k: v for k, v in g.items() if k != "space"}
    assert read_notation("chain:" + json.dumps(bare)).value == g
    with pytest.raises(NotationError, match="no known notation"):
        read_notation(json.dumps(bare))  # unnamed and untagged: no notation reads it


def test_values_no_notation_reads_list_the_notations_tried() -> None:
    tried = ", ".join(notations())
    for value in ("resnet18", "foo:bar", "{}", [1, 2]):
        with pytest.raises(ArchError) as e:
            read_notation(value)
        if not isinstance(value, list):
            assert f"tried {tried}" in str(e.value) and e.value.tried == notations()
    with pytest.raises(ArchError, match="malformed JSON at line 1, column 2"):
        read_notation("{bad")


def test_a_value_in_one_notation_with_a_mistake_says_what_is_wrong() -> None:
    bad_nb101 = {**NB101_README, "ops": ["input", "conv3x3-bn-relu", "output"]}
    with pytest.raises(ArchError, match="not a valid nb101 genotype"):
        read_notation(bad_nb101)
    with pytest.raises(ArchError, match="not a valid darts genotype: .*unknown DARTS op"):
        read_notation(DARTS_V2.replace("dil_conv_3x3", "conv_9x9"))
    with pytest.raises(ArchError, match="unknown NAS-Bench-201 op"):
        read_notation(CELL.replace("avg_pool_3x3", "max_pool_9x9"))
    with pytest.raises(ArchError, match="unknown search space 'resnet50'"):
        read_notation({"space": "resnet50", "depth": 18})
    with pytest.raises(ArchError, match="not a valid resnet genotype: .*'block'"):
        read_notation({"space": "resnet", "depth": 18})
    with pytest.raises(ArchError, match="not a valid darts genotype"):
        read_notation("darts:" + CELL)  # named: only that notation is tried
    ir = from_nb201(CELL, 10, 32).to_dict()
    ir["layers"][1]["op"] = "conv9"
    with pytest.raises(ArchListError) as e:
        parse_archs([CELL, ir])
    assert e.value.path.startswith("archs[1].layers[1]") and "unknown op 'conv9'" in str(e.value)
    with pytest.raises(ArchListError, match=r"archs\[0\]: the darts space needs inputs whose "
                       "sides are multiples of 4"):
        parse_archs([DARTS_V2], 10, (3, 30, 30))


class _Copycat(NB201Cells):
    """A space whose notation is NAS-Bench-201's too."""

    name = "copycat"


class _Widths(spaces.DictSpace):
    """A space the notation reader has never seen: widths of a one-layer network."""

    name = "widths-test"
    description = "a test space"
    inputs = "any input"

    def sample(self, rng: random.Random) -> dict[str, Any]:
        return {"space": self.tag, "width": rng.choice([8, 16])}

    def mutate(self, genotype: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        return {**genotype, "width": 24 - genotype["width"]}

    def validate(self, genotype: Any) -> None:
        self._check_tag(genotype)
        if genotype.get("width") not in (8, 16):
            raise ValueError("widths-test genotype: 'width' must be 8 or 16")

    def fits(self, input_shape: tuple[int, ...]) -> bool:
        return True

    def describe(self, genotype: dict[str, Any]) -> str:
        return str(genotype["width"])

    def _network(self, genotype: dict[str, Any], input_shape: tuple[int, int, int],
                 num_classes: int) -> Any:
        from tapas.core.arch import Architecture

        return Architecture.from_dict({
            "input": {"shape": list(input_shape), "num_classes": num_classes},
            "layers": [{"op": "conv", "out": genotype["width"], "kernel": 3, "padding": 1},
                       {"op": "gap"}, {"op": "flatten"},
                       {"op": "linear", "out": num_classes}]})


@pytest.fixture()
def registered(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Register spaces for one test only (the registry and its tag table)."""
    from tapas.core.spaces import base

    def add(space: spaces.Space) -> None:
        monkeypatch.setitem(SPACES, space.name, space)
        for tag in getattr(space, "tags", ()):
            monkeypatch.setitem(base._BY_TAG, tag, space)
    return add


def test_a_newly_registered_space_is_read_with_no_edit(registered: Any) -> None:
    space = _Widths()
    registered(space)
    assert notations()[-2:] == ["widths-test", IR]
    net = space.build({"space": "widths-test", "width": 16}, (1, 9, 9), 5)
    for value in ('{"space": "widths-test", "width": 16}', 'widths-test:{"width": 16}',
                  {"space": "widths-test", "width": 16}):
        n = read_notation(value)
        assert n.name == "widths-test" and n.value == {"space": "widths-test", "width": 16}
        assert parse_arch(value, 5, (1, 9, 9)) == net
    with pytest.raises(ArchError, match="'width' must be 8 or 16"):
        read_notation({"space": "widths-test", "width": 3})


def test_two_notations_reading_one_value_is_an_error_naming_both(registered: Any) -> None:
    registered(_Copycat())
    with pytest.raises(NotationError, match="reads as nb201 and as copycat; name one with a "
                       r"prefix \(nb201:...\)") as e:
        read_notation(CELL)
    assert e.value.tried == ["nb201", "copycat"]
    assert read_notation(f"copycat:{CELL}").name == "copycat"
    assert read_notation(f"nb201:{CELL}").name == "nb201"



def test_reading_leaves_no_cyclic_garbage() -> None:
    """The service freezes what a large request leaves (``service.body.gc_paused``), so a
    reference cycle made per value read would never be freed: 6,000 NAS-Bench-201 cells
    once held ~900 MB this way (an unnamed value is tried against every notation, and the
    failed tries' errors were kept with tracebacks leading back to the reader)."""
    import gc

    from tapas.core.arch import all_cells

    cells = all_cells()
    random.Random(7).shuffle(cells)
    darts = spaces.SPACES["darts"].sample(random.Random(3))
    values = [*cells[:50], DARTS_V2, json.dumps(NB101_README), darts,
              json.dumps(from_nb201(cells[50], 10, 32).to_dict())]
    gc.collect()
    gc.disable()
    try:
        parse_archs(values, 10, SHAPE)
        assert gc.collect() == 0
    finally:
        gc.enable()
