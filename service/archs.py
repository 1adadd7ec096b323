"""Parse the architectures of a predict request, naming each bad one by its path."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from service.errors import APIError, join_path

MAX_REPORTED = 20
BYTES_PER_LAYER = 600
"""Memory of a parsed network per layer, its encoding included (measured with tracemalloc:
a 234-layer NAS-Bench-201 network holds ~118 KB once scored)."""
NB201_NETWORK_BYTES = 234 * BYTES_PER_LAYER


class _Budget:
    """The IR cache's entries and their estimated bytes, evicted oldest-first past the
    budget; :func:`set_cache_budget` sets it (the service: half of TAPAS_CACHE_MB)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self.items: OrderedDict[str, tuple[Any, int]] = OrderedDict()


_ir = _Budget(256 * 2**20)
_ir_lock = threading.Lock()


def set_cache_budget(total_bytes: int) -> None:
    """Split a memory budget between the IR cache here and the NAS-Bench-201 expansion
    cache of :mod:`tapas.arch` (half each); both are emptied."""
    from tapas.arch.nb201 import set_cache_size

    global _ir
    with _ir_lock:
        _ir = _Budget(total_bytes // 2)
    set_cache_size(max(1, (total_bytes // 2) // NB201_NETWORK_BYTES))


def cache_bytes() -> int:
    """Estimated bytes held by the IR cache now."""
    with _ir_lock:
        return _ir.used


def _from_ir(obj: Any) -> Any:
    """``Architecture.from_dict`` memoised on the object's JSON text: a search loop that
    re-sends the same IR objects skips validation, shape inference and encoding (the
    predictor caches its encoding on the Architecture instance)."""
    from tapas.arch import Architecture

    try:
        key = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return Architecture.from_dict(obj)
    with _ir_lock:
        hit = _ir.items.get(key)
        if hit is not None:
            _ir.items.move_to_end(key)
            return hit[0]
    arch = Architecture.from_dict(obj)
    size = len(key) + BYTES_PER_LAYER * len(arch.layers) + 2048
    with _ir_lock:
        if size <= _ir.budget and key not in _ir.items:
            _ir.items[key] = (arch, size)
            _ir.used += size
            while _ir.used > _ir.budget:
                _, (_, freed) = _ir.items.popitem(last=False)
                _ir.used -= freed
    return arch


def parse_archs(raw: Sequence[Any], num_classes: int, input_shape: tuple[int, int, int],
                prefix: str = "body.archs") -> list[Any]:
    """``raw`` items (IR dicts or JSON text; cell specs: NAS-Bench-201 cell strings, DARTS
    genotypes, NAS-Bench-101 cells) as Architectures.

    Cell strings go through the cached ``from_nb201``, so a search loop that re-scores
    the same cells pays the expansion once. All bad items are collected (up to
    :data:`MAX_REPORTED`) into one 422 whose ``path`` names the first.
    """
    from tapas.arch import ArchError, Architecture, expand, is_cell_spec

    out: list[Any] = []
    errors: list[dict[str, Any]] = []
    for i, obj in enumerate(raw):
        try:
            if is_cell_spec(obj):  # NAS-Bench-201/-101 cells, DARTS genotypes
                arch = expand(obj.strip() if isinstance(obj, str) else obj, num_classes,
                              input_shape)
            elif isinstance(obj, str):
                arch = Architecture.from_json(obj)
            else:
                arch = _from_ir(obj)
        except ArchError as e:
            if len(errors) < MAX_REPORTED:
                # A cell string is one value: its error belongs to the item, not a sub-field.
                sub = None if isinstance(obj, str) and e.layer is None else e.path
                errors.append({"path": join_path(f"{prefix}[{i}]", sub), "message": str(e),
                               "index": i})
            continue
        out.append(arch)
    if errors:
        first = errors[0]
        n = len(raw) - len(out)
        more = f" ({n} invalid architectures in all)" if n > 1 else ""
        raise APIError(422, "invalid_architecture", f"{first['path']}: {first['message']}{more}",
                       first["path"], errors)
    return out
