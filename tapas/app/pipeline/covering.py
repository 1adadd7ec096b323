"""Which predictor answers a request, without training: the one pinned by id, else one in
memory whose DCN range covers the target, else one from the registry
(:func:`~tapas.core.types.covering_first`: trained for the nearest DCN, newest first),
else :class:`~tapas.core.errors.NoPredictor`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from predictor.persist import ModelFileError
from tapas.app.pipeline.model_files import load_predictor
from tapas.app.pipeline.training import TrainingMixin
from tapas.core.arch.cache import sizeof
from tapas.core.types import NoPredictorError, PredictorInfo, covering_first

if TYPE_CHECKING:  # its import loads scikit-learn (1.5 s); a load imports it
    from predictor import TAPRegressor

log = logging.getLogger(__package__)


class CoveringMixin(TrainingMixin):
    """:meth:`select`, the rule the service, the CLI and the scorer share."""

    def _covering_loaded(self, dcn: float,
                         exclude: frozenset[str]) -> tuple[Any, PredictorInfo] | None:
        """A predictor in memory covering ``dcn``, by the registry's rule
        (:func:`~tapas.core.types.covering_first`), never one trained on an excluded dataset."""
        first = covering_first((info for _, info, _ in self._held()
                                if not exclude.intersection(info.datasets)), dcn)
        return self._loaded_model(first[0].id) if first else None  # counts as a use

    def _covering_registered(self, dcn: float,
                             exclude: frozenset[str]) -> tuple[Any, PredictorInfo] | None:
        """A registered predictor covering ``dcn`` (:func:`~tapas.core.types.covering_first`),
        loaded from disk; one whose file is gone or unreadable (e.g. an older format) is skipped."""
        for info in self.store.covering_predictors(dcn):
            if exclude.intersection(info.datasets):
                continue
            path = self._model_file_of(info)  # a shipped one is unpacked when first used
            if path is None or not path.exists():
                continue
            try:
                model = load_predictor(path)
            except (ModelFileError, OSError, ValueError) as e:
                log.warning("skipping predictor %s: %s", info.id, e)
                continue
            info = info.with_(cached=True)
            self._remember(model, info)
            return model, info
        return None

    def _excluded_ids(self, exclude_datasets: Sequence[str]) -> frozenset[str]:
        """Dataset ids of names or ids (looked up once per pipeline)."""
        key = tuple(exclude_datasets)
        ids = self._excluded.get(key)
        if ids is None:
            rows = [(n, self.store.dataset(n)) for n in key]
            ids = frozenset(r.id if r is not None else str(n) for n, r in rows)
            if all(r is not None for _, r in rows):  # an unknown name may be stored later
                self._excluded.put(key, ids, sizeof(key) + sizeof(ids))
        return ids

    def select(self, dcn: float, *, exclude_datasets: Sequence[str] = (),
               train: bool = False, predictor: str | None = None,
               ) -> tuple[TAPRegressor, PredictorInfo]:
        """The predictor that answers a request for ``dcn``: the registered one named by
        ``predictor`` (pinned, whatever was trained since; ``PredictorNotFound`` when unknown),
        else one in memory whose training DCN range covers ``dcn`` (trained for the nearest
        DCN, newest first), else one from the registry, else
        :class:`~tapas.core.errors.NoPredictor` (with ``train=True``: the one :meth:`train`
        gives). Never one trained on an excluded dataset, unless pinned by id.

        Ingesting experiments does not retire a predictor: it answers until a newer one
        is trained.
        """
        if predictor is not None:
            return self.registered(predictor)
        exclude = self._excluded_ids(exclude_datasets) if exclude_datasets else frozenset()
        found = self._covering_loaded(dcn, exclude)
        if found is None:
            with self._train_lock:  # one registry load at a time
                found = (self._covering_loaded(dcn, exclude)
                         or self._covering_registered(dcn, exclude))
        if found is not None:
            return found
        if train:
            return self.train(dcn, exclude_datasets=exclude_datasets)
        raise NoPredictorError(
            f"no trained predictor covers DCN {dcn:.4f}; train one first "
            f"(train_predictor(dcn={dcn:.4f})) or pass train=True", dcn)
