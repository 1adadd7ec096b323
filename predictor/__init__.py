"""Train-less Accuracy Predictor (TAPAS): encoding, stacked-LSTM TAP, baselines, evaluation.

Importing this package is cheap (torch loads when a model is built or used).

>>> from predictor import TAPRegressor, load
"""

from __future__ import annotations

from predictor.ensemble import Prediction
from predictor.history import HistoryTable
from predictor.persist import ModelFileError, read_header
from predictor.tap import NotFittedError, TAPRegressor, load

__all__ = ["HistoryTable", "ModelFileError", "NotFittedError", "Prediction", "TAPRegressor",
           "load", "read_header"]
