"""tapas: a train-less accuracy predictor for neural architecture search.

Heavy parts (torch, duckdb) are imported lazily by the modules that need them,
so ``import tapas`` and ``tapas.client`` stay light.
"""

from __future__ import annotations

__version__ = "0.1.0"
