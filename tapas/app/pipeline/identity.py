"""Which predictor a request gets: the DCN selection names it.

A predictor's id is the content of the experiments its DCN filter selects
(:func:`selection_key`), its hyper-parameters, the datasets it had to leave out and the
code version (:func:`predictor_key`): a second request whose filter selects the same
experiments gets the same model back, whatever unrelated data the LDE gained, and a change
of data, defaults or version trains afresh. :func:`selection` applies that rule; the
predictors shipped with tapas are registered by it (:func:`register_shipped`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

import predictor as tap
from lde import Store
from lde.errors import LDEError
from lde.selection import MIN_DATASETS, TAU
from lde.shipped_predictors import entries
from tapas.app import pipeline as package  # read at call time: its __version__ is the one set

log = logging.getLogger(__package__)

#: Hyper-parameters of the predictors the pipeline trains (the estimator's defaults
#: unless overridden per pipeline).
DEFAULT_PREDICTOR_PARAMS: dict[str, Any] = {}


def predictor_key(selection: str, datasets: Sequence[str], params: dict[str, Any],
                  excluded: Sequence[str] = ()) -> str:
    """The identity of a predictor: the content of its DCN selection
    (:func:`selection_key`), the datasets it selected, its hyper-parameters, the datasets
    its history had to leave out (a predictor that has seen a dataset never answers a
    request that excludes it) and the code version. The one place this rule lives."""
    params = {k: v for k, v in params.items() if k != "device"}  # where it runs, not what
    key = json.dumps({"selection": selection, "datasets": sorted(datasets), "params": params,
                      "excluded": sorted(excluded), "version": package.__version__},
                     sort_keys=True, default=str)
    return "p_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def selection_key(exps: Any) -> str:
    """Content hash of a DCN selection (which experiments, their accuracies and DCNs): a
    predictor is reused while its selection is unchanged, whatever else the LDE gains."""
    order = np.lexsort((exps.arch_id.astype(str), exps.dataset_id.astype(str)))
    h = hashlib.sha256()
    for col in (exps.dataset_id[order], exps.arch_id[order]):
        h.update("\x1f".join(col.astype(str).tolist()).encode())
    h.update(np.round(exps.accuracy[order], 9).tobytes())
    h.update(np.round(exps.dcn[order], 9).tobytes())
    return h.hexdigest()[:16]


def selection(store: Store, dcn: float, min_experiments: int, params: dict[str, Any],
              exclude_datasets: Sequence[str] = (), with_curves: bool = False,
              ) -> tuple[Any, float, str | None]:
    """The experiments the DCN filter selects for ``dcn``, the tau it used and the id of
    the predictor trained on them with ``params`` (:func:`predictor_key`; None when none is
    selected): the one rule training and :func:`register_shipped` share."""
    exps, tau = store.filter_adaptive(dcn, min_experiments=min_experiments,
                                      min_datasets=MIN_DATASETS, tau=TAU,
                                      exclude_datasets=exclude_datasets,
                                      with_curves=with_curves)
    if len(exps) == 0:
        return exps, tau, None
    # every hyper-parameter, defaults included: a release that changes a default
    # trains afresh instead of reusing a model built under the old one
    pid = predictor_key(selection_key(exps), tuple(exps.datasets()),
                        tap.TAPRegressor(**params).get_params(), exclude_datasets)
    return exps, tau, pid


def register_shipped(store: Store, min_experiments: int, params: dict[str, Any]) -> int:
    """Register the predictors shipped with tapas (:mod:`lde.shipped_predictors`) whose
    id is the one training computes here for their DCN (:func:`selection`): on a database
    seeded with the shipped data alone, under this version and these hyper-parameters,
    that is all of them; after a change of version, data or hyper-parameters none match
    and none is registered (a stale one is never used). Returns how many."""
    n = 0
    for e in entries():
        exps, tau, pid = selection(store, e["dcn"], min_experiments, params)
        if pid != e["id"]:
            log.info("shipped predictor %s is not the one this database and version "
                     "train for DCN %.4f (%s): not registered; python -m tapas.app.release "
                     "rebuilds them", e["id"], e["dcn"], pid)
            continue
        try:
            store.register_predictor(pid, e["dcn"], float(tau), e["dcn_lo"], e["dcn_hi"],
                                     e["snapshot"], len(exps), e["metrics"], e["file"],
                                     {**e["provenance"], "origin": "shipped"})
        except LDEError as err:
            log.warning("shipped predictor %s not registered: %s", pid, err)
            continue
        n += 1
    return n
