"""In-process scorer: the client's ``predict`` interface, answered by the pipeline.

For search loops that run where the database and models are (no HTTP, no JSON):
the same call as :meth:`tapas.app.client.Client.predict`, returning the same
:class:`~tapas.core.types.Prediction` objects, so a loop written against one runs
against the other. Both answer a target no predictor covers yet the same way: a
:class:`~tapas.core.errors.NoPredictor` (HTTP: 409 ``no_predictor``), unless the call
passes ``train=True`` or :meth:`LocalScorer.train_predictor` ran first. Torch and
duckdb are imported when the first prediction is made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tapas.app.pipeline import Pipeline
from tapas.core.spaces import parse_archs
from tapas.core.types import DatasetInfo, Prediction, PredictorInfo

if TYPE_CHECKING:
    from lde import Store


class LocalScorer:
    """Score architectures with the predictors of a :class:`~tapas.app.pipeline.Pipeline`.

    Parameters
    ----------
    store : an open ``lde.Store`` to score from (not closed by :meth:`close`).
    db_path : database file when neither ``store`` nor ``pipeline`` is given (default:
        the settings' database, opened for writing since a newly trained predictor is
        registered).
    pipeline : an existing pipeline to score through (shares its loaded predictors).
    exclude_datasets : datasets the predictor must not train on (e.g. the search's
        target dataset, to measure search on an unseen dataset).
    predictor_params : hyper-parameters of a predictor trained here.
    min_experiments : the DCN filter widens tau until this many experiments remain.
    model_dir : where new model files go (default: the settings' model directory).
    """

    def __init__(self, store: Store | None = None, *, db_path: str | Path | None = None,
                 pipeline: Pipeline | None = None, exclude_datasets: Sequence[str] = (),
                 predictor_params: dict[str, Any] | None = None,
                 min_experiments: int | None = None,
                 model_dir: str | Path | None = None) -> None:
        if pipeline is None:
            pipeline = Pipeline(db_path, store=store, model_dir=model_dir,
                                predictor_params=predictor_params,
                                min_experiments=min_experiments)
            self._own = True
        else:
            self._own = False
        self.pipeline = pipeline
        self.exclude_datasets = tuple(exclude_datasets)

    # -------------------------------------------------------------- plumbing
    @property
    def store(self) -> Store:
        return self.pipeline.store

    def close(self) -> None:
        if self._own:
            self.pipeline.close()

    def __enter__(self) -> LocalScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- scorer interface
    def dataset_info(self, ident: str) -> DatasetInfo:
        """A stored dataset by id or name (``DatasetNotFound`` when unknown)."""
        return self.pipeline.dataset_info(ident)

    def train_predictor(self, *, dcn: float | None = None, dataset: str | None = None,
                        force: bool = False,
                        progress: Callable[[int, int], None] | None = None) -> PredictorInfo:
        """Train (or reuse) the predictor for a DCN or a dataset's DCN, ahead of a search;
        later predictions for that target use it. ``progress(epoch, epochs)`` follows a
        training."""
        target = self.pipeline.target(dcn=dcn, dataset=dataset)
        _, info = self.pipeline.train(target.value, exclude_datasets=self.exclude_datasets,
                                      force=force, progress=progress)
        return info

    def predict(self, archs: Sequence[Any], *, dcn: float | None = None,
                dataset: str | None = None, num_classes: int | None = None,
                input_shape: Sequence[int] | None = None,
                train: bool = False, members: bool = False,
                predictor: str | None = None) -> list[Prediction]:
        """Predicted accuracy of each architecture (same call and answer as the client's).

        No predictor covers the target yet: :class:`~tapas.core.errors.NoPredictor`, or with
        ``train=True`` the pipeline trains one first. ``members=True`` adds each ensemble
        member's prediction; ``predictor`` pins a registered predictor by id
        (``PredictorNotFound`` when unknown).
        """
        return self.pipeline.predict(archs, dcn=dcn, dataset=dataset, num_classes=num_classes,
                                     input_shape=input_shape,
                                     exclude_datasets=self.exclude_datasets, train=train,
                                     members=members, predictor=predictor)


__all__ = ["LocalScorer", "parse_archs"]
