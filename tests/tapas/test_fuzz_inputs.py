"""Property-based fuzzing of what users type: the IR, architecture strings and experiment
records. Whatever arrives, the answer is the object or one ``ValueError`` subclass whose
message names what is wrong, never another exception (which would surface as a
traceback in the CLI or a 500 over HTTP). The HTTP routes are fuzzed by schemathesis in
``tests/service/test_http.py``."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapas.core.arch import ArchError, Architecture
from tapas.core.records import record_from_row
from tapas.core.spaces import parse_arch

FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

_numbers = st.one_of(st.integers(min_value=-2**70, max_value=2**70),
                     st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                     st.sampled_from([0, 1, 3, 16, 2**31, -1, 1e999, "3", "x"]))
_scalars = st.one_of(st.none(), _numbers, st.text(max_size=12))
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12)
_ops = st.sampled_from(["conv", "bn", "relu", "gap", "linear", "add", "concat", "maxpool",
                        "avgpool", "dwconv", "flatten", "identity", "zero", "nonsense", "",
                        "CONV", 3])
_layer = st.fixed_dictionaries(
    {"op": _ops},
    optional={"out": _numbers, "kernel": _numbers, "stride": _numbers, "padding": _numbers,
              "groups": _numbers, "inputs": st.one_of(st.lists(_numbers, max_size=3), _json),
              "extra": _json})
_arch = st.fixed_dictionaries(
    {"input": st.one_of(st.fixed_dictionaries(
        {"shape": st.one_of(st.lists(_numbers, min_size=0, max_size=4), _json),
         "num_classes": _numbers}), _json),
     "layers": st.one_of(st.lists(_layer, max_size=8), _json)})


@FUZZ
@given(obj=st.one_of(_arch, _json))
def test_ir_builds_or_says_what_is_wrong(obj: Any) -> None:
    try:
        a = Architecture.from_dict(obj)
    except ArchError as e:
        assert str(e)
        return
    assert a.id and a.params >= 0 and math.isfinite(a.flops)


@FUZZ
@given(text=st.one_of(st.text(max_size=80), st.sampled_from([
    "|nor_conv_3x3~0|+|", "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|x~2|",
    "Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[], reduce_concat=[])",
    '{"layers": []}', "{", "[]", "null", "1e999"])),
    classes=st.one_of(st.integers(min_value=-5, max_value=2000), st.none()))
def test_arch_strings_parse_or_say_what_is_wrong(text: str, classes: int | None) -> None:
    try:
        a = parse_arch(text, classes)
    except ValueError as e:  # ArchError, TargetError: both ValueErrors naming the problem
        assert str(e)
        return
    assert a.id


_row = st.fixed_dictionaries({}, optional={
    "arch": st.one_of(st.just("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|"
                              "avg_pool_3x3~2|"), _json, st.text(max_size=10)),
    "dataset": _scalars, "accuracy": _scalars, "accuracy_pct": _scalars,
    "split": _scalars, "epochs": _scalars, "seed": _scalars, "source": _scalars,
    "curve": st.one_of(st.lists(_numbers, max_size=5), _json, st.text(max_size=10)),
    "hparams": _json})


@FUZZ
@given(row=_row)
def test_records_validate_or_name_the_field(row: dict[str, Any]) -> None:
    try:
        rec = record_from_row(row, "fuzz")
    except ValueError as e:
        assert str(e)
        return
    assert math.isfinite(rec.accuracy) and rec.dataset.strip() == rec.dataset
    assert rec.curve is None or all(math.isfinite(x) for x in rec.curve)


@FUZZ
@given(shape=st.one_of(st.lists(_numbers, max_size=5), _json),
       classes=st.one_of(_numbers, st.none()))
def test_targets_of_any_shape_parse_or_say_what_is_wrong(shape: Any, classes: Any) -> None:
    """The request's ``input_shape`` and ``num_classes`` (``1e999``, NaN, text, ...)."""
    from tapas.core.spaces import parse_archs

    cell = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
    try:
        archs = parse_archs([cell], classes, shape)
    except ValueError as e:
        assert str(e)
        return
    assert len(archs) == 1 and archs[0].id
