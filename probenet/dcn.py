"""The Dataset Characterization Number (DCN).

Definition (probe version :data:`PROBE_VERSION`):

1. Take the dataset (at most ``max_samples`` images, default
   ``Settings.probe_max_samples``, by a stratified subsample seeded with ``seed``).
2. Split it into :data:`N_FOLDS` stratified folds (seeded). For each fold, train a fresh
   :class:`~probenet.net.ProbeNet` (its input-dependent width) on the other folds with
   :data:`PROBE_RECIPE` for ``epochs`` epochs (default ``Settings.probe_epochs``), or
   more on small data: enough for ``MIN_STEPS_PER_EPOCH * epochs`` optimizer steps
   (200 by default), at most ``MAX_EPOCH_FACTOR * epochs`` epochs (so a 150-image
   dataset is not judged by a barely trained probe), but at most ``max_steps`` optimizer
   steps (default ``Settings.probe_max_steps``, :data:`DEFAULT_MAX_STEPS`; the probe
   budget, below), and predict the held-out fold. Every image is thus predicted once by
   a probe that never saw it.
3. Repeat step 2 ``R = clamp(WORK_IMAGES // n, 1, MAX_REPEATS)`` times with fresh
   folds and initialisations (small datasets are cheap and noisier, so they get more
   repeats; n is the number of images used).
4. ``accuracy`` = fraction of all ``R * n`` held-out predictions that are correct
   (repeated cross-validated accuracy); ``chance = 1 / K`` for K classes.
5. ``DCN = clip((accuracy - chance) / (1 - chance), 0, 1)``.

So the DCN is in [0, 1] and **higher means easier**: 1 = the probe classifies
everything, 0 = no better than chance. Predicting every image once (rather than a
small test split) is what keeps the DCN repeatable across seeds.

The probe budget (``max_steps``). Epochs alone do not bound the cost: a probe's epoch is
``n_train / 64`` steps, so the cost grew with the dataset up to the ``max_samples`` cap
(10,000 images of 3x32x32: 2 probes x 8 epochs x 78 steps, 15 s of CPU on one core of
the reference 2-core machine). Each probe therefore trains at most ``max_steps``
optimizer steps of 64 images (the schedule is laid over the capped steps, so it still
warms up and anneals; the last epoch may be partial). The budget is counted in steps,
not measured in seconds, so the DCN of given data is the same on every machine and under
any load: a wall-clock cutoff would make a slow or busy machine train less and report a
lower DCN. :data:`DEFAULT_MAX_STEPS` = 400 is chosen as seconds: ProbeNet keeps its
compute per image roughly constant whatever the input (:class:`~probenet.net.ProbeNet`
picks stem pooling and width from the geometry), so 400 steps is about 4.5 s per probe
on one core of the reference CPU, and a 10,000-image DCN (R = 1, two probes) takes about
9 s of CPU instead of 15 s, its DCN about 0.005 lower (BENCHMARKS.md). It only bites
where a probe would train more than 400 steps, i.e. above ~6,500 images at the default 8
epochs (more than 51 steps per epoch); every smaller dataset, among them all those of
the shipped database (at most 2,000 images), trains exactly as before and keeps its DCN
bit for bit. ``max_steps=0`` lifts the cap (the procedure before the budget). The budget
is part of the cache key (:func:`probe_settings`); a DCN stored before the budget
existed (no ``max_steps`` in its meta) still matches whenever the budget would not have
bitten on it (:func:`stored_result`). Small datasets are not made cheaper: they get
``R`` repeats for repeatability, so 1,500-5,000 images of 3x32x32 still cost more than
10,000 do (16-18 s of CPU).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from probenet.datasets import Dataset, stratified_folds, stratified_subsample
from probenet.train import Recipe, train_tensors
from tapas.core.config import get_settings
from tapas.core.device import resolve_device
from tapas.core.lazy import LazyImport

torch = LazyImport("torch")
probe_net = LazyImport("probenet.net")  # torch.nn

PROBE_VERSION = "probenet-2"
"""Bumped whenever the probe, its recipe or the DCN procedure changes (cached DCNs of
another version are recomputed)."""
N_FOLDS = 2
DEFAULT_MAX_STEPS = 400
"""The default probe budget: optimizer steps per probe (``Settings.probe_max_steps``)."""
WORK_IMAGES = 10_000
MAX_REPEATS = 4
MIN_STEPS_PER_EPOCH = 25
MAX_EPOCH_FACTOR = 5
PROBE_WIDTH: int | None = None
"""``None``: ProbeNet's input-dependent width (32 for <= 64 pixels, else 16)."""
PROBE_RECIPE = Recipe(epochs=8, batch_size=64, lr=0.01, optimizer="adamw", weight_decay=5e-4,
                      schedule="onecycle", augmentation="none")
