"""The IR: canonical form, identity, shape inference and every rejection."""

from __future__ import annotations

import copy
import json

import pytest

from tapas.core.arch import ArchError, Architecture
from tapas.core.spaces import parse_arch

RESNETISH = {
    "input": {"shape": [3, 32, 32], "num_classes": 10},
    "layers": [
        {"op": "conv", "out": 16, "kernel": 3, "stride": 1},
        {"op": "bn"}, {"op": "relu"},
        {"op": "conv", "out": 16, "kernel": 3, "inputs": [2]},
        {"op": "add", "inputs": [2, 3]},
        {"op": "gap"}, {"op": "linear", "out": 10},
    ],
}


def test_design_example_shapes_params_flops() -> None:
    a = Architecture.from_dict(RESNETISH)
    shapes = [li.out_shape for li in a.infos]
    assert shapes == [(16, 32, 32)] * 5 + [(16,), (10,)]
    conv1 = 16 * 3 * 9
    conv2 = 16 * 16 * 9
    assert [li.params for li in a.infos] == [conv1, 32, 0, conv2, 0, 0, 16 * 10 + 10]
    assert a.params == conv1 + 32 + conv2 + 170
    assert a.flops == (conv1 + conv2) * 32 * 32 + 170
    # cumulative counts follow ancestors: the add sees both convs and the BN once
    assert a.infos[4].cum_params == conv1 + 32 + conv2
    assert a.infos[-1].depth == 3


def test_identity_ignores_defaults_and_key_order() -> None:
    explicit = copy.deepcopy(RESNETISH)
    explicit["layers"][0].update(stride=1, padding=1, groups=1, bias=False, inputs=[-1])
    explicit["layers"][1]["inputs"] = [0]
    shuffled = json.loads(json.dumps(explicit, sort_keys=True))
    assert Architecture.from_dict(RESNETISH).id == Architecture.from_dict(shuffled).id
    changed = copy.deepcopy(RESNETISH)
    changed["layers"][3]["kernel"] = 5
    assert Architecture.from_dict(changed).id != Architecture.from_dict(RESNETISH).id


def test_canonical_round_trip() -> None:
    a = Architecture.from_dict(RESNETISH)
    b = Architecture.from_json(a.canonical_json)
    assert a == b and b.canonical_json == a.canonical_json and len(a.id) == 32
    assert parse_arch(a.to_dict()) == a and parse_arch(a.canonical_json) == a
    assert parse_arch(a) is a
    assert Architecture.from_canonical(a.to_dict()).id == a.id
    # a non-canonical dict still goes through full validation
    assert Architecture.from_canonical(RESNETISH).id == a.id
    with pytest.raises(ArchError, match="unknown op"):
        Architecture.from_canonical({**RESNETISH, "layers": [{"op": "conv7"}]})


def test_concat_and_pair_kernels() -> None:
    arch = {
        "input": {"shape": [1, 8, 12], "num_classes": 3},
        "layers": [
            {"op": "conv", "out": 4, "kernel": [1, 3]},
            {"op": "conv", "out": 6, "kernel": 3, "inputs": [-1]},
            {"op": "concat", "inputs": [0, 1]},
            {"op": "maxpool", "kernel": 2},
            {"op": "flatten"}, {"op": "dropout", "p": 0.1}, {"op": "linear", "out": 3},
        ],
    }
    a = Architecture.from_dict(arch)
    assert a.infos[2].out_shape == (10, 8, 12)
    assert a.infos[3].out_shape == (10, 4, 6)
    assert a.infos[4].out_shape == (240,)


def _bad(layers: list, shape=(3, 8, 8), classes: int = 10) -> ArchError:
    with pytest.raises(ArchError) as exc:
        Architecture.from_dict({"input": {"shape": list(shape), "num_classes": classes},
                                "layers": layers})
    return exc.value


HEAD = [{"op": "gap"}, {"op": "linear", "out": 10}]


