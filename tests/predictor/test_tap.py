"""TAP: batching equals one-by-one scoring, determinism, intervals, save/load, refusals."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from predictor import ModelFileError, NotFittedError, TAPRegressor, load, read_header
from predictor.persist import MAGIC
from tapas.core.config import get_settings

SMALL = dict(hidden_size=8, embed_size=8, epochs=4, n_members=3, device="cpu")


@pytest.fixture(scope="module")
def fitted(toy_data) -> TAPRegressor:  # noqa: ANN001
    archs, dcn, y = toy_data
    return TAPRegressor(**SMALL).fit(archs, dcn, y)


def test_batched_equals_one_by_one(fitted: TAPRegressor, mixed_archs) -> None:  # noqa: ANN001
    batch = fitted.predict(mixed_archs, 0.5)
    single = np.array([fitted.predict([a], 0.5)[0] for a in mixed_archs])
    np.testing.assert_allclose(batch, single, rtol=0, atol=1e-6)
    rev = fitted.predict(mixed_archs[::-1], 0.5)[::-1]
    np.testing.assert_allclose(batch, rev, rtol=0, atol=1e-6)


def test_deterministic_for_a_seed(toy_data) -> None:  # noqa: ANN001
    archs, dcn, y = toy_data
    p1 = TAPRegressor(**SMALL, seed=3).fit(archs, dcn, y).predict(archs, dcn)
    p2 = TAPRegressor(**SMALL, seed=3).fit(archs, dcn, y).predict(archs, dcn)
    p3 = TAPRegressor(**SMALL, seed=4).fit(archs, dcn, y).predict(archs, dcn)
    np.testing.assert_array_equal(p1, p2)
    assert not np.allclose(p1, p3)


def test_interval_is_ordered_and_calibrated_on_its_split(fitted: TAPRegressor,
                                                          toy_data) -> None:  # noqa: ANN001
    archs, dcn, _ = toy_data
    p = fitted.predict_interval(archs, dcn)
    assert p.coverage == 0.9
    assert (p.lower <= p.mean + 1e-12).all() and (p.mean <= p.upper + 1e-12).all()
    assert (p.spread >= 0).all() and np.isfinite(p.spread).all()
    assert fitted.n_calibration_ > 0 and fitted.n_train_ + fitted.n_calibration_ == len(archs)
    assert fitted.q_ > 0


def test_learns_the_toy_target(toy_data) -> None:  # noqa: ANN001
    from predictor.metrics import kendall

    archs, dcn, y = toy_data
    m = TAPRegressor(hidden_size=16, embed_size=16, epochs=100, n_members=2,
                     device="cpu").fit(archs, dcn, y)
    assert kendall(m.predict(archs, dcn), y) > 0.6
    assert m.loss_curve_[-1] < m.loss_curve_[0]


def test_not_fitted_and_bad_inputs(toy_data) -> None:  # noqa: ANN001
    archs, dcn, y = toy_data
    with pytest.raises(NotFittedError):
        TAPRegressor().predict(archs, 0.5)
    with pytest.raises(ValueError, match="accuracies"):
        TAPRegressor(**SMALL).fit(archs, dcn, y * 100)
    with pytest.raises(ValueError, match="dcns"):
        TAPRegressor(**SMALL).fit(archs, dcn[:3], y)
    with pytest.raises(ValueError, match="hidden_size"):
        TAPRegressor(hidden_size=0).fit(archs, dcn, y)
    with pytest.raises(ValueError, match="coverage"):
        TAPRegressor(coverage=1.5).fit(archs, dcn, y)


def test_save_load_round_trip(fitted: TAPRegressor, toy_data, tmp_path: Path) -> None:  # noqa: ANN001
    archs, dcn, _ = toy_data
    path = tmp_path / "m.tap"
    fitted.save(path, provenance={"dcn": 0.5, "tau": 0.05, "n": len(archs),
                                  "lde_snapshot": "abc", "metrics": {"kendall": 0.9}})
    m2 = load(path, device="cpu")  # bit-identical on the same device
    np.testing.assert_array_equal(fitted.predict(archs, dcn), m2.predict(archs, dcn))
    a, b = fitted.predict_interval(archs, dcn), m2.predict_interval(archs, dcn)
    np.testing.assert_array_equal(a.lower, b.lower)
    np.testing.assert_array_equal(a.upper, b.upper)
    assert m2.provenance_["lde_snapshot"] == "abc"
    assert m2.provenance_["metrics"] == {"kendall": 0.9}
    assert "torch" in m2.provenance_["versions"]
    assert m2.get_params() == fitted.get_params()
    assert m2.consensus_slope_ == fitted.consensus_slope_
    np.testing.assert_array_equal(m2.consensus_map_, fitted.consensus_map_)
    assert m2.kernel_ == fitted.kernel_
    np.testing.assert_array_equal(m2.history_.group_geom, fitted.history_.group_geom)


def test_a_model_runs_where_it_is_loaded_not_where_it_was_trained(
        fitted: TAPRegressor, toy_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """A file written on a GPU machine (device 'cuda' in its parameters) serves on a CPU."""
    archs, dcn, _ = toy_data
    path = tmp_path / "gpu.tap"
    fitted.set_params(device="cuda").save(path)
    fitted.set_params(device="cpu")
    assert read_header(path)[0]["params"]["device"] == "cuda"
    monkeypatch.setenv("TAPAS_DEVICE", "cpu")
    get_settings.cache_clear()
    try:
        moved = load(path)
        assert str(moved.device_) == "cpu"
        np.testing.assert_array_equal(moved.predict(archs, dcn), fitted.predict(archs, dcn))
    finally:
        get_settings.cache_clear()


def test_the_default_device_follows_the_settings(toy_data,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """TAPAS_DEVICE reaches the predictor (not only ProbeNet): 'cuda' on a machine
    without one is the device policy's error, not a silent CPU run."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    archs, dcn, y = toy_data
    kw = {k: v for k, v in SMALL.items() if k != "device"}
    monkeypatch.setenv("TAPAS_DEVICE", "cuda")
    get_settings.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="no CUDA device"):
            TAPRegressor(**kw).fit(archs, dcn, y)
        assert str(TAPRegressor(**kw, device="cpu").fit(archs, dcn, y).device_) == "cpu"
    finally:
        get_settings.cache_clear()


