"""Encoding invariants: deterministic, fixed width, bounded length, dead ops ignored."""

from __future__ import annotations

import numpy as np
import pytest

from predictor.encoding import MAX_STEPS, STEP_DIM, encode_batch, layer_vectors, step_vectors
from tapas.core.arch import Architecture, from_nb201


def test_same_network_same_vector(mixed_archs: list[Architecture]) -> None:
    for a in mixed_archs:
        b = Architecture.from_json(a.canonical_json)  # a separate, uncached object
        assert b is not a
        np.testing.assert_array_equal(step_vectors(a), step_vectors(b))


def test_shapes_and_finiteness(mixed_archs: list[Architecture]) -> None:
    lengths = set()
    for a in mixed_archs:
        s = step_vectors(a)
        assert s.shape[1] == STEP_DIM and 1 <= s.shape[0] <= MAX_STEPS
        assert np.isfinite(s).all()
        lengths.add(s.shape[0])
        lb, sub, live = layer_vectors(a)
        assert len(lb) == len(sub) == len(live) == len(a.layers)
        assert live[-1]
    assert len(lengths) >= 4, "the fixture should cover several sequence lengths"


def test_full_nb201_network_is_compressed_to_max_steps() -> None:
    a = from_nb201("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                   "nor_conv_3x3~1|nor_conv_3x3~2|")
    assert len(a.layers) > 200
    assert step_vectors(a).shape == (MAX_STEPS, STEP_DIM)


def test_dead_operations_do_not_change_the_encoding() -> None:
    # node 1 feeds nothing but 'none' edges, so its op (conv vs pool) is dead
    live = "|skip_connect~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    a = from_nb201("|nor_conv_3x3~0|+" + live)
    b = from_nb201("|avg_pool_3x3~0|+" + live)
    c = from_nb201("|avg_pool_3x3~0|+" + live.replace("nor_conv_1x1", "nor_conv_3x3"))
    np.testing.assert_array_equal(step_vectors(a), step_vectors(b))
    assert not np.array_equal(step_vectors(a), step_vectors(c))


def test_resolution_invariant_parts() -> None:
    cell = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|none~1|none~2|"
    a, b = from_nb201(cell), from_nb201(cell, input_size=16)
    # only features tied to absolute sizes may differ between 32x32 and 16x16 inputs
    assert np.allclose(step_vectors(a)[:, :13], step_vectors(b)[:, :13])


def test_encode_batch_pads(mixed_archs: list[Architecture]) -> None:
    x, lengths, ncls = encode_batch(mixed_archs)
    assert x.shape == (len(mixed_archs), int(lengths.max()), STEP_DIM)
    for i, a in enumerate(mixed_archs):
        np.testing.assert_array_equal(x[i, :lengths[i]], step_vectors(a))
        assert not x[i, lengths[i]:].any()
        assert ncls[i] == a.num_classes


@pytest.mark.parametrize("bad", [None, "x", 3])
def test_bad_input_is_rejected(bad: object) -> None:
    from predictor import TAPRegressor

    with pytest.raises(TypeError):
        TAPRegressor().fit(bad, 0.5, [0.5])  # type: ignore[arg-type]
