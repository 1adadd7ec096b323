"""One memory-budgeted cache for the whole process: entries carry an estimated size in
bytes and the least recently used are evicted once the total passes the budget.

Every cache that can grow with what users send goes through it (the list is in
docs/architecture.md, "Caches"): networks (an IR network parsed from JSON, an expanded
NAS-Bench-201 cell or DARTS genotype of 100 to 2,000 layers, a network rebuilt from the
LDE), the predictors a pipeline holds, its request maps, genotype keys, model-file checks
and loaded experiment datasets. Each is registered under a name in one pool with one
budget, so a long-running service bounds them all from one setting (``TAPAS_CACHE_MB``:
:func:`set_budget`) and :func:`usage` says what each holds.
"""

from __future__ import annotations

import itertools
import sys
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

BYTES_PER_LAYER = 600
"""Memory of a parsed network per layer, its encoding included (measured with tracemalloc:
a 234-layer NAS-Bench-201 network holds ~118 KB once scored)."""


def network_bytes(n_layers: int, key_len: int = 0) -> int:
    """The estimated memory of a cached network of ``n_layers`` layers under a key of
    ``key_len`` characters."""
    return key_len + BYTES_PER_LAYER * n_layers + 2048


def sizeof(obj: Any, depth: int = 4) -> int:
    """A cheap estimate of the bytes ``obj`` holds: ``nbytes`` for arrays (numpy, torch's
    element count times item size), text by length, containers by their items (``depth``
    levels down), anything else by ``sys.getsizeof``. For small keys and values (request
    maps, file checks) and for arrays; networks use :func:`network_bytes`."""
    nbytes = getattr(obj, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes + 112
    if hasattr(obj, "element_size") and hasattr(obj, "numel"):  # a torch tensor
        return int(obj.element_size() * obj.numel()) + 112
    if isinstance(obj, str | bytes):
        return len(obj) + 56
    if depth > 0 and isinstance(obj, tuple | list | set | frozenset):
        return 56 + 8 * len(obj) + sum(sizeof(v, depth - 1) for v in obj)
    if depth > 0 and isinstance(obj, dict):
        return 64 + sum(sizeof(k, depth - 1) + sizeof(v, depth - 1) + 16
                        for k, v in obj.items())
    return sys.getsizeof(obj)


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
        self._keys: dict[str, OrderedDict[Any, None]] = {}  # each cache's keys, LRU order
        self._lock = threading.Lock()
        self._later: deque[tuple[str, Callable[[Any, Any], bool] | None]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the lock, having first done the drops finalizers queued
        (:meth:`drop_later`)."""
        with self._lock:
            self._drop_queued()
            yield

    def get(self, name: str, key: Any) -> Any | None:
        """The value cache ``name`` holds under ``key`` (now the newest), or None."""
        with self._locked():
            hit = self._items.get((name, key))
            if hit is None:
                return None
            self._items.move_to_end((name, key))
            self._keys[name].move_to_end(key)
            return hit[0]

    def put(self, name: str, key: Any, value: Any, size: int) -> None:
        """Keep ``value`` (``size`` estimated bytes; it replaces what ``key`` held) unless it
        alone exceeds the budget."""
        with self._locked():
            self._pop(name, key)
            if size > self.budget:
                return
            self._items[(name, key)] = (value, size)
            self._keys.setdefault(name, OrderedDict())[key] = None
            self.used += size
            self.used_by[name] = self.used_by.get(name, 0) + size
            while self.used > self.budget:
                self._pop(*next(iter(self._items)))

    def _pop(self, name: str, key: Any) -> None:
        old = self._items.pop((name, key), None)
        if old is not None:
            del self._keys[name][key]
            self.used -= old[1]
            self.used_by[name] -= old[1]

    def drop(self, name: str, keep: Callable[[Any, Any], bool] | None = None) -> None:
        """Remove cache ``name``'s entries, or only those for which ``keep(key, value)``
        is false."""
        with self._locked():
            self._drop(name, keep)

    def drop_later(self, name: str, keep: Callable[[Any, Any], bool] | None = None) -> None:
        """:meth:`drop` for finalizers: the garbage collector may run one inside a
        locked section of this very thread, where waiting for the lock would never end.
        The drop is queued, and done now if the lock is free, else by the next call."""
        self._later.append((name, keep))
        if self._lock.acquire(blocking=False):
            try:
                self._drop_queued()
            finally:
                self._lock.release()

    def _drop_queued(self) -> None:
        while self._later:
            self._drop(*self._later.popleft())

    def _drop(self, name: str, keep: Callable[[Any, Any], bool] | None) -> None:
        gone = [k for k in self._keys.get(name, ())
                if keep is None or not keep(k, self._items[(name, k)][0])]
        for k in gone:
            self._pop(name, k)

    def items(self, name: str) -> list[tuple[Any, Any]]:
        """Cache ``name``'s (key, value) pairs, least recently used first (no use counted)."""
        with self._locked():
            return [(k, self._items[(name, k)][0]) for k in self._keys.get(name, ())]

    def count(self, name: str) -> int:
        with self._locked():
            return len(self._keys.get(name, ()))

    def resize(self, budget: int) -> None:
        """A new budget; the least recently used entries go until the pool fits it."""
        with self._locked():
            self.budget = int(budget)
            while self.used > self.budget:
                self._pop(*next(iter(self._items)))


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

    def clear(self) -> None:
        self.pool.drop(self.name)

    def scoped(self, owner: object) -> ScopedCache:
        """A private part of this cache for one object (a pipeline, a space): its keys
        never meet another owner's, and its entries go when the owner is collected."""
        return ScopedCache(self, owner)


_scopes = itertools.count()


class ScopedCache:
    """One owner's entries of a named cache: keys are tagged with the owner's number, so
    per-object caches (a pipeline's predictors) share the pool and its budget."""

    def __init__(self, cache: NamedCache, owner: object) -> None:
        self.cache = cache
        self.scope = next(_scopes)
        scope = self.scope
        weakref.finalize(owner, cache.pool.drop_later, cache.name, lambda k, v: k[0] != scope)

    def _mine(self, key: Any) -> bool:
        return key[0] == self.scope

    def get(self, key: Any) -> Any | None:
        return self.cache.get((self.scope, key))

    def put(self, key: Any, value: Any, size: int) -> None:
        self.cache.put((self.scope, key), value, size)

    def items(self) -> Iterator[tuple[Any, Any]]:
        """(key, value) pairs, least recently used first."""
        return ((k[1], v) for k, v in self.cache.pool.items(self.cache.name) if self._mine(k))

    def __len__(self) -> int:
        return sum(1 for _ in self.items())

    def drop(self, keep: Callable[[Any, Any], bool] | None = None) -> None:
        """Remove this owner's entries, or those for which ``keep(key, value)`` is false."""
        self.cache.pool.drop(self.cache.name, lambda k, v: not self._mine(k) or (
            keep is not None and keep(k[1], v)))


DEFAULT_BUDGET = 512 * 2**20
"""The pool's budget until :func:`set_budget` says otherwise (the default
``TAPAS_CACHE_MB``)."""

_pool = BudgetCache(DEFAULT_BUDGET)
_registry: dict[str, NamedCache] = {}
_budget_set = False


def budgeted(name: str) -> NamedCache:
    """The process-wide cache ``name`` in the one pool (registered on first use)."""
    hit = _registry.get(name)
    if hit is None:
        hit = _registry[name] = NamedCache(_pool, name)
        _pool.used_by.setdefault(name, 0)
    return hit


def set_budget(total_bytes: int) -> None:
    """Give the pool every cache shares ``total_bytes`` (``TAPAS_CACHE_MB``); the least
    recently used entries go until it fits."""
    global _budget_set
    _budget_set = True
    _pool.resize(total_bytes)


def budget_set() -> bool:
    """Whether this process has set the budget (else it is :data:`DEFAULT_BUDGET`)."""
    return _budget_set


def budget() -> int:
    """The pool's budget in bytes."""
    return _pool.budget


def usage() -> dict[str, int]:
    """Estimated bytes each registered cache holds now, by name."""
    return {name: cache.used for name, cache in _registry.items()}
