"""Architecture search that calls the predictor instead of training.

Random search, regularized evolution and BANANAS-style Thompson sampling over any
space of :data:`tapas.spaces.SPACES` (or a custom :class:`SearchSpace`), driven by any
scorer: :class:`tapas.client.Client` (HTTP) or
:class:`tapas.scorer.LocalScorer` (in process)::

    from tapas.client import Client
    from tapas.search import regularized_evolution

    with Client("http://127.0.0.1:8000") as c:
        res = regularized_evolution(c, "nb201", dataset="digits", budget=500, seed=0)
    print(res.chosen.label, res.chosen.mean, res.chosen.lower, res.chosen.upper)

Pure Python (no torch, no duckdb): importing it is as cheap as the client.
"""

from __future__ import annotations

import warnings

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
from tapas.spaces import SPACES, SearchSpace, Space, get_space
from tapas.types import Target, resolve_target


def get_search_space(name: str) -> Space:
    """Deprecated: the registry's :func:`tapas.spaces.get_space` (one registry now)."""
    warnings.warn("tapas.search.get_search_space is deprecated; use tapas.spaces.get_space",
                  DeprecationWarning, stacklevel=2)
    return get_space(name)


__all__ = ["OBJECTIVES", "SPACES", "STRATEGIES", "UCB_KAPPA", "Candidate", "Pinned", "Scorer",
           "SearchResult", "SearchSpace", "Space", "Target", "cell_ops", "cell_string",
           "check_space", "get_search_space", "get_space", "objective_value", "random_search",
           "regularized_evolution", "resolve_target", "thompson_search"]
