"""The architecture IR, its importers and exporter.

``tapas.core.arch`` itself is pure Python (no torch), so the HTTP client can use it;
``to_module`` and ``from_module`` import torch when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tapas.core.arch.accel import from_accel
from tapas.core.arch.darts import DARTS_OPS, DARTS_V2, from_darts, is_darts_string, parse_genotype
from tapas.core.arch.ir import INPUT, Architecture, LayerInfo
from tapas.core.arch.macro import from_macro
from tapas.core.arch.nb101 import NB101_OPS, from_nb101, is_nb101
from tapas.core.arch.nb201 import (
    NB201_BY_KEY,
    NB201_DATASETS,
    NB201_OPS,
    REFERENCE_CELL,
    NB201Dataset,
    all_cells,
    cell_ops,
    cell_string,
    from_nb201,
    is_nb201_string,
    parse_cell,
)
from tapas.core.arch.ops import OPS, ArchError

if TYPE_CHECKING:
    import torch


def to_module(arch: Architecture) -> torch.nn.Module:
    """Build a real ``nn.Module`` computing exactly ``arch``."""
    from tapas.core.arch.torch_export import IRModule  # torch (~1.2 s): only when called

    return IRModule(arch)


def from_module(module: torch.nn.Module, input_shape: tuple[int, int, int],
                num_classes: int | None = None) -> Architecture:
    """Trace ``module`` with ``torch.fx`` into the IR (unsupported parts are named)."""
    from tapas.core.arch.fx_import import from_module as _from_module  # torch, when called

    return _from_module(module, input_shape, num_classes)


_DARTS_SIZE_KEYS = {"genotype", "C", "layers"}
_DARTS_DICT_KEYS = {"normal", "normal_concat", "reduce", "reduce_concat", "C", "layers", "space"}


def _darts_dict(obj: Any) -> bool:
    return (isinstance(obj, dict) and (("genotype" in obj and set(obj) <= _DARTS_SIZE_KEYS)
            or ("normal" in obj and "reduce" in obj and set(obj) <= _DARTS_DICT_KEYS)))


def expand(obj: Any, num_classes: int = 10,
           input_shape: tuple[int, int, int] = (3, 32, 32)) -> Architecture:
    """The full benchmark network of a cell spec (a NAS-Bench-201 cell string, a DARTS
    genotype, printed or ``{"genotype": ..., "C": .., "layers": ..}``, or a NAS-Bench-101
    ``{"matrix", "ops"}`` cell) for ``num_classes`` and ``input_shape``, as the spaces
    build them (users' values are read by :func:`tapas.core.spaces.read_notation`):
    NAS-Bench-201 and NAS-Bench-101 cells in their benchmark's skeleton, DARTS genotypes
    in the DARTS evaluation network (C=36, 20 cells unless the object says
    ``C``/``layers``)."""
    c, h, w = input_shape
    if isinstance(obj, str) and is_nb201_string(obj):
        if h != w:
            raise ArchError(f"NAS-Bench-201 cells need a square input, got {list(input_shape)}")
        return from_nb201(obj.strip(), num_classes, h, in_channels=c)
    if isinstance(obj, str) and is_darts_string(obj):
        return from_darts(obj, num_classes=num_classes, input_shape=input_shape)
    if isinstance(obj, dict) and is_nb101(obj):
        return from_nb101(obj, num_classes, input_shape)
    if _darts_dict(obj):
        size = {k: obj[k] for k in ("C", "layers") if k in obj}
        for k, v in size.items():
            if isinstance(v, bool) or not isinstance(v, int):
                raise ArchError(f"must be an integer, got {v!r}", field=k)
        genotype = obj["genotype"] if "genotype" in obj else {
            k: obj[k] for k in ("normal", "normal_concat", "reduce", "reduce_concat") if k in obj}
        return from_darts(genotype, size.get("C", 36), size.get("layers", 20),
                          num_classes, input_shape)
    raise ArchError("not a NAS-Bench-201 cell string, DARTS genotype or NAS-Bench-101 cell")


__all__ = ["DARTS_OPS", "DARTS_V2", "INPUT", "NB101_OPS", "NB201_BY_KEY", "NB201_DATASETS",
           "NB201_OPS", "OPS", "REFERENCE_CELL", "ArchError", "Architecture", "LayerInfo",
           "NB201Dataset", "all_cells", "cell_ops", "cell_string", "expand", "from_accel",
           "from_darts", "from_macro", "from_module", "from_nb101", "from_nb201",
           "is_darts_string", "is_nb101", "is_nb201_string", "parse_cell", "parse_genotype",
           "to_module"]
