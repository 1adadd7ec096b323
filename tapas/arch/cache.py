"""A memory-budgeted cache of built networks: entries carry an estimated size in bytes
and the oldest are evicted once the total passes the budget.

One utility for every process-wide architecture cache (an IR network parsed from JSON,
an expanded NAS-Bench-201 cell or DARTS genotype of 100 to 2,000 layers, a network
rebuilt from the LDE), each registered under a name in one pool with one budget, so a
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
    """One LRU of every named cache's entries, with estimated sizes, evicted oldest-first
    past ``budget`` bytes whichever cache they belong to; thread-safe. An entry larger
    than the whole budget is not kept.

    One pool rather than a fixed share per cache: a search loop over NAS-Bench-201 cells
    needs the whole budget for their expansions (1,000 cells are ~120 MB) while the DARTS
    and IR caches sit empty, and a share too small for the working set is worse than none
    (each pass evicts what the next one needs, so every request rebuilt every network)."""

    def __init__(self, budget: int) -> None:
        self.budget = int(budget)
        self.used = 0
        self.used_by: dict[str, int] = {}
        self._items: OrderedDict[tuple[str, Any], tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str, key: Any) -> Any | None:
        """The value cache ``name`` holds under ``key`` (now the newest), or None."""
        with self._lock:
            hit = self._items.get((name, key))
            if hit is None:
                return None
            self._items.move_to_end((name, key))
            return hit[0]

    def put(self, name: str, key: Any, value: Any, size: int) -> None:
        """Keep ``value`` (``size`` estimated bytes) unless it alone exceeds the budget."""
        with self._lock:
            if size > self.budget or (name, key) in self._items:
                return
            self._items[(name, key)] = (value, size)
            self.used += size
            self.used_by[name] = self.used_by.get(name, 0) + size
            while self.used > self.budget:
                (owner, _), (_, freed) = self._items.popitem(last=False)
                self.used -= freed
                self.used_by[owner] -= freed

    def count(self, name: str) -> int:
        with self._lock:
            return sum(1 for owner, _ in self._items if owner == name)

    def reset(self, budget: int) -> None:
        """Empty the pool and give it a new budget."""
        with self._lock:
            self._items.clear()
            self.used = 0
            self.used_by = dict.fromkeys(self.used_by, 0)
            self.budget = int(budget)


class NamedCache:
    """One cache's view of the shared pool: its own keys, the pool's budget."""

    def __init__(self, pool: BudgetCache, name: str) -> None:
        self.pool = pool
        self.name = name

    def __len__(self) -> int:
        return self.pool.count(self.name)

    @property
    def used(self) -> int:
        return self.pool.used_by.get(self.name, 0)

    def get(self, key: Any) -> Any | None:
        return self.pool.get(self.name, key)

    def put(self, key: Any, value: Any, size: int) -> None:
        self.pool.put(self.name, key, value, size)


DEFAULT_BUDGET = 512 * 2**20
"""The pool's budget until :func:`set_budget` says otherwise (the default
``TAPAS_CACHE_MB``)."""

_pool = BudgetCache(DEFAULT_BUDGET)
_registry: dict[str, NamedCache] = {}


def budgeted(name: str) -> NamedCache:
    """The process-wide cache ``name`` in the one pool (registered on first use)."""
    hit = _registry.get(name)
    if hit is None:
        hit = _registry[name] = NamedCache(_pool, name)
        _pool.used_by.setdefault(name, 0)
    return hit


def set_budget(total_bytes: int) -> None:
    """Give the pool every cache shares ``total_bytes``; all caches are emptied."""
    _pool.reset(total_bytes)


def budget() -> int:
    """The pool's budget in bytes."""
    return _pool.budget


def usage() -> dict[str, int]:
    """Estimated bytes each registered cache holds now, by name."""
    return {name: cache.used for name, cache in _registry.items()}
