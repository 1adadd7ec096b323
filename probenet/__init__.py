"""Dataset characterisation: loading, fingerprints, ProbeNet and the DCN.

Contract (others code against these names)::

    from probenet import load_dataset, split, compute_dcn, characterize, DatasetError

    ds = load_dataset("digits?label_noise=0.3&per_class=50")   # or a .npz path / image folder
    ds.x, ds.y            # float32 N x C x H x W in [0, 1]; int64 labels 0..K-1 (read-only)
    ds.name, ds.num_classes, ds.input_shape, ds.n_samples
    ds.fingerprint        # sha256 of the canonical arrays (same data -> same id)
    train, test = split(ds, test_fraction=0.25, seed=0)       # stratified

    from probenet.train import Recipe, fit_evaluate            # generic seeded training
    res = fit_evaluate(module, train, test, Recipe(epochs=5), seed=0, device="cpu")
    res.final_accuracy, res.curve, res.epochs, res.seconds

    r = compute_dcn(ds, seed=0, device="auto")                 # -> DCNResult
    r.dcn, r.accuracy, r.chance, r.to_dict()
    r = characterize(ds, stored=row)    # reuses the DCN a stored dataset row holds; writes nothing

* :mod:`probenet.datasets` -- sources (``.npz``, image folders, built-ins ``digits``,
  ``mnist5k``, ``mnist1d``, ``cmnist``, ``photos``), variant parameters, :class:`Dataset`,
  :func:`split`.
  MNIST-1D signals (40 samples) are laid out as 1 x 5 x 8 images.
* :mod:`probenet.net` -- :class:`ProbeNet` (``probenet.ProbeNet`` loads it lazily).
* :mod:`probenet.train` -- :class:`Recipe`, :class:`TrainResult`, :func:`fit_evaluate`.
* :mod:`probenet.dcn` -- the DCN's exact definition (chance-normalised, repeated
  2-fold cross-validated probe accuracy in [0, 1]; higher = easier).

Importing this package does not import torch (it is imported when training starts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probenet.datasets import (
    DataLimits,
    Dataset,
    DatasetError,
    DatasetTooLarge,
    load_dataset,
    split,
)
from probenet.dcn import PROBE_VERSION, DCNResult, characterize, compute_dcn
from probenet.fingerprint import fingerprint
from probenet.train import Recipe, TrainResult, fit_evaluate

if TYPE_CHECKING:
    from probenet.net import ProbeNet


def __getattr__(name: str) -> Any:
    if name == "ProbeNet":
        from probenet.net import ProbeNet  # torch (~1.5 s): on first use, not on import

        return ProbeNet
    raise AttributeError(f"module 'probenet' has no attribute {name!r}")


__all__ = ["PROBE_VERSION", "DCNResult", "DataLimits", "Dataset", "DatasetError",
           "DatasetTooLarge", "ProbeNet", "Recipe",
           "TrainResult", "characterize", "compute_dcn", "fingerprint", "fit_evaluate",
           "load_dataset", "split"]
