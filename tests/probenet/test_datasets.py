"""Loading every source and layout, variants, fingerprints and every bad-data case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from probenet import Dataset, DatasetError, load_dataset, split
from probenet.fingerprint import fingerprint
from tests.probenet.conftest import blobs

# --------------------------------------------------------------------- npz layouts


def test_npz_nhw_uint8(write_npz):
    x, y = blobs(shape=(6, 7))
    ds = load_dataset(write_npz(x, y))
    assert ds.x.shape == (60, 1, 6, 7) and ds.x.dtype == np.float32
    assert ds.input_shape == (1, 6, 7) and ds.n_samples == 60 and ds.num_classes == 3
    np.testing.assert_allclose(ds.x[:, 0], x / 255.0, rtol=1e-6)
    assert ds.y.dtype == np.int64 and set(ds.y.tolist()) == {0, 1, 2}


def test_npz_nhwc_and_nchw_give_the_same_arrays(write_npz):
    rng = np.random.default_rng(1)
    nhwc = rng.random((20, 5, 6, 3))
    y = np.arange(20) % 2
    a = load_dataset(write_npz(nhwc, y))
    b = load_dataset(write_npz(np.transpose(nhwc, (0, 3, 1, 2)), y))
    assert a.input_shape == (3, 5, 6) == b.input_shape
    np.testing.assert_array_equal(a.x, b.x)
    assert a.fingerprint == b.fingerprint


@pytest.mark.parametrize("dtype", [np.int16, np.int64, np.float16, np.float32, np.float64,
                                   np.uint16, np.bool_])
def test_npz_any_numeric_dtype_scaled_to_unit_range(write_npz, dtype):
    rng = np.random.default_rng(2)
    x = (rng.random((12, 1, 4, 4)) * 100 - 20).astype(dtype)
    ds = load_dataset(write_npz(x, np.arange(12) % 3))
    assert ds.x.dtype == np.float32 and ds.x.min() >= 0.0 and ds.x.max() <= 1.0
    if dtype is not np.bool_:
        assert ds.x.min() == 0.0 and ds.x.max() == pytest.approx(1.0)


def test_npz_labels_are_remapped_and_integral_floats_accepted(write_npz):
    x, _ = blobs(n=8, k=2)
    ds = load_dataset(write_npz(x, np.array([3, 7, 3, 7, 3, 7, 3, 7], dtype=np.float32)))
    assert ds.y.tolist() == [0, 1] * 4 and ds.num_classes == 2
    ds2 = load_dataset(write_npz(x, np.array([[3], [7]] * 4)))  # N x 1 column
    assert ds2.y.tolist() == [0, 1] * 4


def test_arrays_are_read_only(write_npz):
    ds = load_dataset(write_npz(*blobs()))
    with pytest.raises(ValueError):
        ds.x[0, 0, 0, 0] = 1.0
    with pytest.raises(ValueError):
        ds.y[0] = 1


# -------------------------------------------------------------------- image folders


def _write_images(root: Path, mode: str, size=(5, 4), per_class: int = 3) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "ant", "bee"):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
            Image.fromarray(rng.integers(0, 255, shape).astype(np.uint8), mode).save(
                root / cls / f"{i}.png")


def test_image_folder_grayscale(tmp_path):
    _write_images(tmp_path / "g", "L")
    ds = load_dataset(tmp_path / "g")
    assert ds.input_shape == (1, 4, 5) and ds.n_samples == 9 and ds.num_classes == 3
    assert ds.y.tolist() == [0] * 3 + [1] * 3 + [2] * 3  # ant, bee, cat (sorted)
    assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0


def test_image_folder_rgb_matches_pixels(tmp_path):
    from PIL import Image

    _write_images(tmp_path / "c", "RGB")
    ds = load_dataset(str(tmp_path / "c"))
    assert ds.input_shape == (3, 4, 5)
    first = np.asarray(Image.open(tmp_path / "c" / "ant" / "0.png"))
    np.testing.assert_allclose(ds.x[0], np.transpose(first, (2, 0, 1)) / 255.0, rtol=1e-6)


# ------------------------------------------------------------------------ built-ins


@pytest.mark.parametrize(("name", "n", "shape"), [("digits", 1797, (1, 8, 8)),
                                                  ("mnist5k", 5000, (1, 28, 28)),
                                                  ("mnist1d", 5000, (1, 5, 8)),
                                                  ("cmnist", 5000, (3, 32, 32))])
def test_builtins_load_offline(name, n, shape):
    ds = load_dataset(name)
    assert ds.n_samples == n and ds.input_shape == shape and ds.num_classes == 10
    assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0 and ds.name == name
    assert np.bincount(ds.y).min() > 100


def test_coloured_mnist_keeps_the_digit_and_hides_the_label_in_no_colour():
    gray, col = load_dataset("mnist5k"), load_dataset("cmnist")
    np.testing.assert_array_equal(gray.y, col.y)
    stroke = np.pad(gray.x, ((0, 0), (0, 0), (2, 2), (2, 2)))[:, 0] > 0.9
    fg = np.stack([col.x[i, :, stroke[i]].mean(0) for i in range(200)])  # (200, 3)
    assert fg.min() >= 0.45  # bright strokes, dark background
    per_class = [fg[col.y[:200] == c].mean(0) for c in range(10) if (col.y[:200] == c).sum() > 5]
    assert np.ptp(np.array(per_class), axis=0).max() < 0.15  # colour says nothing of the digit


def test_photo_regions_are_rgb_crops_of_the_bundled_photos():
    ds = load_dataset("photos")
    assert ds.input_shape == (3, 32, 32) and ds.num_classes == 16
    assert np.bincount(ds.y).tolist() == [400] * 16
    assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0
    # crops of one region look alike: nearer their region's mean colour than others'
    means = np.stack([ds.x[ds.y == c].mean(axis=(0, 2, 3)) for c in range(16)])
    own = np.linalg.norm(ds.x[:, :, 16, 16] - means[ds.y], axis=1).mean()
    other = np.linalg.norm(ds.x[:, :, 16, 16] - means[(ds.y + 5) % 16], axis=1).mean()
    assert own < other


def test_resize_resamples_to_a_square_side():
    ds = load_dataset("mnist5k?per_class=10&resize=16")
    assert ds.input_shape == (1, 16, 16) and ds.name == "mnist5k?per_class=10&resize=16"
    src = load_dataset("mnist5k?per_class=10")
    assert abs(float(ds.x.mean()) - float(src.x.mean())) < 0.02  # area preserved
    up = load_dataset("digits?resize=12")
    assert up.input_shape == (1, 12, 12) and up.x.min() >= 0 and up.x.max() <= 1
    assert load_dataset("digits?resize=8").name == "digits?resize=8"


def test_variants_each_parameter():
    base = load_dataset("digits")
    sub = load_dataset("digits?classes=3,5,8")
    assert sub.num_classes == 3 and sub.n_samples == int(np.isin(base.y, [3, 5, 8]).sum())
    np.testing.assert_array_equal(sub.x[sub.y == 0], base.x[base.y == 3])
    pc = load_dataset("digits?per_class=20")
    assert np.bincount(pc.y).tolist() == [20] * 10
    rep = load_dataset("digits?repeat=2")
    assert rep.n_samples == 2 * base.n_samples
    ds2 = load_dataset("digits?downsample=2")
    assert ds2.input_shape == (1, 4, 4)
    np.testing.assert_allclose(ds2.x[0, 0, 0, 0], base.x[0, 0, :2, :2].mean(), rtol=1e-6)
    occ = load_dataset("digits?occlude=0.5")
    zeroed = (occ.x == 0) & (base.x != 0)
    assert zeroed.any() and (occ.x <= base.x + 1e-7).all()
    noisy = load_dataset("digits?pixel_noise=0.3")
    assert 0.1 < float(np.abs(noisy.x - base.x).mean()) < 0.3
    ln = load_dataset("digits?label_noise=0.3")
    changed = float((ln.y != base.y).mean())
    assert 0.25 < changed < 0.35
    np.testing.assert_array_equal(ln.x, base.x)


def test_sealed_suite_variants_rotate_blur_contrast_invert():
    base = load_dataset("digits")
    rot = load_dataset("digits?rotate=90")
    assert rot.input_shape == base.input_shape and rot.x.min() >= 0 and rot.x.max() <= 1
    diff = np.abs(rot.x - base.x).reshape(len(base.x), -1).mean(1)
    assert (diff > 0.02).mean() > 0.8  # nearly every image moved
    np.testing.assert_array_equal(rot.y, base.y)
    # a 180-degree bound reaches every angle; a tiny one barely moves the images
    assert np.abs(load_dataset("digits?rotate=1").x - base.x).mean() < 0.1 * diff.mean()
    blur = load_dataset("digits?blur=1")
    assert np.abs(np.diff(blur.x, axis=3)).mean() < 0.6 * np.abs(np.diff(base.x, axis=3)).mean()
    assert abs(float(blur.x.mean()) - float(base.x.mean())) < 0.02  # mass kept
    con = load_dataset("digits?contrast=0.3")
    spread = con.x.std(axis=(1, 2, 3)) / base.x.std(axis=(1, 2, 3))
    assert spread.min() >= 0.3 - 1e-5 and spread.max() <= 1 + 1e-5 and spread.std() > 0.1
    np.testing.assert_allclose(con.x.mean(axis=(1, 2, 3)), base.x.mean(axis=(1, 2, 3)),
                               atol=0.02)  # per-image mean kept (clipping aside)
    inv = load_dataset("digits?invert=0.5")
    flipped = np.isclose(inv.x, 1.0 - base.x).reshape(len(base.x), -1).all(1)
    kept = np.isclose(inv.x, base.x).reshape(len(base.x), -1).all(1)
    assert (flipped | kept).all() and 0.4 < flipped.mean() < 0.6
    assert load_dataset("digits?invert=1").x.tolist() == (1.0 - base.x).tolist()


def test_sealed_suite_variants_are_seeded_and_canonical():
    a = load_dataset("digits?invert=0.3&rotate=20&contrast=0.5&blur=0.5&pixel_noise=0.1")
    b = load_dataset("digits?pixel_noise=0.1&blur=0.5&contrast=0.5&rotate=20&invert=0.3")
    assert a.name == b.name == "digits?rotate=20&blur=0.5&contrast=0.5&invert=0.3&pixel_noise=0.1"
    assert a.fingerprint == b.fingerprint
    assert load_dataset(a.name + "&seed=1").fingerprint != a.fingerprint


def test_new_builtins_mnist1d64_and_hopper():
    m = load_dataset("mnist1d64")
    assert m.input_shape == (1, 8, 8) and m.num_classes == 10 and m.n_samples == 5000
    assert m.x.min() == 0.0 and m.x.max() == 1.0
    old = load_dataset("mnist1d")  # another generator configuration: other signals
    assert m.fingerprint != old.fingerprint and m.x.shape[2:] != old.x.shape[2:]
    h = load_dataset("hopper")
    assert h.input_shape == (1, 28, 28) and h.num_classes == 9
    assert np.bincount(h.y).tolist() == [300] * 9
    assert h.x.min() >= 0.0 and h.x.max() <= 1.0
    means = np.stack([h.x[h.y == c].mean(0) for c in range(9)])  # regions differ in content
    own = ((h.x - means[h.y]) ** 2).sum(axis=(1, 2, 3)).mean()
    assert own < ((h.x - means[(h.y + 4) % 9]) ** 2).sum(axis=(1, 2, 3)).mean()
    assert load_dataset("hopper").fingerprint == h.fingerprint  # seeded


def test_variants_are_deterministic_and_canonical():
    a = load_dataset("digits?pixel_noise=0.2&label_noise=0.3")
    b = load_dataset("digits?label_noise=0.30&pixel_noise=0.2")
    assert a.name == b.name == "digits?pixel_noise=0.2&label_noise=0.3"
    assert a.fingerprint == b.fingerprint
    c = load_dataset("digits?pixel_noise=0.2&label_noise=0.3&seed=1")
    assert c.fingerprint != a.fingerprint


def test_variants_on_npz(write_npz):
    p = write_npz(*blobs(n=90, k=3))
    ds = load_dataset(f"{p}?per_class=5&classes=0,2")
    assert ds.n_samples == 10 and ds.num_classes == 2


@pytest.mark.parametrize(("spec", "words"), [
    ("digits?colour=3", "unknown variant parameter 'colour'"),
    ("digits?label_noise=2", "label_noise"),
    ("digits?per_class=0", "per_class"),
    ("digits?per_class=abc", "per_class"),
    ("digits?classes=3", "classes"),
    ("digits?classes=3,42", "do not exist"),
    ("digits?downsample=9", "larger than"),
    ("digits?resize=0", "resize"),
    ("digits?rotate=181", r"rotate: expected a number in \[0, 180\]"),
    ("digits?rotate=-5", "rotate"),
    ("digits?blur=11", r"blur: expected a number in \[0, 10\]"),
    ("digits?blur=x", "blur"),
    ("digits?contrast=0", r"contrast: expected a number in \(0, 1\]"),
    ("digits?contrast=1.5", "contrast"),
    ("digits?invert=2", r"invert: expected a number in \[0, 1\]"),
    ("nosuchset", "not a built-in"),
    ("", "empty"),
])
def test_bad_specs(spec, words):
    with pytest.raises(DatasetError, match=words):
        load_dataset(spec)


# ---------------------------------------------------------------------- fingerprints


def test_fingerprint_same_data_same_id_across_sources(write_npz):
    d = load_dataset("digits")
    via_npz = load_dataset(write_npz(np.asarray(d.x), np.asarray(d.y)))
    assert via_npz.fingerprint == d.fingerprint and len(d.fingerprint) == 64
    assert load_dataset("digits").fingerprint == d.fingerprint


def test_fingerprint_changes_with_one_label_or_pixel():
    d = load_dataset("digits")
    y = np.array(d.y)
    y[100] = (y[100] + 1) % 10
    assert fingerprint(d.x, y, 10) != d.fingerprint
    assert Dataset(d.x, y, "other").fingerprint != d.fingerprint
    x = np.array(d.x)
    x[5, 0, 3, 3] += 0.5
    assert Dataset(x, d.y, "digits").fingerprint != d.fingerprint
    assert Dataset(d.x, d.y, "renamed").fingerprint == d.fingerprint


# -------------------------------------------------------------------------- bad data


def test_mismatched_lengths(write_npz):
    x, y = blobs()
    with pytest.raises(DatasetError, match="60 samples but y has 59"):
        load_dataset(write_npz(x, y[:-1]))


def test_one_class_only(write_npz):
    x, _ = blobs()
    with pytest.raises(DatasetError, match="only one class"):
        load_dataset(write_npz(x, np.zeros(60, np.int64)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(write_npz, bad):
    x = np.random.default_rng(0).random((10, 4, 4))
    x[7, 1, 2] = bad
    with pytest.raises(DatasetError, match="non-finite.*sample 7"):
        load_dataset(write_npz(x, np.arange(10) % 2))


def test_empty_file(tmp_path):
    p = tmp_path / "empty.npz"
    p.write_bytes(b"")
    with pytest.raises(DatasetError, match="empty"):
        load_dataset(p)


def test_empty_arrays(write_npz):
    with pytest.raises(DatasetError, match="no samples"):
        load_dataset(write_npz(np.zeros((0, 4, 4)), np.zeros(0, np.int64)))


def test_corrupt_npz(tmp_path):
    p = tmp_path / "bad.npz"
    p.write_bytes(b"PK\x03\x04 definitely not a zip archive")
    with pytest.raises(DatasetError, match="not a readable .npz"):
        load_dataset(p)


def test_single_array_file(tmp_path):
    p = tmp_path / "one.npz"
    with open(p, "wb") as fh:
        np.save(fh, np.zeros((4, 3, 3)))
    with pytest.raises(DatasetError, match="single array"):
        load_dataset(p)


def test_missing_arrays(tmp_path):
    p = tmp_path / "keys.npz"
    np.savez(p, images=np.zeros((4, 3, 3)), labels=np.arange(4))
    with pytest.raises(DatasetError,
                       match=r"needs arrays 'x' and 'y', found \['images', 'labels'\]"):
        load_dataset(p)


@pytest.mark.parametrize("labels", [np.array([0.5, 1.0] * 5), np.array(["cat", "dog"] * 5)])
def test_non_integer_labels(write_npz, labels):
    with pytest.raises(DatasetError, match="labels must be integers"):
        load_dataset(write_npz(np.zeros((10, 3, 3)), labels))


@pytest.mark.parametrize("shape", [(10, 9), (10,), (10, 2, 3, 3, 3)])
def test_wrong_ndim(write_npz, shape):
    with pytest.raises(DatasetError, match="x must be N x H x W"):
        load_dataset(write_npz(np.zeros(shape), np.arange(10) % 2))


def test_non_numeric_x(write_npz):
    with pytest.raises(DatasetError, match="numeric"):
        load_dataset(write_npz(np.array([["a"] * 3] * 4).reshape(4, 3, 1), np.arange(4) % 2))


def test_unreadable_image(tmp_path):
    _write_images(tmp_path / "u", "L")
    bad = tmp_path / "u" / "bee" / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DatasetError, match=r"broken\.png: unreadable image"):
        load_dataset(tmp_path / "u")


def test_image_size_mismatch(tmp_path):
    from PIL import Image

    _write_images(tmp_path / "s", "L")
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp_path / "s" / "cat" / "big.png")
    with pytest.raises(DatasetError, match="big.png: image size 9x9 differs"):
        load_dataset(tmp_path / "s")


def test_folder_without_classes_or_images(tmp_path):
    (tmp_path / "f").mkdir()
    with pytest.raises(DatasetError, match="one sub-folder per class"):
        load_dataset(tmp_path / "f")
    (tmp_path / "f" / "a").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        load_dataset(tmp_path / "f")


def test_unsupported_and_missing_paths(tmp_path):
    p = tmp_path / "data.csv"
    p.write_text("1,2\n")
    with pytest.raises(DatasetError, match="unsupported file type"):
        load_dataset(p)
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "nope.npz")


# ------------------------------------------------------------------------------ split


def test_split_is_stratified_disjoint_and_seeded():
    d = load_dataset("digits")
    tr, te = split(d, 0.25, seed=3)
    assert tr.n_samples + te.n_samples == d.n_samples
    assert te.num_classes == tr.num_classes == 10
    frac = np.bincount(te.y, minlength=10) / np.bincount(d.y, minlength=10)
    assert np.all(np.abs(frac - 0.25) < 0.02)
    tr2, te2 = split(d, 0.25, seed=3)
    assert te2.fingerprint == te.fingerprint
    assert split(d, 0.25, seed=4)[1].fingerprint != te.fingerprint
    with pytest.raises(DatasetError, match="test_fraction"):
        split(d, 1.5, 0)