@pytest.mark.parametrize(
    ("layers", "layer", "field", "words"),
    [
        ([{"op": "conv2"}, *HEAD], 0, "op", "unknown op 'conv2'"),
        ([{"kernel": 3}, *HEAD], 0, "op", "unknown op None"),
        ([{"op": "conv", "kernel": 3}, *HEAD], 0, "out", "is required"),
        ([{"op": "conv", "out": 4}, *HEAD], 0, "kernel", "is required"),
        ([{"op": "conv", "out": -4, "kernel": 3}, *HEAD], 0, "out", "between"),
        ([{"op": "conv", "out": 4.5, "kernel": 3}, *HEAD], 0, "out", "integer"),
        ([{"op": "conv", "out": "8", "kernel": 3}, *HEAD], 0, "out", "integer"),
        ([{"op": "conv", "out": 4, "kernel": 3, "colour": 1}, *HEAD], 0, "colour", "unknown field"),
        ([{"op": "relu", "inputs": [1]}, *HEAD], 0, "inputs", "forward or self"),
        ([{"op": "relu"}, {"op": "relu", "inputs": [1]}, *HEAD], 1, "inputs", "forward or self"),
        ([{"op": "relu"}, {"op": "add"}, *HEAD], 1, "inputs", "takes 2 to 64 inputs"),
        ([{"op": "conv", "out": 4, "kernel": 3}, {"op": "add", "inputs": [-1, 0]}, *HEAD],
         1, "inputs", "different shapes"),
        ([{"op": "linear", "out": 10}], 0, None, "flat (features,) input"),
        ([{"op": "maxpool", "kernel": 2}] * 4 + HEAD, 3, "kernel", "empty"),
        ([{"op": "conv", "out": 4, "kernel": 9, "padding": 0}, *HEAD], 0, "kernel", "empty"),
        ([{"op": "conv", "out": 4, "kernel": 3, "groups": 2}, *HEAD], 0, "groups", "divide"),
        ([{"op": "conv", "out": 70000, "kernel": 1}, *HEAD], 0, "out", "between"),
        ([{"op": "dropout", "p": 1.5}, *HEAD], 0, "p", "[0, 1)"),
        ([{"op": "dropout", "p": float("nan")}, *HEAD], 0, "p", "number"),
        ([{"op": "gap"}, {"op": "linear", "out": 7}], 1, None, "(10,) class scores"),
        ([{"op": "bn", "affine": "yes"}, *HEAD], 0, "affine", "true or false"),
        (["conv", *HEAD], 0, None, "must be an object"),
        ([{"op": "gap"}, {"op": "concat", "inputs": [0, -1]}, {"op": "linear", "out": 10}],
         1, "inputs", "other dimensions"),
    ],
)
def test_rejections_name_layer_and_field(layers, layer, field, words) -> None:
    err = _bad(layers)
    assert err.layer == layer
    assert err.field == field
    assert words in str(err)
    if layer is not None:
        assert f"layer {layer}" in str(err)


def test_absurd_and_malformed_top_level() -> None:
    with pytest.raises(ArchError, match="at most 2000"):
        Architecture.from_dict({"input": {"shape": [3, 8, 8], "num_classes": 10},
                                "layers": [{"op": "relu"}] * 2001})
    with pytest.raises(ArchError, match="input.shape"):
        Architecture.from_dict({"input": {"shape": [3, 8], "num_classes": 10}, "layers": HEAD})
    with pytest.raises(ArchError, match="input.shape"):
        Architecture.from_dict({"input": {"shape": [3, 100_000, 8], "num_classes": 10},
                                "layers": HEAD})
    with pytest.raises(ArchError, match="input.num_classes"):
        Architecture.from_dict({"input": {"shape": [3, 8, 8]}, "layers": HEAD})
    with pytest.raises(ArchError, match="layers"):
        Architecture.from_dict({"input": {"shape": [3, 8, 8], "num_classes": 10}, "layers": []})
    with pytest.raises(ArchError, match="malformed JSON at line 1"):
        Architecture.from_json('{"input": ')
    with pytest.raises(ArchError, match="over the limit"):
        Architecture.from_dict({"input": {"shape": [3, 8, 8], "num_classes": 10}, "layers": [
            {"op": "flatten"}, {"op": "linear", "out": 60000}, {"op": "linear", "out": 60000},
            {"op": "linear", "out": 60000}, {"op": "linear", "out": 60000},
            {"op": "linear", "out": 10}]})


def test_error_path_is_json_like() -> None:
    err = _bad([{"op": "conv", "out": 4}, *HEAD])
    assert err.path == "layers[0].kernel"


def test_template_id_ignores_input_and_classes() -> None:
    from tapas.core.arch import from_nb201

    cell = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
    a, b, c = from_nb201(cell, 10, 32), from_nb201(cell, 120, 16), from_nb201(cell, 10, 32, 8)
    assert a.id != b.id and a.template_id == b.template_id
    assert c.template_id != a.template_id
