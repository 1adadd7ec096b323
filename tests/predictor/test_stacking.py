"""Stacking: the shares of TAP's parts come from leave-one-dataset-out scores, and the
nearest datasets' scores pick them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from predictor import TAPRegressor, persist
from predictor.stacking import TREE_SHARES, choose, dataset_folds, shares

SMALL = dict(hidden_size=8, embed_size=8, epochs=4, n_members=4, device="cpu")


def test_the_candidates_hold_every_share_once_the_default_first() -> None:
    tree = shares(0.5)
    assert tree[0] == 0.5 and sorted(tree) == sorted(TREE_SHARES)
    assert shares(0.3) == [0.3, *TREE_SHARES]


def test_folds_put_each_dataset_in_one_fold() -> None:
    assert dataset_folds(["a"], 4, 0) == {}
    folds = dataset_folds(list("abcdefg"), 4, 0)
    assert set(folds) == set("abcdefg") and set(folds.values()) == {0, 1, 2, 3}
    assert dataset_folds(list("abcdefg"), 4, 0) == folds
    assert set(dataset_folds(["a", "b"], 4, 0).values()) == {0, 1}


def test_choose_follows_the_nearest_datasets_and_can_leave_one_out() -> None:
    tree = [0.5, 0.0, 1.0]
    scores = np.array([[0.5, 0.9, 0.1],     # DCN 0.2: the LSTM alone ranks best
                       [0.5, 0.1, 0.9]])    # DCN 0.8: the trees alone
    dcns = np.array([0.2, 0.8])
    np.testing.assert_array_equal(choose(scores, dcns, np.array([0.25, 0.75, 0.25]), tree),
                                  [0.0, 1.0, 0.0])
    assert choose(scores, dcns, np.array([0.25]), tree, exclude=0)[0] == 1.0
    near_tie = np.array([[0.4, 0.405, 0.4]] * 2)
    assert choose(near_tie, dcns, np.array([0.5]), tree)[0] == 0.5  # the default stays


@pytest.fixture(scope="module")
def four_datasets(mixed_archs):  # noqa: ANN001, ANN201
    """Four datasets ranking the networks by size; ``rev`` ranks them the other way."""
    archs = mixed_archs[:30]
    lp = np.array([np.log10(a.params + 1) for a in archs])
    base = (lp - lp.min()) / np.ptp(lp)
    rows_a, rows_d, rows_y, rows_g = [], [], [], []
    for name, dcn, sign in (("p", 0.3, 1), ("q", 0.45, 1), ("r", 0.6, 1), ("rev", 0.5, -1)):
        rows_a += archs
        rows_d += [dcn] * len(archs)
        rows_y += list(0.2 + 0.4 * dcn + 0.2 * (base if sign > 0 else 1 - base))
        rows_g += [name] * len(archs)
    return rows_a, np.array(rows_d), np.array(rows_y), np.array(rows_g)


def test_scores_are_out_of_dataset(four_datasets, tmp_path: Path) -> None:  # noqa: ANN001
    """The dataset that ranks against the others scores badly: its parts were fitted
    without it (in-sample it would be learned, the DCN tells the datasets apart)."""
    archs, d, y, g = four_datasets
    model = TAPRegressor(**SMALL).fit(archs, d, y, groups=g)
    tree = model._grid()
    assert model.stack_scores_.shape == (4, len(tree))
    assert sorted(model.stack_groups_) == ["p", "q", "r", "rev"]
    rev = model.stack_groups_.index("rev")
    assert model.stack_scores_[rev, tree.index(1.0)] < 0      # trees alone
    assert model.stack_scores_[rev, tree.index(0.0)] < 0      # LSTM alone
    others = [i for i, n in enumerate(model.stack_groups_) if n != "rev"]
    assert (model.stack_scores_[others, tree.index(1.0)] > 0.5).all()
    wt, wh = model.shares([0.3, 0.5])
    assert set(wt) <= set(tree) and set(wh) == {model.history_weight}

    parts = model.predict_parts(archs[:30], 0.35)
    assert set(parts) == {"lstm", "trees", "fixed", "stack"}
    np.testing.assert_array_equal(parts["stack"], model.predict(archs[:30], 0.35))
    assert all(len(v) == 0 for v in model.predict_parts([], 0.35).values())
    model.save(tmp_path / "m.tap")
    back = TAPRegressor.load(tmp_path / "m.tap")
    np.testing.assert_array_equal(back.stack_scores_, model.stack_scores_)
    assert back.stack_groups_ == model.stack_groups_
    np.testing.assert_array_equal(back.predict(archs[:30], 0.35), parts["stack"])


def test_fixed_shares_without_stacking_or_a_second_dataset(four_datasets) -> None:  # noqa: ANN001
    archs, d, y, g = four_datasets
    fixed = TAPRegressor(**SMALL, stack=False).fit(archs, d, y, groups=g)
    assert fixed.stack_scores_ is None
    wt, wh = fixed.shares([0.3, 0.9])
    np.testing.assert_array_equal(wt, [0.5, 0.5])
    np.testing.assert_array_equal(wh, [0.8, 0.8])
    one = TAPRegressor(**SMALL).fit(archs[:30], d[:30], y[:30], groups=g[:30])
    assert one.stack_scores_ is None
    with pytest.raises(ValueError, match="stack"):
        TAPRegressor(**SMALL, stack="yes").fit(archs, d, y, groups=g)


def test_a_file_with_inconsistent_stacking_arrays_is_refused(four_datasets,  # noqa: ANN001
                                                             tmp_path: Path) -> None:
    archs, d, y, g = four_datasets
    TAPRegressor(**SMALL).fit(archs, d, y, groups=g).save(tmp_path / "m.tap")
    header, arrays = persist.read(tmp_path / "m.tap")
    arrays["stack.scores"] = arrays["stack.scores"][:, :3]
    persist.write(tmp_path / "bad.tap", params=header["params"], state=header["state"],
                  arrays=arrays, provenance=header["provenance"])
    with pytest.raises(persist.ModelFileError, match="stacking arrays"):
        TAPRegressor.load(tmp_path / "bad.tap")
