"""An input shape that is not three whole numbers is a clear error naming the field, never
an ``OverflowError`` (issue 38: ``"input_shape": [3, 1e999, 32]`` with a DCN target)."""

from __future__ import annotations

import json
import math

import pytest

from tapas.app.client import Client
from tapas.core.spaces import parse_archs
from tapas.core.types import TargetError, parse_input_shape, resolve_target

CELL = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _no_dataset(name: str) -> None:
    raise LookupError(name)


@pytest.mark.parametrize("bad", [json.loads("1e999"), math.nan, 2.5, "32", True])
def test_shape_entries_must_be_whole_numbers(bad: object) -> None:
    with pytest.raises(TargetError) as ei:
        resolve_target(_no_dataset, dcn=0.5, input_shape=[3, bad, 32])
    assert ei.value.field == "input_shape" and "input_shape[1]" in str(ei.value)
    with pytest.raises(TargetError):
        parse_archs([CELL], 10, [3, bad, 32])  # type: ignore[list-item]


def test_whole_floats_are_accepted() -> None:
    t = resolve_target(_no_dataset, dcn=0.5, input_shape=[3.0, 32.0, 32])
    assert t.input_shape == (3, 32, 32)


def test_client_refuses_before_sending() -> None:
    with Client("http://127.0.0.1:9", retries=0) as c, pytest.raises(TargetError) as ei:
        c.predict([CELL], dcn=0.5, input_shape=[3, float("inf"), 32])
    assert "input_shape[1]" in str(ei.value)


@pytest.mark.parametrize("text", ["3x32x32", "3X32X32", " 3 x 32 x 32 ", "3,32,32",
                                  "[3, 32, 32]", (3, 32, 32), [3.0, 32, 32]])
def test_one_input_shape_syntax_reads_every_spelling(text: object) -> None:
    assert parse_input_shape(text) == (3, 32, 32)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["3x32", "3x32x32x1", "axbxc", "", "0x32x32", [3, 32],
                                  "3x-1x32"])
def test_bad_input_shapes_name_the_flag_and_the_value(text: object) -> None:
    with pytest.raises(TargetError) as ei:
        parse_input_shape(text, "--input-shape")  # type: ignore[arg-type]
    assert ei.value.field == "--input-shape" and str(ei.value).startswith("--input-shape must")
    assert repr(text) in str(ei.value) or str(text) in str(ei.value)
