"""The application layer: dataset -> DCN -> LDE filter -> trained TAP -> predictions.

:class:`Pipeline` is the one object the service, the CLI and the in-process scorer
call. It owns the open LDE (``lde.Store``) and the model directory, and it alone
decides which predictor answers a request:

* :meth:`Pipeline.train` trains a predictor for a target DCN, or reuses one: a
  predictor is identified by the content of the experiments its DCN filter selects
  (:func:`selection_key`), its hyper-parameters and the datasets it must leave out
  (:func:`predictor_key`), so a second request whose filter selects the same
  experiments gets the same model back, whatever unrelated data the LDE gained.
* :meth:`Pipeline.select` answers a prediction request without training: the
  registered predictor the request names by id (pinned: the same answers whatever is
  trained later), else a predictor held in memory whose DCN range covers the target
  (trained for the nearest DCN, newest first), else one from the registry, else
  :class:`~tapas.core.errors.NoPredictor` (train one first, or pass ``train=True``).

A new database starts with the predictors shipped with tapas registered
(:mod:`lde.shipped_predictors`, built by ``python -m tapas.app.release`` on the same shipped
data): :meth:`Pipeline.train` finds them by the same key, so on a fresh install the
first predictor for a DCN of the release grid is a lookup, and :meth:`Pipeline.select`
finds one covering any DCN. Their files are unpacked into the model directory when first
used.

The registry stores each model file's name relative to the model directory
(:func:`model_path`), so a database and its model folder move together; predictors are
listed, shown, exported, imported and deleted through the pipeline too. A predictor id
(:func:`~tapas.core.types.check_predictor_id`) and a model file name are names, never paths:
every id from a user or a file is checked before it is looked up or names a file.

Everything heavy (torch, duckdb) is imported when first used.

One module per job; each holds one part of :class:`Pipeline`:

=================  ==========================================================================
``base``           the shared state (settings, the LDE, the predictors in memory); opening,
                   seeding and closing the LDE
``identity``       a predictor's id from its DCN selection; the shipped predictors
                   registered by it
``datasets``       datasets and targets; a dataset's DCN computed, reused and replaced
``ingest``         experiments in (records, files, export folders) and out (export)
``model_files``    where a model file lies, reading and verifying one
``memory``         the predictors held in memory and the answered train requests
``registry``       registered predictors: list, load by id, export, import, delete
``training``       training (or reusing) the predictor for a DCN selection
``covering``       which predictor answers a request (:meth:`Pipeline.select`)
``answering``      predict requests answered (:meth:`Pipeline.answer_many`)
=================  ==========================================================================

Why mixins rather than one object per job: the jobs share one state (the store, the model
directory, the predictors in memory, one training lock), and each call crosses several of
them (a prediction selects, which may load from the registry or train, which remembers).
As parts of one class they read that state directly, the calls stay where callers and
tests look for them (``Pipeline.train``, ``Pipeline._open_writable``), and no forwarding
layer repeats every signature. Each part subclasses the parts it calls, so from any
``self.`` call an editor finds its definition; :class:`Pipeline` lists them all.
"""

from __future__ import annotations

from lde.errors import DatasetConflict, LDEError
from lde.selection import MIN_DATASETS, MIN_EXPERIMENTS, TAU
from predictor.persist import ModelFileError
from predictor.sampling import MAX_TRAIN_ROWS  # training reads it here: setting it here counts
from probenet.datasets import BUILTINS as BUILTIN_DATASETS
from probenet.datasets import DataLimits, DatasetError, DatasetTooLarge
from tapas import __version__ as __version__  # the parts read it here, as MAX_TRAIN_ROWS
from tapas.app.pipeline.answering import AnsweringMixin, to_predictions
from tapas.app.pipeline.base import PipelineBase
from tapas.app.pipeline.base import apply_cache_setting as apply_cache_setting
from tapas.app.pipeline.covering import CoveringMixin
from tapas.app.pipeline.datasets import DatasetsMixin, load_dataset
from tapas.app.pipeline.identity import DEFAULT_PREDICTOR_PARAMS as DEFAULT_PREDICTOR_PARAMS
from tapas.app.pipeline.identity import predictor_key, selection_key
from tapas.app.pipeline.ingest import IngestMixin
from tapas.app.pipeline.memory import MODEL_BYTES_PER_FILE_BYTE as MODEL_BYTES_PER_FILE_BYTE
from tapas.app.pipeline.memory import MemoryMixin
from tapas.app.pipeline.model_files import (
    is_shipped,
    load_predictor,
    model_path,
    verify_predictor,
)
from tapas.app.pipeline.registry import PredictorExistsError, RegistryMixin
from tapas.app.pipeline.training import TrainingMixin, lde_history
from tapas.core.types import NoPredictorError, PredictorIdError


class Pipeline(AnsweringMixin, CoveringMixin, TrainingMixin, RegistryMixin, MemoryMixin,
               DatasetsMixin, IngestMixin, PipelineBase):
    """The application: an LDE, a model directory and the predictors trained from them.

    Parameters
    ----------
    database : LDE file (default: the settings' database). A database created by
        opening it (not ``read_only``) is seeded with the shipped data (unless ``seed``
        is False): the starter experiments and NAS-Bench-201 results
        (:func:`lde.default_data.seed_default`).
    store : an already open ``lde.Store`` to use instead (not closed by :meth:`close`).
    model_dir : where new model files go (default: the settings' model directory).
    read_only : open the database read-only (no training, no ingest).
    predictor_params : hyper-parameters of the predictors trained here.
    min_experiments : the DCN filter widens tau until this many experiments remain.
    max_loaded : deprecated and ignored: the predictors held in memory share the process's
        one cache budget (``TAPAS_CACHE_MB``, :mod:`tapas.core.arch.cache`) by their size.
    seed : seed a newly created database with the shipped data.
    shipped : register the predictors shipped with tapas in a newly seeded database (those
        whose id this pipeline computes itself there,
        :func:`~tapas.app.pipeline.identity.register_shipped`), so the first :meth:`train`
        for a DCN of the shipped grid is a lookup. The release command that builds them
        turns it off.
    upgrade : with ``read_only``, a database that needs one write first (an older schema
        to migrate, a first seeding cut short) is opened for writing once to finish it,
        then read; a reader never sees half-seeded data.

    Thread-safe: one training runs at a time; concurrent callers reuse its result.
    """


__all__ = ["BUILTIN_DATASETS", "MAX_TRAIN_ROWS", "DataLimits", "DatasetConflict", "DatasetError",
           "DatasetTooLarge", "LDEError", "MIN_DATASETS", "MIN_EXPERIMENTS", "ModelFileError",
           "NoPredictorError", "Pipeline", "PredictorExistsError", "PredictorIdError", "TAU",
           "is_shipped", "lde_history", "load_dataset", "load_predictor", "model_path",
           "predictor_key", "selection_key", "to_predictions", "verify_predictor"]
