"""NAS-Bench-201 expansion against the benchmark's reference parameter counts."""

from __future__ import annotations

import csv

import pytest

from tapas.core.arch import ArchError, all_cells, from_nb201, parse_cell

CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
GEOMETRY = {"cifar10": (10, 32), "cifar100": (100, 32), "imagenet16": (120, 16)}


@pytest.mark.slow
def test_reference_params_every_row(shared_data) -> None:
    worst = 0.0
    flop_dev = []
    with open(shared_data / "nb201_zero_cost.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2174
    for row in rows:
        classes, size = GEOMETRY[row["dataset"]]
        arch = from_nb201(row["arch_str"], classes, size)
        ref = float(row["params"]) * 1e6
        worst = max(worst, abs(arch.params - ref) / ref)
        flop_dev.append(arch.flops / (float(row["flops"]) * 1e6) - 1)
    assert worst <= 1e-3, f"largest parameter deviation {worst:.2%}"
    # Our FLOPs count conv/linear MACs only; the reference also counts element-wise work.
    assert -0.5 < min(flop_dev) <= max(flop_dev) <= 0.0


def test_structure_and_shapes() -> None:
    a = from_nb201(CELL)
    assert a.output_shape == (10,)
    convs = [li for li in a.infos if li.op == "conv"]
    # stem + 15 cells x 3 conv edges + 2 reductions x 3 convs
    assert len(convs) == 1 + 15 * 3 + 2 * 3
    assert {li.out_shape[0] for li in convs} == {16, 32, 64}
    small = from_nb201(CELL, num_classes=120, input_size=16)
    assert small.infos[-2].in_shapes[0] == (64, 4, 4)


def test_all_cells_are_distinct_and_valid() -> None:
    cells = all_cells()
    assert len(cells) == len(set(cells)) == 15_625
    assert parse_cell(cells[0])[2] == [("none", 0), ("none", 1), ("none", 2)]
    assert from_nb201(cells[-1]).id != from_nb201(cells[-2]).id


@pytest.mark.parametrize("bad", [
    "", "|nor_conv_3x3~0|", "|nor_conv_3x3~0|+|conv~0|none~1|+|none~0|none~1|none~2|",
    "|none~0|+|none~0|none~2|+|none~0|none~1|none~2|",
    "|none~0|+|none~0|+|none~0|none~1|none~2|", "none~0+none~0|none~1+a",
])
def test_bad_cells(bad: str) -> None:
    with pytest.raises(ArchError, match="NAS-Bench-201"):
        from_nb201(bad)
