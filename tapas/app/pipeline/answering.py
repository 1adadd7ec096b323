"""Answering predict requests: a request's target resolved and its networks parsed
(:meth:`AnsweringMixin.query`), each request's predictor chosen, the requests one predictor
answers scored in one pass, and the model's output made into predictions
(:func:`to_predictions`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from tapas.app.pipeline.covering import CoveringMixin
from tapas.app.pipeline.datasets import DatasetsMixin
from tapas.core.spaces import parse_archs
from tapas.core.types import Answer, Prediction, PredictorInfo, Query


def to_predictions(archs: Sequence[Any], out: Any, predictor: str, dcn: float,
                   members: bool = False) -> tuple[Prediction, ...]:
    """The one conversion of the model's output for ``archs`` (a
    ``predictor.EnsembleOutput``) into a :class:`~tapas.core.types.Prediction` per network, by
    ``predictor`` (its id) for ``dcn``; each member's prediction only when asked for."""
    cov = float(out.coverage)
    mem: list[Any] = ([tuple(col) for col in np.asarray(out.members, float).T.tolist()]
                      if members and out.members is not None else [None] * len(archs))
    inside, why = out.domain_flags()
    cols = (np.asarray(v, float).tolist() for v in (out.mean, out.spread, out.lower, out.upper))
    return tuple(Prediction(a.id, m, s, lo, hi, predictor, dcn, cov, mb, ok, tuple(r))
                 for a, m, s, lo, hi, mb, ok, r in zip(archs, *cols, mem, inside, why,
                                                       strict=True))


class AnsweringMixin(CoveringMixin, DatasetsMixin):
    """:meth:`answer_many`, the one call that predicts, and its conveniences."""

    def query(self, archs: Sequence[Any], *, dcn: float | None = None,
              dataset: str | None = None, num_classes: int | None = None,
              input_shape: Sequence[int] | None = None, exclude_datasets: Sequence[str] = (),
              train: bool = False, members: bool = False,
              predictor: str | None = None) -> Query:
        """A predict request, its target resolved (:meth:`target`) and its architectures
        (cell specs, IR dicts/JSON text or ``Architecture`` objects) parsed for it."""
        target = self.target(dcn=dcn, dataset=dataset, num_classes=num_classes,
                             input_shape=input_shape)
        parsed = parse_archs(archs, target.num_classes, target.input_shape)
        return Query(tuple(parsed), target.value, predictor, members, tuple(exclude_datasets),
                     train)

    def answer_many(self, queries: Sequence[Query]) -> list[Answer | Exception]:
        """The one application call that predicts: each query's predictor chosen
        (:meth:`select`), the queries answered by the same predictor scored in one forward
        pass (a batch of single-network requests costs about what one request does; the
        service's batching thread merges concurrent requests here), and the model's
        output converted into one :class:`~tapas.core.types.Answer` per query
        (:func:`to_predictions`). A query that fails gets its exception in its place; the
        others are answered."""
        t0 = time.perf_counter()
        out: list[Answer | Exception] = [None] * len(queries)  # type: ignore[list-item]
        groups: dict[int, tuple[Any, PredictorInfo, list[int]]] = {}
        for i, q in enumerate(queries):
            try:
                model, info = self.select(q.dcn, exclude_datasets=q.exclude_datasets,
                                          train=q.train, predictor=q.predictor)
            except Exception as e:  # noqa: BLE001 - returned to its own request
                out[i] = e
                continue
            groups.setdefault(id(model), (model, info, []))[2].append(i)
        for model, info, idx in groups.values():
            archs = [a for i in idx for a in queries[i].archs]
            dcns = np.concatenate([np.full(len(queries[i].archs), float(queries[i].dcn))
                                   for i in idx])
            try:
                p = model.predict_interval(archs, dcns)
            except Exception as e:  # noqa: BLE001 - e.g. an unscorable network in one request
                if len(idx) == 1:
                    out[idx[0]] = e
                else:  # find whose: score each request alone
                    for i in idx:
                        out[i] = self.answer_many([queries[i]])[0]
                continue
            start = 0
            for i in idx:
                q = queries[i]
                part = p.take(start, start + len(q.archs))
                start += len(q.archs)
                out[i] = Answer(info, q.dcn, float(part.coverage),
                                to_predictions(q.archs, part, info.id, q.dcn, q.members),
                                latency_ms=round(1e3 * (time.perf_counter() - t0), 3))
        return out

    def answer(self, query: Query) -> Answer:
        """:meth:`answer_many` for one query, raising its exception."""
        got = self.answer_many([query])[0]
        if isinstance(got, Exception):
            raise got
        return got

    def predict(self, archs: Sequence[Any], *, dcn: float | None = None,
                dataset: str | None = None, num_classes: int | None = None,
                input_shape: Sequence[int] | None = None,
                exclude_datasets: Sequence[str] = (), train: bool = False,
                members: bool = False, predictor: str | None = None) -> list[Prediction]:
        """Predicted accuracy of each architecture (:meth:`query`, then :meth:`answer`), the
        same answer as :meth:`tapas.app.client.Client.predict`.

        ``members=True`` adds each ensemble member's prediction; ``predictor`` pins a
        registered predictor by id (``PredictorNotFound`` when unknown).
        """
        q = self.query(archs, dcn=dcn, dataset=dataset, num_classes=num_classes,
                       input_shape=input_shape, exclude_datasets=exclude_datasets,
                       train=train, members=members, predictor=predictor)
        return list(self.answer(q).predictions) if q.archs else []
