"""Train-less Accuracy Predictor (TAPAS): encoding, stacked-LSTM TAP, baselines, evaluation.

Importing this package is cheap: torch loads when a model is built or used, and the
estimator (with scikit-learn) when first named, so a command that only reads the registry
(``tapas predictor list``) starts in a fraction of a second.

>>> from predictor import TAPRegressor, load
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from predictor.ensemble import EnsembleOutput
from predictor.history import HistoryTable
from predictor.persist import ModelFileError, read_header

if TYPE_CHECKING:
    from predictor.tap import NotFittedError, TAPRegressor, load

_LAZY = {"NotFittedError", "TAPRegressor", "load"}


def __getattr__(name: str) -> Any:
    """``TAPRegressor``, ``NotFittedError`` and ``load`` import :mod:`predictor.tap` (and
    scikit-learn, about a second) on first use."""
    if name in _LAZY:
        from predictor import tap

        return getattr(tap, name)
    raise AttributeError(f"module 'predictor' has no attribute {name!r}")

__all__ = ["EnsembleOutput", "HistoryTable", "ModelFileError", "NotFittedError", "TAPRegressor",
           "load", "read_header"]
