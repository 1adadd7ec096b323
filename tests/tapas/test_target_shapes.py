"""An input shape that is not three whole numbers is a clear error naming the field, never
an ``OverflowError`` (issue 38: ``"input_shape": [3, 1e999, 32]`` with a DCN target)."""

from __future__ import annotations

import json
import math

import pytest

from tapas.client import Client
from tapas.types import TargetError, parse_archs, resolve_target

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