def test_tampered_files_are_refused(fitted: TAPRegressor, tmp_path: Path) -> None:
    path = tmp_path / "m.tap"
    fitted.save(path)
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x01  # one flipped bit in a weight
    bad = tmp_path / "bad.tap"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="checksum"):
        load(bad)
    bad.write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(ModelFileError):
        load(bad)
    bad.write_bytes(b"\x80\x04 a pickle, not a model")
    with pytest.raises(ModelFileError, match="not a tapas predictor"):
        load(bad)
    with pytest.raises(ModelFileError, match="cannot read"):
        load(tmp_path / "missing.tap")


def _rewrite_header(path: Path, out: Path, **changes: object) -> None:
    """Change header fields and re-sign, as a file from another version would be."""
    from predictor.persist import _digest

    header, payload = read_header(path)
    header.update(changes)
    header["sha256"] = _digest(header, payload)
    hb = json.dumps(header, sort_keys=True).encode()
    out.write_bytes(MAGIC + struct.pack("<Q", len(hb)) + hb + payload)


def test_incompatible_files_are_refused(fitted: TAPRegressor, tmp_path: Path) -> None:
    path = tmp_path / "m.tap"
    fitted.save(path)
    other = tmp_path / "other.tap"
    _rewrite_header(path, other, encoding_version=999)
    with pytest.raises(ModelFileError, match="encoding"):
        load(other)
    _rewrite_header(path, other, step_dim=7)
    with pytest.raises(ModelFileError, match="encoding"):
        load(other)
    _rewrite_header(path, other, format_version=1)
    with pytest.raises(ModelFileError, match="format version"):
        load(other)
    header, _ = read_header(path)
    arrays = dict(header["arrays"])
    name = next(iter(arrays))
    arrays[name] = {**arrays[name], "shape": [3, 3, 3, 3]}
    _rewrite_header(path, other, arrays=arrays)
    with pytest.raises(ModelFileError):
        load(other)


