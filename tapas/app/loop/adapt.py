"""The loop's scorer: one pinned predictor, corrected by the target's trained networks.

The predictor is trained (or found) once for the target and pinned, so its answers do
not move while the loop writes the target's experiments to the LDE; what the loop
learns from them goes through :class:`predictor.fewshot.FewShotAdapter`: a ridge
correction of the predictor's mean from its own score and the network family's
z-scores on every other dataset of the LDE (:func:`predictor.fewshot.family_zscores`).
The correction shifts each prediction's interval with its mean.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from predictor.fewshot import FewShotAdapter, family_zscores
from tapas.app.search import Pinned
from tapas.app.search.algorithms import Scorer
from tapas.core.spaces import SearchSpace, parse_archs
from tapas.core.types import DatasetInfo, Prediction, Target


class AdaptedScorer:
    """``base`` (a pinned scorer) with its means corrected by a fitted adapter.

    ``history`` is the LDE's :class:`predictor.HistoryTable` without the target (None:
    no family features); :meth:`fit` learns the correction from trained networks,
    before which predictions pass through unchanged.
    """

    def __init__(self, base: Pinned | Scorer, space: SearchSpace, target: Target,
                 history: Any | None = None, reference: Sequence[Any] = ()) -> None:
        self.base, self.space, self.target, self.history = base, space, target, history
        self.adapter: FewShotAdapter | None = None
        self._kw = target.predict_kwargs()
        self._base: dict[str, float] = {}
        self._feats: dict[str, np.ndarray] = {}
        self._reference = [space.query(g, target) for g in reference]

    # ------------------------------------------------------------ the base and features
    def _queries(self, genotypes: Sequence[Any]) -> list[Any]:
        return [self.space.query(g, self.target) for g in genotypes]

    def _features(self, queries: Sequence[Any]) -> np.ndarray:
        keys = [_qkey(q) for q in queries]
        todo = {k: q for k, q in zip(keys, queries, strict=True) if k not in self._feats}
        if todo:
            if self.history is None:
                rows = np.zeros((len(todo), 0))
            else:
                rows = family_zscores(self.history, parse_archs(
                    list(todo.values()), self.target.num_classes, self.target.input_shape))
            for k, r in zip(todo, rows, strict=True):
                self._feats[k] = r
        return np.array([self._feats[k] for k in keys]).reshape(len(keys), -1)

    def _base_means(self, queries: Sequence[Any]) -> np.ndarray:
        keys = [_qkey(q) for q in queries]
        todo = {k: q for k, q in zip(keys, queries, strict=True) if k not in self._base}
        if todo:
            preds = self.base.predict(list(todo.values()), **self._kw)
            for k, p in zip(todo, preds, strict=True):
                self._base[k] = p.mean
        return np.array([self._base[k] for k in keys], np.float64)

    def base_means(self, genotypes: Sequence[Any]) -> np.ndarray:
        """The pinned predictor's mean for each genotype (remembered)."""
        return self._base_means(self._queries(genotypes))

    # ------------------------------------------------------------ learning
    def fit(self, genotypes: Sequence[Any], accuracies: Sequence[float]) -> AdaptedScorer:
        """Learn the correction from trained ``genotypes`` and their true ``accuracies``
        (features scaled over the reference sample and the trained networks)."""
        q = self._queries(genotypes)
        ref = self._reference + q
        self.adapter = FewShotAdapter().fit(
            self._base_means(q), self._features(q), np.asarray(accuracies, np.float64),
            reference=(self._base_means(ref), self._features(ref)))
        return self

    def corrected(self, genotypes: Sequence[Any]) -> np.ndarray:
        """The corrected mean of each genotype (the base mean before :meth:`fit`)."""
        q = self._queries(genotypes)
        base = self._base_means(q)
        return base if self.adapter is None else self.adapter.predict(base, self._features(q))

    # ------------------------------------------------------------ scorer interface
    def predict(self, archs: Sequence[Any], **kw: Any) -> list[Prediction]:
        """The base predictions with corrected means (``archs``: the space's queries); the
        interval moves with its mean."""
        preds = self.base.predict(archs, **kw)
        if self.adapter is None or not preds:
            return preds
        for a, p in zip(archs, preds, strict=True):
            self._base.setdefault(_qkey(a), p.mean)
        base = np.array([p.mean for p in preds], np.float64)
        new = self.adapter.predict(base, self._features(archs))
        return [dataclasses.replace(p, mean=float(m), lower=p.lower + float(m - p.mean),
                                    upper=p.upper + float(m - p.mean))
                for p, m in zip(preds, new, strict=True)]

    def dataset_info(self, ident: str) -> DatasetInfo:
        return self.base.dataset_info(ident)


def _qkey(query: Any) -> str:
    """One key per query (a cell string as it is, a spec or network by its JSON)."""
    if isinstance(query, str):
        return query
    ident = getattr(query, "id", None)  # an Architecture
    return ident if isinstance(ident, str) else json.dumps(query, sort_keys=True)
