"""The architecture IR, its importers and exporter.

``tapas.arch`` itself is pure Python (no torch), so the HTTP client can use it;
``to_module`` and ``from_module`` import torch when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tapas.arch.ir import INPUT, Architecture, LayerInfo
from tapas.arch.nb201 import (
    NB201_BY_KEY,
    NB201_DATASETS,
    NB201_OPS,
    NB201Dataset,
    all_cells,
    cell_ops,
    cell_string,
    from_nb201,
    is_nb201_string,
    parse_cell,
)
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


__all__ = ["INPUT", "NB201_BY_KEY", "NB201_DATASETS", "NB201_OPS", "OPS", "ArchError",
           "Architecture", "LayerInfo", "NB201Dataset", "all_cells", "cell_ops", "cell_string",
           "from_module", "from_nb201", "is_nb201_string", "parse_cell", "to_module"]
