"""Few-shot adaptation: k trained candidates correct the zero-shot ranking."""

from __future__ import annotations

import numpy as np
import pytest

from predictor.fewshot import FewShotAdapter, family_zscores
from predictor.history import HistoryTable
from predictor.metrics import kendall
from tapas.core.arch import from_nb201

CELLS = [f"|{a}~0|+|{b}~0|{c}~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
         for a in ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
         for b in ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
         for c in ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")]


def _world(seed: int = 0):
    """Two stored datasets ranking networks differently; the target follows ``b``."""
    rng = np.random.default_rng(seed)
    n = len(CELLS)
    archs = [from_nb201(c, num_classes=10, input_size=32) for c in CELLS]
    qa, qb = rng.normal(size=n), rng.normal(size=n)
    hist = HistoryTable([a.template_id for a in archs] * 2, ["a"] * n + ["b"] * n,
                        [0.5] * n + [0.9] * n, np.r_[0.6 + 0.05 * qa, 0.8 + 0.05 * qb])
    base = 0.7 + 0.05 * qa                        # a zero-shot guess that trusts "a"
    truth = 0.75 + 0.05 * qb + rng.normal(0, 0.005, n)
    return archs, hist, base, truth


def test_shots_teach_which_dataset_the_target_follows():
    archs, hist, base, truth = _world()
    feats = family_zscores(hist, archs)
    assert feats.shape == (len(archs), 2)
    shots = np.arange(0, len(archs), 6)[:20]
    rest = np.setdiff1d(np.arange(len(archs)), shots)
    ad = FewShotAdapter().fit(base[shots], feats[shots], truth[shots], reference=(base, feats))
    before = kendall(base[rest], truth[rest])
    after = kendall(ad.predict(base[rest], feats[rest]), truth[rest])
    assert before < 0.3 and after > 0.8
    assert ad is not None and np.isfinite(ad.alpha_)


def test_shots_without_signal_leave_the_ranking_alone():
    archs, hist, base, _ = _world()
    feats = family_zscores(hist, archs)
    rng = np.random.default_rng(3)
    shots = np.arange(5)
    y = base[shots] + 0.1 + rng.normal(0, 0.03, 5)  # a level shift and noise only
    ad = FewShotAdapter().fit(base[shots], feats[shots], y, reference=(base, feats))
    pred = ad.predict(base, feats)
    assert kendall(pred, base) > 0.9
    assert abs(float(np.mean(pred - base)) - 0.1) < 0.05


def test_noise_alone_seldom_moves_the_ranking():
    """Shots that carry only a level shift and noise, against 20 features: the ridge must
    beat the shift alone by more than its leave-one-out error's standard error. A 10 %
    margin on that error let chance through in about 30 % of such draws."""
    rng = np.random.default_rng(0)
    moved = 0
    for _ in range(100):
        base, feats = rng.uniform(0.4, 0.8, 300), rng.normal(size=(300, 20))
        shots = rng.choice(300, 8, replace=False)
        y = base[shots] + 0.1 + rng.normal(0, 0.03, 8)
        ad = FewShotAdapter().fit(base[shots], feats[shots], y, reference=(base, feats))
        moved += bool(np.isfinite(ad.alpha_))
    assert moved <= 20


def test_zscores_exclude_the_target_and_zero_unknown_families():
    archs, hist, _, _ = _world()
    only_b = family_zscores(hist, archs, exclude="a")
    assert only_b.shape == (len(archs), 1)
    np.testing.assert_allclose(only_b[:, 0], family_zscores(hist, archs)[:, 1])
    stranger = from_nb201("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                          "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
                          num_classes=10, input_size=32)
    assert family_zscores(hist, [stranger]).tolist() == [[0.0, 0.0]]
    assert family_zscores(None, archs).shape == (len(archs), 0)


@pytest.mark.parametrize(("base", "y", "words"), [
    ([], [], "at least one shot"),
    ([0.5, 0.6], [0.5], "one accuracy per"),
    ([0.5, float("nan")], [0.5, 0.6], "finite"),
])
def test_bad_shots_are_refused(base, y, words):
    with pytest.raises(ValueError, match=words):
        FewShotAdapter().fit(np.array(base), np.zeros((len(base), 0)), np.array(y))
