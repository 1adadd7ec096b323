"""Training the predictor for a DCN selection, or reusing the one already trained on it
(same id, :mod:`tapas.app.pipeline.identity`): one training at a time, saved and
registered with its model file."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import predictor as tap
from lde import Store
from predictor import HistoryTable
from predictor.history import dataset_geometry
from predictor.sampling import balanced_rows
from tapas.app import pipeline as package  # read at call time: MAX_TRAIN_ROWS, __version__
from tapas.app.pipeline.registry import RegistryMixin
from tapas.core.errors import NoExperiments
from tapas.core.types import PredictorInfo

if TYPE_CHECKING:  # its import loads scikit-learn (1.5 s); a training imports it
    from predictor import TAPRegressor

log = logging.getLogger(__package__)


def lde_history(store: Store, exclude_datasets: Sequence[str] = ()) -> Any:
    """What the LDE knows of each network family on every characterised dataset except
    ``exclude_datasets`` (the predictor's history features, :mod:`predictor.history`)."""
    cols = store.family_accuracies(exclude_datasets)
    return HistoryTable(cols["family"], cols["dataset_id"], cols["dcn"], cols["accuracy"],
                        dataset_geometry(cols["input_shape"], cols["n_classes"]))


class TrainingMixin(RegistryMixin):
    """The predictor for a target DCN (:meth:`train`): reused by id, else trained."""

    def train(self, dcn: float, *, exclude_datasets: Sequence[str] = (), force: bool = False,
              pin: bool = False, progress: Callable[[int, int], None] | None = None,
              checkpoint: Callable[[str], None] | None = None,
              ) -> tuple[TAPRegressor, PredictorInfo]:
        """The predictor for a target DCN: reused when one was trained on the same
        experiments (the content of its DCN selection,
        :func:`~tapas.app.pipeline.identity.selection_key`: ingesting or characterising an
        unrelated dataset does not retrain it;
        :func:`~tapas.app.pipeline.identity.predictor_key`), else trained on a
        dataset-balanced sample of at most ``MAX_TRAIN_ROWS`` of them
        (:func:`predictor.sampling.balanced_rows`), with the history of every
        family the LDE holds beyond the excluded datasets (:func:`lde_history`), saved and
        registered.

        ``exclude_datasets`` leave datasets out of its training (e.g. a held-out target);
        ``pin`` keeps it in memory for good; ``progress(epoch, epochs)`` follows a training
        (never called for a reused one). ``checkpoint(phase)`` is called at each phase
        boundary before the epochs (selection, loading the networks, the history,
        encoding) and inside the long loops, so a caller can stop a training there by
        raising (the service's job cancellation); nothing is registered then.
        ``NoExperiments`` when the LDE holds no experiments on characterised datasets.
        """
        def check(phase: str) -> None:
            if checkpoint is not None:
                checkpoint(phase)

        params = self.predictor_params
        store = self.store
        req = (float(dcn), tuple(sorted(exclude_datasets)), self.min_experiments)
        if not force:  # fast path: the same request at the same snapshot, model in memory
            pid = self._resolved.get((store.snapshot_id(), *req))
            hit = self._loaded_model(pid) if pid else None
            if hit is not None:
                if pin:
                    self._remember(*hit, pin=True)
                return hit
        with self._train_lock:  # one training at a time; concurrent callers reuse its result
            check("selecting experiments")
            snapshot = store.snapshot_id()
            exps, tau, pid = self._selection(store, dcn, exclude_datasets, with_curves=True)
            if pid is None:
                raise NoExperiments("the LDE holds no experiments on characterised datasets; "
                                  "ingest some first (tapas ingest)")
            datasets = tuple(exps.datasets())
            dcns = exps.dcn
            info = PredictorInfo(pid, float(dcn), float(tau),
                                 min(float(dcns.min()), float(dcn)),
                                 max(float(dcns.max()), float(dcn)), snapshot, len(exps),
                                 datasets)
            reg = store.predictor(pid)
            if reg is not None and not force:
                hit = self._loaded_model(pid)
                model = hit[0] if hit else None
                path = self._model_file_of(reg) if model is None else None
                if model is None and path is not None and path.exists():
                    try:
                        model = tap.load(path)
                    except tap.ModelFileError as e:  # an older format: train it again
                        log.warning("retraining predictor %s: %s", pid, e)
                if model is not None:
                    info = info.with_(metrics=reg.metrics, artifact=reg.artifact, cached=True,
                                      created=reg.created, provenance=reg.provenance)
                    self._remember(model, info, pin)
                    self._resolve(snapshot, req, pid)
                    return model, info
            check("averaging seeds")
            runs = exps.mean_over_seeds()  # a network's seeds agree on one label
            rows = balanced_rows(runs.dataset_id, package.MAX_TRAIN_ROWS, seed=0)
            ids = runs.arch_id[rows]
            unique = list(dict.fromkeys(ids.tolist()))
            arch_by_id: dict[str, Any] = {}
            for start in range(0, len(unique), 500):
                check(f"loading networks {start:,}/{len(unique):,}")
                arch_by_id.update(store.architectures(unique[start:start + 500]))
            archs = [arch_by_id[a] for a in ids]
            curves = [runs.curves[i] for i in rows] if runs.curves is not None else None
            check("building the history")
            history = lde_history(store, exclude_datasets)
            model = tap.TAPRegressor(**params).fit(
                archs, runs.dcn[rows], runs.accuracy[rows], curves=curves,
                groups=runs.dataset_id[rows], history=history, progress=progress,
                checkpoint=checkpoint)
            metrics = {"fit_seconds": round(getattr(model, "fit_seconds_", 0.0), 3),
                       "n_train": len(exps), "tau": float(tau)}
            directory = self.model_dir
            directory.mkdir(parents=True, exist_ok=True)
            artifact = f"{pid}.tap"  # relative to the model directory: portable
            provenance = {"lde_snapshot": snapshot, "dcn": float(dcn), "tau": float(tau),
                          "datasets": list(datasets), "n_train": len(exps),
                          "tapas_version": package.__version__, "params": params}
            model.save(directory / artifact, provenance=provenance)
            store.register_predictor(pid, float(dcn), float(tau), info.dcn_lo, info.dcn_hi,
                                     snapshot, len(exps), metrics, artifact, provenance)
            info = info.with_(metrics=metrics, artifact=artifact, cached=False,
                              provenance=provenance)
            self._remember(model, info.with_(cached=True), pin)
            self._resolve(snapshot, req, pid)
            return model, info
