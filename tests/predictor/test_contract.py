"""One contract that TAP and every baseline honour (scikit-learn style fit/predict)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone

from benchmarks.baselines import FlopsBaseline, GBRBaseline, NearestDatasetBaseline, ParamsBaseline
from predictor import NotFittedError, TAPRegressor
from predictor.history import family_key
from tapas.core.arch import from_nb201

FACTORIES: dict[str, Callable[[], Any]] = {
    "tap": lambda: TAPRegressor(hidden_size=8, embed_size=8, epochs=3, n_members=2,
                                device="cpu"),
    "params": ParamsBaseline,
    "flops": FlopsBaseline,
    "gbr": lambda: GBRBaseline(max_iter=20),
    "nearest": NearestDatasetBaseline,
}


@pytest.mark.parametrize("make", FACTORIES.values(), ids=list(FACTORIES))
class TestPredictorContract:
    """Reusable: any new predictor joins by adding a factory above."""

    def test_fit_returns_self_and_learned_state_ends_in_underscore(self, make, toy_data) -> None:  # noqa: ANN001
        archs, dcn, y = toy_data
        est = make()
        before = set(vars(est))
        assert est.fit(archs, dcn, y) is est
        learned = set(vars(est)) - before
        assert learned and all(k.endswith("_") for k in learned)

    def test_predict_shape_range_and_scalar_dcn(self, make, toy_data) -> None:  # noqa: ANN001
        archs, dcn, y = toy_data
        est = make().fit(archs, dcn, y)
        p = est.predict(archs, dcn)
        assert p.shape == (len(archs),) and np.isfinite(p).all()
        assert est.predict(archs[:5], 0.3).shape == (5,)
        assert est.predict([], 0.3).shape == (0,)

    def test_deterministic(self, make, toy_data) -> None:  # noqa: ANN001
        archs, dcn, y = toy_data
        np.testing.assert_array_equal(make().fit(archs, dcn, y).predict(archs, dcn),
                                      make().fit(archs, dcn, y).predict(archs, dcn))

    def test_hyperparameters_only_in_init(self, make, toy_data) -> None:  # noqa: ANN001
        archs, dcn, y = toy_data
        est = make()
        params = est.get_params()
        c = clone(est)
        assert c.get_params() == params
        est.fit(archs, dcn, y)
        assert est.get_params() == params

    def test_errors_are_clear(self, make, toy_data) -> None:  # noqa: ANN001
        archs, dcn, y = toy_data
        with pytest.raises(NotFittedError):
            make().predict(archs, 0.5)
        with pytest.raises(ValueError, match="accuracies"):
            make().fit(archs, dcn, np.full(len(y), np.nan))
        with pytest.raises(ValueError):
            make().fit(archs, dcn, y[:-1])
        est = make().fit(archs, dcn, y)
        with pytest.raises(ValueError, match="dcn"):
            est.predict(archs, 2.0)
        with pytest.raises(TypeError, match=r"archs\[0\]"):
            est.predict(["|none~0|"], 0.5)


def test_nearest_dataset_copies_the_nearest_accuracy() -> None:
    cell_a = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"
    cell_b = "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"
    c10 = [from_nb201(cell_a), from_nb201(cell_b)]
    c100 = [from_nb201(cell_a, num_classes=100), from_nb201(cell_b, num_classes=100)]
    im = [from_nb201(cell_a, num_classes=120, input_size=16)]
    assert family_key(c10[0]) == family_key(c100[0]) == family_key(im[0]) != family_key(c10[1])
    m = NearestDatasetBaseline().fit(c10 + c100, [0.9, 0.9, 0.6, 0.6], [0.93, 0.80, 0.70, 0.5])
    assert m.predict(im, 0.4)[0] == pytest.approx(0.70)   # nearest DCN is 0.6
    assert m.predict(im, 0.85)[0] == pytest.approx(0.93)  # nearest DCN is 0.9
    unseen = from_nb201("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert m.predict([unseen], 0.85)[0] == pytest.approx((0.93 + 0.80) / 2)
