"""Train-less Accuracy Predictor (TAPAS): encoding, stacked-LSTM TAP, baselines, evaluation.

Importing this package is cheap (torch loads when a model is built or used).

>>> from predictor import TAPRegressor, load
"""

from __future__ import annotations

from predictor.ensemble import Prediction
from predictor.persist import ModelFileError, load, read_header
from predictor.tap import NotFittedError, TAPRegressor

__all__ = ["ModelFileError", "NotFittedError", "Prediction", "TAPRegressor", "load",
           "read_header"]
