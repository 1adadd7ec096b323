"""The training sample: seeded, and no dataset outweighs the others."""

from __future__ import annotations

import numpy as np
import pytest

from predictor.sampling import balanced_rows

GROUPS = np.array(["big"] * 900 + ["small"] * 40 + ["mid"] * 160)


def test_everything_when_there_is_no_budget() -> None:
    np.testing.assert_array_equal(balanced_rows(GROUPS, None), np.arange(len(GROUPS)))
    assert len(balanced_rows(np.array([], dtype=str), 10)) == 0


@pytest.mark.parametrize("budget", [30, 300, 3000])
def test_each_dataset_gets_at_most_an_equal_share(budget: int) -> None:
    rows = balanced_rows(GROUPS, budget, seed=0)
    assert np.all(np.diff(rows) > 0)  # sorted, no repeats
    share = budget // 3
    for g in ("big", "small", "mid"):
        assert np.sum(GROUPS[rows] == g) == min(share, np.sum(g == GROUPS))
    # a small dataset is kept whole, and its unused share goes to nobody
    if budget == 300:
        assert len(rows) == 100 + 40 + 100


def test_the_sample_is_seeded() -> None:
    a, b = balanced_rows(GROUPS, 300, seed=1), balanced_rows(GROUPS, 300, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, balanced_rows(GROUPS, 300, seed=2))


def test_a_tiny_budget_still_keeps_one_row_per_dataset() -> None:
    rows = balanced_rows(GROUPS, 2)
    assert sorted(GROUPS[rows].tolist()) == ["big", "mid", "small"]
