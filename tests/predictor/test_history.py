"""History features: within-dataset ranks of a family on other datasets, masked when
absent, never including the row's own dataset."""

from __future__ import annotations

import numpy as np
import pytest

from predictor import HistoryTable, TAPRegressor
from predictor.history import (
    HISTORY_DIM,
    PLAIN,
    DatasetKernel,
    KernelSet,
    consensus,
    dataset_geometry,
    dataset_pools,
    family_key,
    fit_kernel,
    fit_kernels,
    geometry_of,
)
from predictor.metrics import kendall
from predictor.tap import N_DATASET_FEATURES, REL_SCALE, consensus_map, consensus_slope, consensus_z
from tests.predictor.conftest import chain_cnn

SMALL = dict(hidden_size=8, embed_size=8, epochs=3, n_members=2, device="cpu")


@pytest.fixture(scope="module")
def table() -> HistoryTable:
    # families f0..f3 on dataset "a" (DCN 0.5) and "b" (DCN 0.8); f3 only on "a"
    fams = ["f0", "f1", "f2", "f3", "f0", "f1", "f2"]
    groups = ["a", "a", "a", "a", "b", "b", "b"]
    dcns = [0.5, 0.5, 0.5, 0.5, 0.8, 0.8, 0.8]
    accs = [0.40, 0.50, 0.60, 0.70, 0.90, 0.80, 0.85]
    return HistoryTable(fams, groups, dcns, accs)


