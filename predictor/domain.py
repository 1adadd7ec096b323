"""What a predictor's training experiments cover, and whether a query lies inside it.

A prediction for a network unlike anything the predictor was trained on (another
input size, ten times the parameters, an op it never saw) or for a dataset far from
every training DCN is an extrapolation: the number may still rank well, but its
interval's stated coverage was calibrated on data like the training set and does not
hold there. :class:`Domain` records the envelope of the training experiments and
names, per query, each way in which it leaves it; intervals widen by
``OUT_OF_DOMAIN_WIDENING`` for such queries (see :mod:`predictor.tap`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tapas.core.arch import Architecture

#: A query DCN this far outside the training DCNs is out of domain.
DCN_MARGIN = 0.05
#: Parameter counts are in domain within this factor of the training range.
SIZE_FACTOR = 2.0
#: Interval half-widths are multiplied by this outside the domain.
OUT_OF_DOMAIN_WIDENING = 2.0


def _size(a: Architecture) -> float:
    return math.log10(1.0 + a.params)


@dataclass
class Domain:
    """The envelope of a set of training experiments (plain JSON when saved)."""

    input_shapes: list[list[int]]
    classes: tuple[int, int]
    dcn: tuple[float, float]
    ops: list[str]
    log_params: tuple[float, float]

    @classmethod
    def of(cls, archs: Sequence[Architecture], dcns: np.ndarray) -> Domain:
        shapes = sorted({tuple(int(s) for s in a.input_shape) for a in archs})
        k = [a.num_classes for a in archs]
        ops = sorted({layer.op for a in archs for layer in a.infos})
        p = [_size(a) for a in archs]
        return cls([list(s) for s in shapes], (min(k), max(k)),
                   (float(np.min(dcns)), float(np.max(dcns))), ops, (min(p), max(p)))

    def to_dict(self) -> dict[str, Any]:
        return {"input_shapes": self.input_shapes, "classes": list(self.classes),
                "dcn": list(self.dcn), "ops": self.ops, "log_params": list(self.log_params)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Domain:
        return cls([list(s) for s in d["input_shapes"]], tuple(d["classes"]),  # type: ignore
                   tuple(d["dcn"]), list(d["ops"]), tuple(d["log_params"]))  # type: ignore

    def check(self, archs: Sequence[Architecture], dcn: np.ndarray
              ) -> tuple[np.ndarray, list[tuple[str, ...]]]:
        """``(in_domain [N], reasons)``: each reason names what lies outside and how."""
        shapes = {tuple(s) for s in self.input_shapes}
        ops = set(self.ops)
        lo_p = self.log_params[0] - math.log10(SIZE_FACTOR)
        hi_p = self.log_params[1] + math.log10(SIZE_FACTOR)
        d_lo, d_hi = self.dcn
        reasons: list[tuple[str, ...]] = []
        for a, d in zip(archs, np.asarray(dcn, np.float64), strict=True):
            why = []
            if tuple(a.input_shape) not in shapes:
                why.append(f"input shape {list(a.input_shape)} not among the training inputs")
            if not self.classes[0] <= a.num_classes <= self.classes[1]:
                why.append(f"{a.num_classes} classes outside the trained "
                           f"{self.classes[0]}-{self.classes[1]}")
            if not d_lo - DCN_MARGIN <= d <= d_hi + DCN_MARGIN:
                why.append(f"DCN {d:.3f} outside the trained {d_lo:.3f}-{d_hi:.3f}")
            new_ops = sorted({layer.op for layer in a.infos} - ops)
            if new_ops:
                why.append(f"op(s) {', '.join(new_ops)} never seen in training")
            s = _size(a)
            if not lo_p <= s <= hi_p:
                why.append(f"{a.params:,} parameters outside the trained range "
                           f"{10 ** self.log_params[0] - 1:,.0f}-"
                           f"{10 ** self.log_params[1] - 1:,.0f}")
            reasons.append(tuple(why))
        return np.array([not r for r in reasons], dtype=bool), reasons
