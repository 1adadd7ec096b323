"""Adapters to tools people already use for architecture search.

* :mod:`tapas.app.adapters.naslib`: a NASLib-style predictor (``fit``/``query``) over
  NAS-Bench-201 cells.
* :mod:`tapas.app.adapters.optuna_example`: a worked Optuna ask-and-tell search whose
  objective is the predictor (needs ``pip install optuna``).

Both import their heavy dependencies only when used.
"""

from __future__ import annotations
