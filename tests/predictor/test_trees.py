"""Trees beside the LSTM: the array form evaluates exactly as scikit-learn does, and a
TAP model with trees blends, saves and loads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from predictor import TAPRegressor
from predictor.trees import LEARNING_RATE, MAX_DEPTH, N_TREES, BoostedTrees, tree_features

SMALL = dict(hidden_size=8, embed_size=8, epochs=4, n_members=3, device="cpu")


def test_array_trees_match_scikit_learn() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 7))
    y = np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] + 0.1 * rng.normal(size=600)
    trees = BoostedTrees.fit(x, y, seed=0)
    ref = HistGradientBoostingRegressor(
        max_iter=N_TREES, learning_rate=LEARNING_RATE, max_depth=MAX_DEPTH,
        max_leaf_nodes=2 ** MAX_DEPTH, early_stopping=False, random_state=0).fit(x, y)
    xt = rng.normal(size=(5000, 7)) * 1.5  # beyond the training range too
    np.testing.assert_allclose(trees.predict(xt), ref.predict(xt), rtol=0, atol=1e-10)
    back = BoostedTrees.from_arrays(trees.to_arrays())
    np.testing.assert_array_equal(back.predict(xt), trees.predict(xt))


def test_tree_features_read_only_the_valid_steps() -> None:
    x = np.zeros((2, 3, 2), np.float32)
    x[0, :2] = [[1, 2], [3, 4]]
    x[0, 2] = [100, 100]  # padding past the length
    x[1, 0] = [5, 6]
    f = tree_features(x, np.array([2, 1]), np.array([[0.5], [0.9]]))
    np.testing.assert_array_equal(f, [[4, 6, 3, 4, 2, 0.5], [5, 6, 5, 6, 1, 0.9]])


def test_tree_weight_blends_saves_and_loads(toy_data, tmp_path: Path) -> None:  # noqa: ANN001
    archs, dcn, y = toy_data
    lstm = TAPRegressor(**SMALL, tree_weight=0.0, stack=False).fit(archs, dcn, y)
    both = TAPRegressor(**SMALL, tree_weight=0.5, stack=False).fit(archs, dcn, y)
    only = TAPRegressor(**SMALL, tree_weight=1.0, stack=False).fit(archs, dcn, y)
    assert lstm.trees_ is None and both.trees_ is not None
    # trees alone: every member gives the same answer; the blend differs from both
    assert np.allclose(only.predict_members(archs, dcn).std(0), 0.0)
    p_lstm, p_both, p_only = (m.predict(archs, dcn) for m in (lstm, both, only))
    assert not np.allclose(p_both, p_lstm) and not np.allclose(p_both, p_only)
    both.save(tmp_path / "m.tap")
    back = TAPRegressor.load(tmp_path / "m.tap")
    np.testing.assert_array_equal(back.predict(archs, dcn), p_both)


def test_tree_weight_is_checked(toy_data) -> None:  # noqa: ANN001
    archs, dcn, y = toy_data
    with pytest.raises(ValueError, match="tree_weight"):
        TAPRegressor(**SMALL, tree_weight=1.5).fit(archs, dcn, y)


def test_inconsistent_tree_arrays_are_refused() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    arrays = BoostedTrees.fit(x, x[:, 0] + x[:, 1]).to_arrays()
    with pytest.raises(ValueError, match="depth"):
        BoostedTrees.from_arrays({**arrays, "value": arrays["value"][:, :5]})
    with pytest.raises(ValueError, match="feature"):
        BoostedTrees.from_arrays(arrays).predict(x[:, :1])
