"""Architecture search that calls the predictor instead of training.

Random search, regularized evolution and BANANAS-style Thompson sampling over the
NAS-Bench-201 cell space, the chain-CNN space and the reduced NAS-Bench-201 space of
the starter data, driven by any scorer: :class:`tapas.client.Client` (HTTP) or
:class:`tapas.scorer.LocalScorer` (in process)::

    from tapas.client import Client
    from tapas.search import regularized_evolution

    with Client("http://127.0.0.1:8000") as c:
        res = regularized_evolution(c, "nb201", dataset="digits", budget=500, seed=0)
    print(res.chosen.label, res.chosen.mean, res.chosen.lower, res.chosen.upper)

Pure Python (no torch, no duckdb): importing it is as cheap as the client.
"""

from __future__ import annotations

from tapas.arch import cell_ops, cell_string
from tapas.search.algorithms import (
    OBJECTIVES,
    STRATEGIES,
    UCB_KAPPA,
    Candidate,
    Pinned,
    Scorer,
    SearchResult,
    check_space,
    objective_value,
    random_search,
    regularized_evolution,
    thompson_search,
)
from tapas.search.spaces import SPACE_NAMES, NB201CellSpace, SearchSpace, get_search_space
from tapas.types import Target, resolve_target

__all__ = ["OBJECTIVES", "SPACE_NAMES", "STRATEGIES", "UCB_KAPPA", "Candidate", "NB201CellSpace",
           "Pinned", "Scorer", "SearchResult", "SearchSpace", "Target", "cell_ops", "cell_string",
           "check_space", "get_search_space", "objective_value", "random_search",
           "regularized_evolution", "resolve_target", "thompson_search"]
