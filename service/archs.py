"""Parse the architectures of a predict request, naming each bad one by its path."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from service.errors import APIError, join_path

MAX_REPORTED = 20
IR_CACHE_SIZE = 16_384

_ir_cache: OrderedDict[str, Any] = OrderedDict()
_ir_lock = threading.Lock()


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
        arch = _ir_cache.get(key)
        if arch is not None:
            _ir_cache.move_to_end(key)
            return arch
    arch = Architecture.from_dict(obj)
    with _ir_lock:
        _ir_cache[key] = arch
        if len(_ir_cache) > IR_CACHE_SIZE:
            _ir_cache.popitem(last=False)
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
