"""Device policy: ``auto`` picks CUDA when present, else the CPU."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def resolve_device(policy: str = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda`` into a ``torch.device``; ``cuda`` without a GPU is an error."""
    import torch

    if policy == "cpu":
        return torch.device("cpu")
    if policy == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device policy 'cuda' was asked for but no CUDA device is available")
        return torch.device("cuda")
    if policy == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    raise ValueError(f"unknown device policy {policy!r}; expected auto, cpu or cuda")
