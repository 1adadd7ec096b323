"""A memory-budgeted cache of built networks: entries carry an estimated size in bytes
and the oldest are evicted once the total passes the budget.

One utility for every process-wide architecture cache (an IR network parsed from JSON,
an expanded NAS-Bench-201 cell or DARTS genotype of 100 to 2,000 layers, a network
rebuilt from the LDE), each registered under a name with its share of one budget, so a
long-running service bounds them all from one setting (``TAPAS_CACHE_MB``:
:func:`set_budget`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

BYTES_PER_LAYER = 600
"""Memory of a parsed network per layer, its encoding included (measured with tracemalloc:
a 234-layer NAS-Bench-201 network holds ~118 KB once scored)."""


def network_bytes(n_layers: int, key_len: int = 0) -> int:
    """The estimated memory of a cached network of ``n_layers`` layers under a key of
    ``key_len`` characters."""
    return key_len + BYTES_PER_LAYER * n_layers + 2048


class BudgetCache:
    """LRU entries with estimated sizes, evicted oldest-first past ``budget`` bytes;
    thread-safe. An entry larger than the whole budget is not kept."""

    def __init__(self, budget: int) -> None:
        self.budget = int(budget)
        self.used = 0
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Any) -> Any | None:
        """The value cached under ``key`` (now the newest), or None."""
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: Any, value: Any, size: int) -> None:
        """Keep ``value`` (``size`` estimated bytes) unless it alone exceeds the budget."""
        with self._lock:
            if size > self.budget or key in self._items:
                return
            self._items[key] = (value, size)
            self.used += size
            while self.used > self.budget:
                _, (_, freed) = self._items.popitem(last=False)
                self.used -= freed

    def reset(self, budget: int) -> None:
        """Empty the cache and give it a new budget."""
        with self._lock:
            self._items.clear()
            self.used = 0
            self.budget = int(budget)


DEFAULT_BUDGET = 512 * 2**20
"""Every registered cache's total until :func:`set_budget` says otherwise (the default
``TAPAS_CACHE_MB``)."""

_registry: dict[str, tuple[BudgetCache, float]] = {}


def budgeted(name: str, share: float) -> BudgetCache:
    """The process-wide cache ``name``, holding ``share`` of the one budget (created and
    registered on first use). The shares of all caches add up to 1."""
    hit = _registry.get(name)
    if hit is None:
        hit = (BudgetCache(int(DEFAULT_BUDGET * share)), share)
        _registry[name] = hit
    return hit[0]


def set_budget(total_bytes: int) -> None:
    """Give every registered cache its share of ``total_bytes``; all are emptied."""
    for cache, share in _registry.values():
        cache.reset(int(total_bytes * share))


def usage() -> dict[str, int]:
    """Estimated bytes each registered cache holds now, by name."""
    return {name: cache.used for name, (cache, _) in _registry.items()}
