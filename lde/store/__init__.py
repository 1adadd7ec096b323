"""The LDE store: one DuckDB file holding datasets, architectures, experiments and predictors.

:class:`Store` is one object (callers write ``store.upsert_dataset(...)``,
``store.filter_adaptive(...)``), assembled from one class per job, each in its module:

* :mod:`~lde.store.connection` -- opening and locking the file, the schema check,
  transactions, DuckDB's errors as :mod:`lde.errors`;
* :mod:`~lde.store.datasets` -- the identity rule and DCN of a dataset;
* :mod:`~lde.store.architectures` -- architecture rows, networks rebuilt by id;
* :mod:`~lde.store.experiments` -- validated records and Arrow batches;
* :mod:`~lde.store.filters` -- the DCN filters and their in-memory columns;
* :mod:`~lde.store.predictors` -- the predictor registry's rows;
* :mod:`~lde.store.summary` -- the snapshot id, counts and statistics;
* :mod:`~lde.store.transfer` -- Parquet export and import.

They are mixins over one :class:`~lde.store.connection.Connection` rather than parts the
store holds: every job shares the one connection, lock and write generation, and the
flat method set stays the public API with no forwarding methods. Each class inherits
only the parts it calls (experiments stand on datasets and architectures, the filters
on datasets, the transfer on experiments and the summary), so a module's imports say
what it depends on.
"""

from __future__ import annotations

from lde.archs import family_of
from lde.rows import (
    SPLITS,
    DatasetRow,
    ExperimentRecord,
    ExperimentSet,
    IngestReport,
    Progress,
    check_accuracy,
    dataset_id_for,
)
from lde.store.datasets import identity_differences
from lde.store.filters import CACHE_MAX_ROWS, Filters
from lde.store.predictors import Predictors
from lde.store.transfer import Transfer
from lde.tables import experiment_table
from tapas.core.types import PredictorInfo


class Store(Transfer, Filters, Predictors):
    """An open LDE. ``Store(path=None, read_only=False, cache_rows=CACHE_MAX_ROWS)``; use as
    a context manager.

    Raises :class:`~lde.errors.LockedError` when another process holds the file.
    One ``Store`` may be shared by threads (calls are serialised). DCN filters answer
    from an in-memory copy of the experiment columns when the table has at most
    ``cache_rows`` rows (0: always query DuckDB).
    """


__all__ = ["CACHE_MAX_ROWS", "SPLITS", "DatasetRow", "ExperimentRecord", "ExperimentSet",
           "IngestReport", "PredictorInfo", "Progress", "Store", "check_accuracy",
           "dataset_id_for", "experiment_table", "family_of", "identity_differences"]
