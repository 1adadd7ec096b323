"""The architecture IR, its importers and exporter.

``tapas.arch`` itself is pure Python (no torch), so the HTTP client can use it;
``to_module`` and ``from_module`` import torch when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tapas.arch.ir import INPUT, Architecture, LayerInfo
from tapas.arch.nb201 import NB201_OPS, all_cells, from_nb201, is_nb201_string, parse_cell
from tapas.arch.ops import OPS, ArchError

if TYPE_CHECKING:
    import torch


def to_module(arch: Architecture) -> torch.nn.Module:
    """Build a real ``nn.Module`` computing exactly ``arch``."""
    from tapas.arch.torch_export import IRModule

    return IRModule(arch)


def from_module(module: torch.nn.Module, input_shape: tuple[int, int, int],
                num_classes: int | None = None) -> Architecture:
    """Trace ``module`` with ``torch.fx`` into the IR (unsupported parts are named)."""
    from tapas.arch.fx_import import from_module as _from_module

    return _from_module(module, input_shape, num_classes)


def load(obj: Any, num_classes: int | None = None,
         input_shape: tuple[int, int, int] | None = None) -> Architecture:
    """An :class:`Architecture` from whatever a user hands in: an instance, a dict, JSON
    text, or a NAS-Bench-201 cell string (expanded with ``num_classes``/``input_shape``)."""
    if isinstance(obj, Architecture):
        return obj
    if isinstance(obj, str) and is_nb201_string(obj):
        c, h = (input_shape[0], input_shape[1]) if input_shape else (3, 32)
        return from_nb201(obj.strip(), num_classes or 10, h, in_channels=c)
    if isinstance(obj, str | bytes):
        return Architecture.from_json(obj)
    return Architecture.from_dict(obj)


__all__ = ["INPUT", "NB201_OPS", "OPS", "ArchError", "Architecture", "LayerInfo", "all_cells",
           "from_module", "from_nb201", "is_nb201_string", "load", "parse_cell", "to_module"]