def test_save_requires_fit_and_plain_provenance(fitted: TAPRegressor, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fitted"):
        TAPRegressor().save(tmp_path / "x.tap")
    with pytest.raises(ValueError, match="provenance"):
        fitted.save(tmp_path / "x.tap", provenance={"obj": object()})
    assert not (tmp_path / "x.tap").exists()


def test_relative_levels_follow_the_training_datasets() -> None:
    """``level_at``: exact on datasets whose levels are linear in the DCN, the single
    dataset's level moved one-for-one with the DCN when it is alone."""
    from predictor.tap import level_at

    levels = np.array([[0.2, 0.30, 0.05], [0.5, 0.45, 0.06], [0.8, 0.60, 0.07]])
    mu, sd = level_at(levels, np.array([0.2, 0.65, 0.95]))
    np.testing.assert_allclose(mu, [0.30, 0.525, 0.675], atol=1e-9)
    np.testing.assert_allclose(sd, [0.05, 0.065, 0.075], atol=1e-9)
    mu, sd = level_at(levels[:1], np.array([0.3]))
    np.testing.assert_allclose(mu, [0.40]) and np.testing.assert_allclose(sd, [0.05])


def test_descriptor_levels_read_the_geometry_the_dcn_misses() -> None:
    """``level_by_descriptor``: datasets of one DCN whose level depends on the class
    count get their own levels (the DCN fit cannot tell them apart); too few datasets of
    known geometry leave the level to the DCN fit."""
    from predictor.tap import LEVEL_MIN_DATASETS, level_at, level_by_descriptor

    rng = np.random.default_rng(0)
    n = 12
    dcn = rng.uniform(0.3, 0.9, n)
    classes = rng.choice([1.0, 3.32, 6.64], n)  # log2 of 2, 10, 100 classes
    mean = 0.2 + 0.6 * dcn - 0.05 * classes
    table = np.column_stack([mean, np.full(n, 0.1), dcn, np.full(n, 6.0), np.ones(n), classes])
    query = np.array([[0.6, 6.0, 1.0, 1.0], [0.6, 6.0, 1.0, 6.64]])
    mu, sd = level_by_descriptor(table, query)
    truth = 0.2 + 0.6 * 0.6 - 0.05 * query[:, 3]
    np.testing.assert_allclose(mu, truth, atol=0.03)
    np.testing.assert_allclose(sd, 0.1, atol=1e-9)
    by_dcn, _ = level_at(table[:, [2, 0, 1]], np.array([0.6, 0.6]))
    assert by_dcn[0] == by_dcn[1]  # blind to the class count
    assert np.abs(mu - truth).max() < np.abs(by_dcn - truth).max() / 3
    assert level_by_descriptor(table[:LEVEL_MIN_DATASETS - 1], query) is None
    unknown = table.copy()
    unknown[:5, 3] = np.nan  # geometry unknown for 5 of 12 datasets: 7 left
    assert level_by_descriptor(unknown, query) is None


def test_descriptor_levels_save_and_load(toy_data, tmp_path: Path) -> None:  # noqa: ANN001
    archs, dcn, y = toy_data
    groups = [f"d{i % 9}" for i in range(len(archs))]
    d = np.array([0.2 + 0.07 * (i % 9) for i in range(len(archs))])
    m = TAPRegressor(**SMALL).fit(archs, d, y, groups=groups)
    assert m.level_table_.shape == (9, 6)
    m.save(tmp_path / "m.tap")
    back = TAPRegressor.load(tmp_path / "m.tap")
    np.testing.assert_array_equal(back.level_table_, m.level_table_)
    np.testing.assert_array_equal(back.predict(archs, 0.5), m.predict(archs, 0.5))


@pytest.mark.parametrize(("name", "other"), [("target", "absolute"), ("use_history", False),
                                             ("history_similarity", False),
                                             ("level_model", "dcn")])
def test_ablated_variants_are_refused_but_stay_in_the_identity(toy_data, name: str,
                                                               other: object) -> None:  # noqa: ANN001
    """The rejected variants are gone; their hyper-parameters keep the one value left, so
    every predictor's identity (which hashes all of them) is what it was."""
    from predictor.tap import FIXED_PARAMS

    archs, dcn, y = toy_data
    assert TAPRegressor().get_params()[name] == FIXED_PARAMS[name]
    with pytest.raises(ValueError, match=f"{name} can only be"):
        TAPRegressor(**SMALL, **{name: other}).fit(archs, dcn, y)


def test_out_of_domain_predictions_say_why_and_widen(fitted: TAPRegressor) -> None:
    from tests.predictor.conftest import chain_cnn

    inside = chain_cnn(4, 3)  # a training network, at a training DCN
    big = chain_cnn(64, 5, num_classes=1000, size=64)  # unlike anything trained on
    p = fitted.predict_interval([inside, big, inside], [0.3, 0.3, 0.99])
    assert p.in_domain.tolist() == [True, False, False]
    assert p.reasons[0] == ()
    why = " ".join(p.reasons[1])
    assert "input shape" in why and "1000 classes" in why and "parameters" in why
    assert "DCN 0.990" in " ".join(p.reasons[2])
    half = (p.upper - p.lower) / 2
    q = fitted.predict_interval([inside], [0.99])  # same network, same DCN
    assert np.isfinite(half).all() and half[2] >= (q.upper - q.lower)[0] / 2 - 1e-12


def test_model_file_without_domain_loads_as_in_domain(fitted: TAPRegressor,
                                                      tmp_path: Path) -> None:
    """Files written before the domain was recorded still load: every query counts as in
    domain (no reasons) and intervals are not widened."""
    from predictor import persist
    from tests.predictor.conftest import chain_cnn

    new = tmp_path / "new.tap"
    fitted.save(new)
    header, arrays = persist.read(new)
    state = dict(header["state"])
    del state["domain"]
    old = tmp_path / "old.tap"
    persist.write(old, params=header["params"], state=state, arrays=arrays,
                  provenance=header["provenance"])
    model = load(old)
    assert model.domain_ is None
    big = chain_cnn(64, 5, num_classes=1000, size=64)
    p = model.predict_interval([big], [0.99])
    assert p.in_domain.tolist() == [True] and p.reasons == ((),)
    ref = fitted.predict_interval([big], [0.99])
    np.testing.assert_allclose(p.mean, ref.mean, atol=1e-6)
    assert (p.upper - p.lower)[0] <= (ref.upper - ref.lower)[0] + 1e-9


def _batch_lengths(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """Record the encoded lengths of every training batch the LSTM sees."""
    import predictor.tap as tap

    seen: list[np.ndarray] = []
    build = tap.build_net

    def recording(*a, **k):  # noqa: ANN002, ANN003, ANN202
        net = build(*a, **k)
        forward = net.forward

        def fwd(x, lengths, a0, ctx):  # noqa: ANN001, ANN202
            if net.training:
                seen.append(lengths.cpu().numpy().copy())
            return forward(x, lengths, a0, ctx)

        net.forward = fwd
        return net

    monkeypatch.setattr(tap, "build_net", recording)
    return seen


def test_length_buckets_batch_short_and_long_networks_apart(
        toy_data, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    archs, dcn, y = toy_data
    seen = _batch_lengths(monkeypatch)
    params = dict(SMALL, batch_size=16, epochs=2)
    TAPRegressor(**params).fit(archs, dcn, y)
    half = TAPRegressor().max_steps // 2
    assert seen and all((b <= half).all() or (b > half).all() for b in seen)
    n_rows = sum(len(b) for b in seen)
    seen.clear()
    TAPRegressor(**params, length_buckets=False).fit(archs, dcn, y)
    assert any((b <= half).any() and (b > half).any() for b in seen)
    assert sum(len(b) for b in seen) == n_rows  # every training row, once an epoch, both ways


def test_length_buckets_change_nothing_when_networks_are_alike(toy_data) -> None:  # noqa: ANN001
    from predictor.encoding import encode_batch

    archs, dcn, y = toy_data
    m = TAPRegressor()
    _, lengths, _ = encode_batch(archs, m.max_steps)
    long = np.flatnonzero(lengths > m.max_steps // 2)  # every network long: one bucket
    assert len(long) >= 20
    a, d, t = [archs[i] for i in long], dcn[long], y[long]
    p1 = TAPRegressor(**SMALL).fit(a, d, t).predict(a, d)
    p2 = TAPRegressor(**SMALL, length_buckets=False).fit(a, d, t).predict(a, d)
    np.testing.assert_array_equal(p1, p2)


def test_updates_set_the_gradient_steps(toy_data) -> None:  # noqa: ANN001
    archs, dcn, y = toy_data
    small = {k: v for k, v in SMALL.items() if k != "epochs"}
    few, more = (TAPRegressor(**small, updates=u, batch_size=16).fit(archs, dcn, y)
                 for u in (120, 480))
    assert few.epochs_ > 8 and abs(more.epochs_ - 4 * few.epochs_) <= 4
    with pytest.raises(ValueError, match="updates"):
        TAPRegressor(updates=0).fit(archs, dcn, y)
    with pytest.raises(ValueError, match="length_buckets"):
        TAPRegressor(length_buckets="yes").fit(archs, dcn, y)
