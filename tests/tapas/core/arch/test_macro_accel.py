"""NAS-Bench-Macro and Accel-NASBench importers against the published parameter and
MAC counts: a few rows written out here, and every row of the shared tables."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from tapas.core.arch import ArchError
from tapas.core.arch.accel import VARIABLES, from_accel, parse_design, thop_macs
from tapas.core.arch.macro import canonical_string, from_macro
from tests.tapas.core.arch.torch_checks import assert_module_matches

# nas_bench_macro_cifar10.csv: arch, trained_arch, params, flops
MACRO_ROWS = [
    ("00000000", "00000000", 387_882, 7_713_280),
    ("11111111", "11111111", 1_588_874, 53_246_464),
    ("20000000", "20000000", 409_834, 17_854_976),
    ("22222222", "22222222", 2_932_586, 105_660_928),
    ("00101001", "00110010", 926_314, 24_932_864),
    ("02012100", "02012100", 890_666, 47_327_744),
]

# accel_nasbench_imagenet.csv: (e, k, l, se) of blocks 0-6, macs_M, params_M
ACCEL_ROWS = [
    ("6,3,1,0,4,5,2,0,6,3,3,0,6,5,3,0,6,5,2,0,1,3,2,0,1,3,2,0", 415.361072, 2.50116),
    ("4,5,3,0,4,3,1,0,1,3,1,0,1,5,2,0,6,3,1,0,4,5,3,0,4,3,2,0", 426.06032, 3.8534),
    ("6,3,2,1,1,5,3,1,1,5,1,1,1,5,2,1,4,3,1,1,1,5,2,1,4,5,1,1", 308.15264, 2.399896),
    ("4,5,2,0,4,3,2,1,4,3,3,1,1,3,2,0,6,5,2,1,4,5,4,1,1,5,3,0", 434.430368, 3.752384),
]


def _design(values: str | list[str]) -> dict[str, int]:
    vals = values.split(",") if isinstance(values, str) else values
    return {v: int(x) for v, x in zip(VARIABLES, vals, strict=True)}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("arch, trained, params, flops", MACRO_ROWS)
def test_macro_rows_have_the_published_size(arch: str, trained: str, params: int,
                                            flops: int) -> None:
    a = from_macro(arch)
    assert a.params == params
    assert a.flops == flops + 10  # the benchmark leaves out the classifier's bias
    assert a.output_shape == (10,)
    assert canonical_string(arch) == trained
    assert from_macro(trained) == a  # moving a later identity changes nothing


def test_macro_network_structure() -> None:
    a = from_macro("00000000")
    convs = [li for li in a.infos if li.op == "conv"]
    # stem, three strided 1x1 projections, head: the other identities leave no layer
    assert [(li.out_shape, li.fields["stride"]) for li in convs] == [
        ((32, 32, 32), 1), ((64, 16, 16), 2), ((128, 8, 8), 2), ((256, 4, 4), 2),
        ((1280, 4, 4), 1)]
    b = from_macro("12000000")
    dw = [li for li in b.infos if li.op == "conv" and li.fields["groups"] > 1]
    # expansion from the block input's width: 32 * 3, then 64 * 6
    assert [(li.fields["out"], li.fields["kernel"], li.fields["stride"]) for li in dw] == [
        (96, 3, 2), (384, 5, 1)]
    assert [op for op, _, _ in b.layers].count("add") == 1  # only the stride-1 block
    assert from_macro("00000000", 100, (3, 64, 64)).output_shape == (100,)


def test_macro_bad_strings_are_named() -> None:
    for bad in ("0120", "01201203", "0120 120", 12012012):
        with pytest.raises(ArchError, match="NAS-Bench-Macro network"):
            from_macro(bad)


@pytest.mark.parametrize("values, macs_m, params_m", ACCEL_ROWS)
def test_accel_rows_have_the_published_size(values: str, macs_m: float,
                                            params_m: float) -> None:
    a = from_accel(_design(values))
    assert a.params == round(params_m * 1e6)
    assert thop_macs(a) == round(macs_m * 1e6)
    # the IR's count leaves out batch norm and pooling, which thop counts
    assert 0.85 < a.flops / thop_macs(a) < 1
    assert a.input_shape == (3, 224, 224) and a.output_shape == (1000,)
    assert a.infos[-3].in_shapes[0] == (1280, 7, 7)  # the head's pool sees 7x7


def test_efficientnet_b0_has_torchvision_size() -> None:
    """EfficientNet-B0's design in this space: torchvision's ``efficientnet_b0`` has
    5,288,548 parameters (its activation, SiLU, has none)."""
    e, k, n = [1, 6, 6, 6, 6, 6, 6], [3, 3, 5, 3, 5, 5, 3], [1, 2, 2, 3, 3, 4, 1]
    design = {}
    for b in range(7):
        design.update({f"block{b}_e": e[b], f"block{b}_k": k[b], f"block{b}_l": n[b],
                       f"block{b}_se": True})
    assert from_accel(design).params == 5_288_548


def test_accel_design_notation() -> None:
    d = _design(ACCEL_ROWS[2][0])
    parsed = parse_design(d)
    assert parsed["block0_se"] is True and parsed["block5_l"] == 2
    assert from_accel(parsed) == from_accel(d)  # 0/1 and booleans are one design
    import json

    assert from_accel(json.dumps(parsed)) == from_accel(d)
    cases: list[tuple[dict[str, Any], str]] = [
        ({**d, "block5_l": 5}, "block5_l.*one of \\[1, 2, 3, 4\\]"),
        ({**d, "block2_l": 4}, "block2_l.*one of \\[1, 2, 3\\]"),
        ({**d, "block0_e": 3}, "block0_e"),
        ({**d, "block1_se": 2}, "block1_se.*true or false"),
        ({k: v for k, v in d.items() if k != "block6_k"}, "missing \\['block6_k'\\]"),
        ({**d, "block7_e": 1}, "unknown \\['block7_e'\\]"),
    ]
    for bad, match in cases:
        with pytest.raises(ArchError, match=match):
            from_accel(bad)


@pytest.mark.parametrize("arch", [
    from_macro("12021201"),
    from_accel(_design(ACCEL_ROWS[2][0]), 10, (3, 32, 32)),
], ids=["macro", "accel-se"])
def test_network_round_trip(arch: Any) -> None:
    out = assert_module_matches(arch)
    assert out.shape == (2, arch.num_classes)


@pytest.mark.slow
def test_macro_every_row(shared_data: Path) -> None:
    rows = _rows(shared_data / "nas_bench_macro_cifar10.csv")
    assert len(rows) == 6561
    ids = set()
    for r in rows:
        a = from_macro(r["arch"])
        assert (a.params, a.flops - 10) == (int(r["params"]), int(r["flops"])), r["arch"]
        assert canonical_string(r["arch"]) == r["trained_arch"]
        ids.add(a.id)
    assert len(ids) == len({r["trained_arch"] for r in rows}) == 3969


@pytest.mark.slow
def test_accel_every_row(shared_data: Path) -> None:
    rows = _rows(shared_data / "accel_nasbench_imagenet.csv")
    assert len(rows) == 5138
    worst = 0.0
    for r in rows:
        a = from_accel(_design([r[v] for v in VARIABLES]))
        assert a.params == round(float(r["params_M"]) * 1e6), r["source_file"]
        macs = float(r["macs_M"]) * 1e6
        worst = max(worst, abs(thop_macs(a) - macs) / macs)
    assert worst < 1e-8, f"largest MAC deviation {worst:.2e}"