def test_percentiles_are_within_each_dataset(table: HistoryTable) -> None:
    a, b = table.group_index("a"), table.group_index("b")
    np.testing.assert_allclose(table.pct[:, a], [0.0, 1 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(table.pct[:3, b], [1.0, 0.0, 0.5])
    assert np.isnan(table.pct[3, b])  # f3 was never trained on "b"


def test_unknown_families_are_masked(table: HistoryTable) -> None:
    rows = np.array([table._index["f1"], -1])
    f = table.features(rows, np.array([0.7, 0.7]))
    assert f.shape == (2, HISTORY_DIM)
    assert f[0, 0] == 1.0 and (f[1] == 0.0).all()


def test_nearest_dataset_first_and_own_dataset_excluded(table: HistoryTable) -> None:
    r = np.array([table._index["f0"]] * 2)
    f = table.features(r, np.array([0.75, 0.75]))
    assert f[0, 1] == 1.0  # nearest is "b" (0.8), where f0 is the best
    assert f[0, 3] == pytest.approx(0.05)
    # the same query *on* dataset "b" must not see its own label: nearest becomes "a"
    g = table.group_index("b")
    f = table.features(r, np.array([0.8, 0.8]), exclude=np.array([g, -1]))
    assert f[0, 1] == 0.0 and f[0, 3] == pytest.approx(0.3)
    assert f[1, 1] == 1.0
    # f3 exists only on "a": excluding "a" leaves nothing, so everything is masked
    r3 = np.array([table._index["f3"]])
    assert (table.features(r3, np.array([0.5]), exclude=np.array([0])) == 0.0).all()


def test_consensus_is_the_plain_mean_percentile_elsewhere(table: HistoryTable) -> None:
    r = np.array([table._index[f] for f in ("f0", "f1", "f3")] + [-1])
    # queried at DCN 0.75, i.e. next to "b": the consensus still weighs "a" as much
    held, pct = consensus(table.features(r, np.full(4, 0.75)))
    np.testing.assert_array_equal(held, [True, True, True, False])
    np.testing.assert_allclose(pct, [(0.0 + 1.0) / 2, (1 / 3 + 0.0) / 2, 1.0, 0.5])
    # on dataset "b" itself, "b" is left out: f0 is then read from "a" alone
    held, pct = consensus(table.features(r[:1], np.array([0.8]),
                                         exclude=np.array([table.group_index("b")])))
    assert held[0] and pct[0] == 0.0


def test_consensus_z_follows_the_training_z_distribution() -> None:
    """A mean percentile becomes the z-score found at that quantile of the training rows
    (skewed accuracies stay skewed); a family held nowhere gets 0."""
    z_train = np.concatenate([np.linspace(-3.0, 0.0, 20), np.linspace(0.0, 1.0, 80)])
    zmap = consensus_map(0.5 + REL_SCALE * z_train)
    ctx = np.zeros((3, N_DATASET_FEATURES + HISTORY_DIM))
    ctx[:2, N_DATASET_FEATURES] = 1.0                      # held
    ctx[:, N_DATASET_FEATURES + 4] = [0.0, 0.5, 0.9]       # mean percentile
    held, z = consensus_z(ctx, zmap)
    np.testing.assert_array_equal(held, [True, True, False])
    np.testing.assert_allclose(z, [-3.0, np.quantile(z_train, 0.5), 0.0])


def test_consensus_slope_measures_how_far_ranks_transfer() -> None:
    """Fitted on rows whose history excludes their own dataset: ranks that repeat across
    datasets give a slope near 1, reversed ones a negative slope, no history 0."""
    rng = np.random.default_rng(0)
    archs = [chain_cnn(w, d) for w in (4, 6, 8, 12) for d in (1, 2, 3)]
    n = len(archs)
    quality = rng.permutation(n) / (n - 1)
    groups = np.repeat(["x", "y", "z"], n)
    dcns = np.repeat([0.3, 0.5, 0.9], n)
    keys = [family_key(a) for a in archs] * 3
    hist = HistoryTable(keys, groups, dcns, np.tile(quality, 3))
    exclude = np.array([hist.group_index(g) for g in groups])
    block = np.zeros((3 * n, N_DATASET_FEATURES))
    ctx = np.hstack([block, hist.features(hist.rows(archs * 3), dcns, exclude)])
    field = 0.5 + REL_SCALE * (consensus(ctx[:, N_DATASET_FEATURES:])[1] - 0.5)
    zmap = consensus_map(field)
    assert consensus_slope(ctx, field, zmap) == pytest.approx(1.0)
    assert consensus_slope(ctx, 1.0 - field, zmap) == pytest.approx(-1.0)
    no_history = np.hstack([block, np.zeros((3 * n, HISTORY_DIM))])
    assert consensus_slope(no_history, field, zmap) == 0.0


def test_history_weight_blends_only_held_families(mixed_archs) -> None:  # noqa: ANN001
    """With fixed shares (no stacking) the weight acts at prediction time: 0 is the LSTM
    alone, 1 ranks every family the LDE holds by its consensus, and a family nobody holds
    is scored by the LSTM either way."""
    archs = mixed_archs[:24]
    rng = np.random.default_rng(2)
    quality = rng.uniform(0.3, 0.8, 12)
    y = np.concatenate([quality, quality + 0.05])
    d = np.repeat([0.4, 0.6], 12)
    groups = np.repeat(["p", "q"], 12)
    twice = archs[:12] * 2
    model = TAPRegressor(**SMALL, history_weight=0.0, stack=False).fit(twice, d, y,
                                                                        groups=groups)
    assert model.consensus_slope_ > 0
    held = HistoryTable([family_key(a) for a in archs[:12]], ["r"] * 12, [0.5] * 12,
                        np.linspace(0.1, 0.9, 12))
    query = archs[:12] + archs[12:]            # the last 12 families are held nowhere
    lstm = model.predict(query, 0.5, history=held)
    model.set_params(history_weight=1.0)
    pure = model.predict(query, 0.5, history=held)
    np.testing.assert_allclose(pure[12:], lstm[12:])
    assert (np.diff(pure[:12]) > 0).all()       # consensus order: linspace above
    assert not np.allclose(pure[:12], lstm[:12])
    with pytest.raises(ValueError, match="history_weight"):
        TAPRegressor(history_weight=1.5).fit(twice, d, y, groups=groups)


def test_fit_never_feeds_a_row_its_own_label() -> None:
    """TAP's training context equals features computed from the *other* datasets only."""
    archs = [chain_cnn(w, d) for w in (4, 6, 8) for d in (1, 2, 3)]
    n = len(archs)
    rng = np.random.default_rng(0)
    a_all = archs * 3
    groups = np.array(["x"] * n + ["y"] * n + ["z"] * n, dtype=object)
    dcns = np.repeat([0.3, 0.5, 0.9], n)
    y = rng.uniform(0.2, 0.9, 3 * n)
    model = TAPRegressor(**SMALL).fit(a_all, dcns, y, groups=groups)
    hist = model.history_
    ctx = model._context(a_all, dcns, geometry_of(a_all), hist,
                         np.array([hist.group_index(g) for g in groups.tolist()]))
    for k, g in enumerate(("x", "y", "z")):
        keep = groups != g
        others = HistoryTable([family_key(a) for a in np.array(a_all, dtype=object)[keep]],
                              groups[keep], dcns[keep], y[keep])
        rows = slice(k * n, (k + 1) * n)
        want = others.features(others.rows(a_all[rows]), dcns[rows],
                               geometry=geometry_of(a_all[rows]), kernel=model.kernel_)
        np.testing.assert_allclose(ctx[rows, N_DATASET_FEATURES:], want, atol=1e-12)


def test_a_fresher_history_changes_predictions_without_refit(mixed_archs) -> None:  # noqa: ANN001
    archs = mixed_archs[:20]
    rng = np.random.default_rng(1)
    d = np.repeat([0.4, 0.6], 10)
    # fixed shares: on random labels the stacking may rightly leave the consensus out
    model = TAPRegressor(**SMALL, stack=False).fit(archs, d, rng.uniform(0.3, 0.8, 20))
    empty = HistoryTable([], [], [], [])
    other = HistoryTable([family_key(a) for a in archs], ["new"] * 20, [0.5] * 20,
                         np.linspace(0.1, 0.9, 20))
    p_empty = model.predict(archs, 0.5, history=empty)
    p_other = model.predict(archs, 0.5, history=other)
    assert not np.allclose(p_empty, p_other)
    np.testing.assert_allclose(model.predict(archs, 0.5, history=other), p_other)


def _two_geometries(n: int = 40) -> tuple[HistoryTable, np.ndarray, np.ndarray]:
    """Families on four 1x8x8 and four 3x32x32 datasets with interleaved DCNs: datasets
    of one geometry rank the families alike (plus noise), the two geometries independently."""
    rng = np.random.default_rng(0)
    q_small, q_big = rng.permutation(n).astype(float), rng.permutation(n).astype(float)
    fams, groups, dcns, accs, shapes = [], [], [], [], []
    for k in range(4):
        for name, q, shape, dcn in (("s", q_small, (1, 8, 8), 0.30 + 0.1 * k),
                                    ("b", q_big, (3, 32, 32), 0.35 + 0.1 * k)):
            fams += [f"f{i}" for i in range(n)]
            groups += [f"{name}{k}"] * n
            dcns += [dcn] * n
            accs += (q + rng.normal(0.0, 6.0, n)).tolist()
            shapes += [shape] * n
    geo = dataset_geometry(shapes, [10] * len(shapes))
    return HistoryTable(fams, groups, dcns, accs, geo), q_small, q_big


def test_fit_kernel_learns_that_datasets_of_one_geometry_rank_alike() -> None:
    table, q_small, q_big = _two_geometries()
    kernel = fit_kernel(table)
    assert not kernel.plain
    n = len(q_small)
    rows = np.array([table._index[f"f{i}"] for i in range(n)])
    dcn = np.full(n, 0.5)
    for shape, q in (((1, 8, 8), q_small), ((3, 32, 32), q_big)):
        geo = dataset_geometry([shape] * n, [10] * n)
        weighted = table.features(rows, dcn, geometry=geo, kernel=kernel)[:, 4]
        plain = table.features(rows, dcn, geometry=geo)[:, 4]
        assert kendall(weighted, q) > kendall(plain, q) + 0.2


def test_fit_kernel_keeps_the_plain_mean_without_evidence(table: HistoryTable) -> None:
    assert fit_kernel(table) is PLAIN           # two datasets: nothing to learn from
    # one geometry, one ranking: no weighting beats the plain mean
    rng = np.random.default_rng(1)
    q = rng.permutation(30).astype(float)
    same = HistoryTable([f"f{i}" for i in range(30)] * 4, np.repeat(list("wxyz"), 30),
                        np.repeat([0.2, 0.4, 0.6, 0.8], 30), np.tile(q, 4),
                        dataset_geometry([(1, 8, 8)] * 120, [10] * 120))
    assert fit_kernel(same) is PLAIN


def test_kernel_weights_and_their_file_form() -> None:
    q = np.array([[0.5, 6.0, 1.0, np.log2(10)], [0.5, np.nan, np.nan, np.nan]])
    g = np.array([[0.5, 6.0, 1.0, np.log2(10)], [0.5, 10.0, 3.0, np.log2(10)]])
    np.testing.assert_array_equal(PLAIN.weights(q, g), np.ones((2, 2)))
    k = DatasetKernel((np.inf, 1.0, np.inf, np.inf), 0.1)
    w = k.weights(q, g)
    assert w[0, 0] == 1.0 and w[0, 1] == pytest.approx(0.1 + 0.9 * np.exp(-4.0))
    np.testing.assert_array_equal(w[1], [1.0, 1.0])  # unknown geometry counts as equal
    assert DatasetKernel.from_dict(k.to_dict()) == k
    with pytest.raises(ValueError, match="scales"):
        DatasetKernel.from_dict({"scales": [1.0], "floor": 0.1})


def test_a_weighted_consensus_still_leaves_the_row_s_own_dataset_out() -> None:
    table, q_small, _ = _two_geometries()
    kernel = DatasetKernel((np.inf, 0.3, np.inf, np.inf), 0.05)
    own = table.group_index("s0")
    rows = np.array([table._index["f0"], table._index["f1"]])
    geo = dataset_geometry([(1, 8, 8)] * 2, [10] * 2)
    got = table.features(rows, np.array([0.3, 0.3]), np.array([own, own]), geo, kernel)[:, 4]
    w = kernel.weights(np.column_stack([[0.3, 0.3], geo]), table.descriptors())
    w[:, own] = 0.0
    want = (w * table.pct[rows]).sum(1) / w.sum(1)
    np.testing.assert_allclose(got, want)
    assert not np.allclose(got, table.pct[rows, own])


def _two_pools() -> tuple[HistoryTable, np.ndarray]:
    """The two-geometry pool of :func:`_two_geometries` (families ``f*``) beside a second
    pool of other families (``g*``) on two 1x8x8 and two 3x32x32 datasets, where every
    dataset ranks them alike: there geometry says nothing."""
    table, _, _ = _two_geometries()
    rng = np.random.default_rng(3)
    n = 40
    q = rng.permutation(n).astype(float)
    fams, groups, dcns, accs, shapes = [], [], [], [], []
    for k, shape in enumerate([(1, 8, 8), (1, 8, 8), (3, 32, 32), (3, 32, 32)]):
        fams += [f"g{i}" for i in range(n)]
        groups += [f"p{k}"] * n
        dcns += [0.3 + 0.15 * k] * n
        accs += (q + rng.normal(0.0, 8.0, n)).tolist()
        shapes += [shape] * n
    old = [(f, g, table.group_dcn[j], table.acc[i, j], tuple(table.group_geom[j]))
           for i, f in enumerate(table.families) for j, g in enumerate(table.groups)]
    geo = np.vstack([np.array([o[4] for o in old]),
                     dataset_geometry(shapes, [10] * len(shapes))])
    both = HistoryTable([o[0] for o in old] + fams, [o[1] for o in old] + groups,
                        [o[2] for o in old] + dcns, [o[3] for o in old] + accs, geo)
    return both, q


def test_datasets_that_share_families_form_one_pool() -> None:
    both, _ = _two_pools()
    pools = [[both.groups[j] for j in p] for p in dataset_pools(both)]
    assert sorted(map(sorted, pools)) == [sorted(f"{a}{k}" for a in "sb" for k in range(4)),
                                          [f"p{k}" for k in range(4)]]
    sub = both.select([both.group_index("p1"), both.group_index("s2")])
    assert sub.groups == ["p1", "s2"] and sub.families == both.families
    np.testing.assert_array_equal(sub.pct[:, 1], both.pct[:, both.group_index("s2")])


def test_each_pool_gets_its_own_kernel_and_each_family_its_pool_s() -> None:
    both, _ = _two_pools()
    kernels = fit_kernels(both)
    by_pool = {min(g)[0]: k for g, k in kernels.pools}
    assert not by_pool["b"].plain and by_pool["p"] is PLAIN
    assert not kernels.default.plain         # the geometry pool outvotes the other one
    assert KernelSet.from_dict(kernels.to_dict()) == kernels
    n = 40
    dcn = np.full(n, 0.5)
    geo = dataset_geometry([(3, 32, 32)] * n, [10] * n)
    rows_g = np.array([both._index[f"g{i}"] for i in range(n)])
    rows_f = np.array([both._index[f"f{i}"] for i in range(n)])
    np.testing.assert_allclose(both.features(rows_g, dcn, geometry=geo, kernel=kernels)[:, 4],
                               both.features(rows_g, dcn, geometry=geo)[:, 4])
    np.testing.assert_allclose(
        both.features(rows_f, dcn, geometry=geo, kernel=kernels)[:, 4],
        both.features(rows_f, dcn, geometry=geo, kernel=by_pool["b"])[:, 4])


def test_pooled_kernels_beat_one_kernel_where_the_pools_disagree() -> None:
    both, q = _two_pools()
    n = len(q)
    target = both.group_index("p2")        # a 3x32x32 dataset of the second pool, left out
    rows = np.array([both._index[f"g{i}"] for i in range(n)])
    exclude = np.full(n, target)
    geo = dataset_geometry([(3, 32, 32)] * n, [10] * n)
    dcn = np.full(n, both.group_dcn[target])
    others = both.select([j for j in range(len(both.groups)) if j != target])
    pooled = both.features(rows, dcn, exclude, geo, fit_kernels(others))[:, 4]
    single = both.features(rows, dcn, exclude, geo, fit_kernel(others))[:, 4]
    assert kendall(pooled, q) > kendall(single, q) + 0.02


def test_a_family_no_pool_holds_takes_the_default_kernel() -> None:
    both, _ = _two_pools()
    by_size = DatasetKernel((np.inf, 0.3, np.inf, np.inf), 0.05)
    kernels = KernelSet(((("s0", "s1"), PLAIN),), by_size)
    rows = np.array([both._index["g0"], both._index["f0"]])
    geo = dataset_geometry([(1, 8, 8)] * 2, [10] * 2)
    got = both.features(rows, np.full(2, 0.5), geometry=geo, kernel=kernels)[:, 4]
    want_g = both.features(rows[:1], np.full(1, 0.5), geometry=geo[:1],
                           kernel=kernels.default)[:, 4]
    np.testing.assert_allclose(got, [want_g[0], np.nanmean(both.pct[rows[1]])])
