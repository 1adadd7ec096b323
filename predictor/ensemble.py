"""Ensemble spread and split-conformal prediction intervals.

The ensemble's K members give a mean and a spread (their standard deviation).
The spread alone is not calibrated, so a held-out *calibration* split (rows the
members never trained on) turns it into an interval with a stated coverage:
normalised non-conformity scores ``|y - mean| / (spread + s0)`` and their
finite-sample quantile ``q`` give ``mean +- q * (spread + s0)``.

``s0`` sets how much of the half-width follows the spread: at the median
calibration spread (its floor) intervals scale with member disagreement; far
above it they approach a constant ``+-`` the error quantile. Which is right depends
on what the errors are: within one dataset they follow the spread, but for a
dataset the predictor never saw they are mostly the *level* error (the whole
dataset's accuracy guessed from its DCN), which the spread knows nothing of; a
spread-scaled interval then spans [0, 1] wherever members happen to disagree.
So ``s0`` is chosen on the calibration rows, from a geometric grid: the largest one
whose mean interval (clipped to [0, 1]) at the stated coverage is within
``WIDTH_TOLERANCE`` of the narrowest. The preference for large ``s0`` is for the
queries unlike the calibration rows: a network the LDE's history knows nothing of can
have a spread twenty times the calibration median, and a spread-scaled interval
multiplies that by the quantile of the calibration rows (an interval of 0.1-1.0 for a
network predicted at 0.96, where a constant half-width gives +-0.31 at the same mean
width on the calibration rows). Spread-scaling is kept where it narrows the intervals
materially, i.e. where the errors follow the spread.
Choosing one value of a small grid on the same rows costs little of the
guarantee: under exchangeability of calibration and test rows the interval
covers the truth with probability about >= coverage; on a dataset the predictor
never saw, exchangeability does not hold and the benchmark measures what is
achieved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EnsembleOutput:
    """The model's output for a batch of networks, as arrays: predicted accuracy, ensemble
    spread and conformal interval. The application turns it into one
    :class:`tapas.core.types.Prediction` per network (:func:`tapas.app.pipeline.to_predictions`)."""

    mean: np.ndarray
    spread: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    coverage: float
    in_domain: np.ndarray | None = None
    """Per network: whether it lies inside what the training experiments cover."""
    reasons: tuple[tuple[str, ...], ...] = ()
    """Per network: why not (empty when in domain); see :mod:`predictor.domain`."""
    members: np.ndarray | None = None
    """Each ensemble member's prediction, shape (K, N), for acquisitions (e.g. Thompson
    sampling) that need more than the mean and spread."""

    def domain_flags(self) -> tuple[list[bool], list[tuple[str, ...]]]:
        """Per network ``(in_domain, reasons)`` as plain values; a prediction without
        domain information (e.g. from a model saved before it was recorded) is in domain."""
        n = len(self.mean)
        inside = [True] * n if self.in_domain is None else [bool(v) for v in self.in_domain]
        return inside, list(self.reasons) if self.reasons else [()] * n

    def take(self, start: int, stop: int) -> EnsembleOutput:
        """The networks ``start:stop`` of this batch (a scoring batch that merged several
        requests is split back into one answer each)."""
        sl = slice(start, stop)
        return EnsembleOutput(
            mean=self.mean[sl], spread=self.spread[sl], lower=self.lower[sl],
            upper=self.upper[sl], coverage=self.coverage,
            in_domain=None if self.in_domain is None else self.in_domain[sl],
            reasons=self.reasons[sl] if self.reasons else (),
            members=None if self.members is None else self.members[:, sl])


def conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """The ``ceil((n+1) coverage)``-th smallest score; ``inf`` when n is too small."""
    n = len(scores)
    k = math.ceil((n + 1) * coverage)
    if n == 0 or k > n:
        return math.inf
    return float(np.sort(scores)[k - 1])


#: ``s0`` candidates, as multiples of the median calibration spread: 1x (intervals
#: follow the spread) to 1024x (nearly constant half-widths).
S0_GRID = 2.0 ** np.arange(11)
#: How much wider (relative mean width on the calibration rows) a larger ``s0`` may be
#: and still be preferred to a smaller one.
WIDTH_TOLERANCE = 0.05


def calibrate(y: np.ndarray, mean: np.ndarray, spread: np.ndarray,
              coverage: float) -> tuple[float, float]:
    """``(q, s0)`` from a calibration split (see the module docstring)."""
    floor = max(float(np.median(spread)) if len(spread) else 0.0, 1e-4)
    err = np.abs(y - mean)
    tried = []
    for s0 in floor * S0_GRID:
        q = conformal_quantile(err / (spread + s0), coverage)
        if not math.isfinite(q):
            return math.inf, floor
        half = q * (spread + s0)
        width = float(np.mean(np.minimum(mean + half, 1.0) - np.maximum(mean - half, 0.0)))
        tried.append((width, q, float(s0)))
    narrowest = min(w for w, _, _ in tried)
    _, q, s0 = max((t for t in tried if t[0] <= narrowest * (1.0 + WIDTH_TOLERANCE)),
                   key=lambda t: t[2])
    return q, s0


def interval(mean: np.ndarray, spread: np.ndarray, q: float, s0: float,
             coverage: float, widen: np.ndarray | float = 1.0,
             members: np.ndarray | None = None) -> EnsembleOutput:
    """Build the :class:`EnsembleOutput`; half-widths are multiplied by ``widen`` (per
    network: wider outside the training domain); bounds are clipped to [0, 1]."""
    half = q * (spread + s0) * widen if math.isfinite(q) else np.full_like(mean, np.inf)
    return EnsembleOutput(mean=mean, spread=spread, lower=np.clip(mean - half, 0.0, 1.0),
                          upper=np.clip(mean + half, 0.0, 1.0), coverage=coverage,
                          members=members)
