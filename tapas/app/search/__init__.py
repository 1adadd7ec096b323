"""Architecture search that calls the predictor instead of training.

Random search, regularized evolution and BANANAS-style Thompson sampling over any
space of :data:`tapas.core.spaces.SPACES` (or a custom :class:`SearchSpace`), driven by any
scorer: :class:`tapas.app.client.Client` (HTTP) or
:class:`tapas.app.scorer.LocalScorer` (in process)::

    from tapas.app.client import Client
    from tapas.app.search import regularized_evolution

    with Client("http://127.0.0.1:8000") as c:
        res = regularized_evolution(c, "nb201", dataset="digits", budget=500, seed=0)
    print(res.chosen.label, res.chosen.mean, res.chosen.lower, res.chosen.upper)

Pure Python (no torch, no duckdb): importing it is as cheap as the client.
"""

from __future__ import annotations

import warnings

from tapas.app.search.algorithms import (
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
from tapas.core.arch import cell_ops, cell_string
from tapas.core.spaces import SPACES, SearchSpace, Space, get_space
from tapas.core.types import Target, resolve_target


def get_search_space(name: str) -> Space:
    """Deprecated: the registry's :func:`tapas.core.spaces.get_space` (one registry now)."""
    warnings.warn("tapas.app.search.get_search_space is deprecated; "
                  "use tapas.core.spaces.get_space",
                  DeprecationWarning, stacklevel=2)
    return get_space(name)


__all__ = ["OBJECTIVES", "SPACES", "STRATEGIES", "UCB_KAPPA", "Candidate", "Pinned", "Scorer",
           "SearchResult", "SearchSpace", "Space", "Target", "cell_ops", "cell_string",
           "check_space", "get_search_space", "get_space", "objective_value", "random_search",
           "regularized_evolution", "resolve_target", "thompson_search"]