"""The probe's fixed recipe; ``epochs`` is replaced by the ``epochs`` argument/setting."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DCNResult:
    """A DCN and how it was obtained."""

    dcn: float
    accuracy: float
    chance: float
    seed: int
    epochs: int
    """The requested epochs; small datasets train longer (:data:`MIN_STEPS_PER_EPOCH`)."""
    probe_version: str
    device: str
    seconds: float
    n_train: int
    """Images each probe trained on (per fold)."""
    n_test: int
    """Images predicted held-out (all folds together)."""
    n_folds: int
    repeats: int
    max_samples: int
    num_classes: int
    fingerprint: str
    dataset: str
    max_steps: int | None = None
    """The probe budget: optimizer steps per probe, 0 = none; None for a DCN stored
    before the budget existed (computed without a cap)."""
    steps: int | None = None
    """Optimizer steps of all probes together (the work done); None when not recorded."""
    capped: bool = False
    """Whether the budget shortened any probe (the DCN then differs from an uncapped one)."""
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def meta(self) -> dict[str, Any]:
        """What is stored next to the DCN in the LDE (``method = "probe"``)."""
        return {"method": "probe",
                **{k: v for k, v in self.to_dict().items() if k not in ("dcn", "cached")}}

    @classmethod
    def from_meta(cls, dcn: float, meta: dict[str, Any]) -> DCNResult:
        fields = cls.__dataclass_fields__
        return cls(dcn=float(dcn), **{k: v for k, v in meta.items() if k in fields
                                      and k not in ("dcn", "cached")}, cached=True)


def _device(device: str | torch.device | None) -> torch.device:
    if isinstance(device, torch.device):
        return device
    policy = get_settings().device if device in (None, "", "settings") else str(device)
    return resolve_device(policy)


def probe_plan(n_train: int, epochs: int, max_steps: int = 0) -> tuple[int, int]:
    """``(epochs, steps)`` of one probe trained on ``n_train`` images for ``epochs``
    requested epochs under the budget ``max_steps`` (0: none): at least
    ``MIN_STEPS_PER_EPOCH * epochs`` steps, at most ``MAX_EPOCH_FACTOR * epochs`` epochs,
    then at most ``max_steps`` steps (the returned epochs count a partial last one)."""
    per_epoch = max(1, n_train // min(PROBE_RECIPE.batch_size, n_train))
    want_steps = MIN_STEPS_PER_EPOCH * epochs
    ep = int(min(max(epochs, -(-want_steps // per_epoch)), MAX_EPOCH_FACTOR * epochs))
    steps = ep * per_epoch
    if max_steps and steps > max_steps:
        steps = int(max_steps)
        ep = -(-steps // per_epoch)
    return ep, steps


def compute_dcn(dataset: Dataset, seed: int = 0, device: str | torch.device | None = None,
                epochs: int | None = None, max_samples: int | None = None,
                progress: Progress | None = None, max_steps: int | None = None) -> DCNResult:
    """Train the probe on ``dataset`` as defined in this module and return its DCN.

    ``device``: ``auto|cpu|cuda`` (``auto`` = CUDA when present), ``None`` or
    ``"settings"`` for ``Settings.device`` (``TAPAS_DEVICE``), or a ``torch.device``.
    ``max_steps``: the probe budget, optimizer steps per probe (``None``:
    ``Settings.probe_max_steps``; 0: no cap). ``progress(done, total)`` counts epochs
    over all folds.
    """
    settings = get_settings()
    epochs = int(epochs or settings.probe_epochs)
    max_samples = int(max_samples or settings.probe_max_samples)
    max_steps = int(settings.probe_max_steps if max_steps is None else max_steps)
    if epochs < 1 or max_samples < 2 * N_FOLDS or max_steps < 0:
        raise ValueError(f"epochs must be >= 1, max_samples >= {2 * N_FOLDS} and "
                         "max_steps >= 0")
    dev = _device(device)
    t0 = time.perf_counter()
    idx = stratified_subsample(dataset.y, max_samples, seed)
    y_np = dataset.y[idx]
    x = torch.from_numpy(np.array(dataset.x[idx])).to(dev)
    y = torch.from_numpy(np.array(y_np)).to(dev)
    recipe = Recipe(**{**PROBE_RECIPE.to_dict(), "epochs": epochs})
    k = dataset.num_classes
    correct = 0
    n_train = 0
    steps = 0
    capped = False
    c, h, w = dataset.input_shape
    repeats = max(1, min(MAX_REPEATS, WORK_IMAGES // len(idx)))
    runs = repeats * N_FOLDS
    for r in range(repeats):
        folds = stratified_folds(y_np, N_FOLDS, seed * 7919 + r)
        for f in range(N_FOLDS):
            te = torch.from_numpy(np.flatnonzero(folds == f)).to(dev)
            tr = torch.from_numpy(np.flatnonzero(folds != f)).to(dev)
            n_train = max(n_train, len(tr))
            net = probe_net.ProbeNet(c, k, width=PROBE_WIDTH, input_hw=(h, w))
            run = r * N_FOLDS + f
            ep, run_steps = probe_plan(len(tr), epochs, max_steps)
            capped = capped or run_steps < probe_plan(len(tr), epochs)[1]
            steps += run_steps
            run_recipe = Recipe(**{**recipe.to_dict(), "epochs": ep})
            cb = None
            if progress is not None:
                progress(run * ep, runs * ep)  # a total from the start, before any epoch

                def cb(e: int, total: int, run: int = run) -> None:
                    progress(run * total + e, runs * total)  # type: ignore[misc]

            _, _, pred = train_tensors(net, x[tr], y[tr], x[te], y[te], run_recipe,
                                       seed=seed * 1009 + run, eval_every_epoch=False,
                                       progress=cb, max_steps=run_steps)
            correct += int((pred == y[te]).sum())
    acc = correct / (repeats * len(idx))
    chance = 1.0 / k
    dcn = float(np.clip((acc - chance) / (1.0 - chance), 0.0, 1.0))
    return DCNResult(dcn=dcn, accuracy=acc, chance=chance, seed=seed, epochs=epochs,
                     probe_version=PROBE_VERSION, device=str(dev),
                     seconds=time.perf_counter() - t0, n_train=n_train, n_test=len(idx),
                     n_folds=N_FOLDS, repeats=repeats, max_samples=max_samples, num_classes=k,
                     fingerprint=dataset.fingerprint, dataset=dataset.name,
                     max_steps=max_steps, steps=steps, capped=capped)


def store_name(dataset: Dataset) -> str:
    """The name a dataset is stored under in the LDE (its spec, shortened when long)."""
    name = dataset.name
    return name if len(name) <= 200 else f"{name[:170]}~{dataset.fingerprint[:16]}"


def probe_settings(seed: int = 0, epochs: int | None = None,
                   max_samples: int | None = None, max_steps: int | None = None
                   ) -> dict[str, Any]:
    """What makes two probe runs on the same data the same run (the cache key beside
    the fingerprint): probe version, seed, epochs, sample cap and step budget
    (defaults: settings)."""
    settings = get_settings()
    return {"probe_version": PROBE_VERSION, "seed": int(seed),
            "epochs": int(epochs or settings.probe_epochs),
            "max_samples": int(max_samples or settings.probe_max_samples),
            "max_steps": int(settings.probe_max_steps if max_steps is None else max_steps)}


def _same_budget(meta: dict[str, Any], max_steps: int) -> bool:
    """Whether a stored probe run (``meta``) trained as a run under ``max_steps`` would:
    the same budget, or no probe of either run shortened by its budget. A run stored
    before the budget existed has no ``max_steps`` (it was uncapped)."""
    have = meta.get("max_steps") or 0
    if have == max_steps:
        return True
    n_train, n_test, epochs = meta.get("n_train"), meta.get("n_test"), meta.get("epochs")
    if not (isinstance(n_train, int) and isinstance(n_test, int) and isinstance(epochs, int)):
        return False
    # the probes' training sets held between n_test - n_train and n_train images (2 folds)
    sizes = range(max(1, n_test - (N_FOLDS - 1) * n_train), n_train + 1)
    most = max(probe_plan(n, epochs)[1] for n in sizes)
    return all(b == 0 or most <= b for b in (have, max_steps))


def stored_result(row: Any, fingerprint: str, want: dict[str, Any]) -> DCNResult | None:
    """The probe result a stored dataset row (``lde.DatasetRow``) holds for data with this
    ``fingerprint`` and these :func:`probe_settings`, else None. The step budget matches
    when the stored run trained the same steps (:func:`_same_budget`)."""
    meta = (row.dcn_meta or {}) if row is not None else {}
    if row is None or row.dcn is None or meta.get("method", "probe") != "probe":
        return None
    if meta.get("fingerprint", row.fingerprint) != fingerprint:
        return None
    if not all(meta.get(k) == v for k, v in want.items() if k != "max_steps"):
        return None
    if "max_steps" in want and not _same_budget(meta, int(want["max_steps"])):
        return None
    return DCNResult.from_meta(row.dcn, meta)


def reuse_or_probe(dataset: Dataset, rows: Sequence[Any], want: dict[str, Any], *,
                   device: str | torch.device | None = None,
                   progress: Progress | None = None) -> DCNResult:
    """The one reuse rule: the probe result stored in the first of ``rows`` (dataset rows)
    that holds one for these data and settings (:func:`stored_result`, ``cached=True``),
    else a new probe with the settings ``want`` (:func:`probe_settings`)."""
    for row in rows:
        hit = stored_result(row, dataset.fingerprint, want)
        if hit is not None:
            return hit
    return compute_dcn(dataset, seed=want["seed"], device=device, epochs=want["epochs"],
                       max_samples=want["max_samples"], progress=progress,
                       max_steps=want["max_steps"])


def characterize(dataset: Dataset, *, stored: Any = None, seed: int = 0,
                 device: str | torch.device | None = None, force: bool = False,
                 epochs: int | None = None, max_samples: int | None = None,
                 progress: Progress | None = None, max_steps: int | None = None
                 ) -> DCNResult:
    """The DCN of ``dataset``, probed once: ``stored`` is the dataset row stored for its
    fingerprint (an ``lde.DatasetRow``, or None); a DCN it holds for the same probe
    version, seed, epochs, sample cap and step budget is returned (``cached=True``)
    instead of probing again. ``force`` re-probes. Nothing is written: storing a new
    result is the application's (``tapas.app.pipeline.Pipeline.characterize``)."""
    want = probe_settings(seed, epochs, max_samples, max_steps)
    rows = [] if stored is None or force else [stored]
    return reuse_or_probe(dataset, rows, want, device=device, progress=progress)
