"""Fixtures for probenet tests: one thread (the machine is shared) and small .npz writers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> Iterator[None]:
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture()
def write_npz(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(10**6))

    def write(x: np.ndarray, y: np.ndarray, name: str | None = None, **extra: np.ndarray) -> Path:
        p = tmp_path / (name or f"data{next(counter)}.npz")
        np.savez(p, x=x, y=y, **extra)
        return p

    return write


def blobs(n: int = 60, k: int = 3, shape: tuple[int, ...] = (6, 6), seed: int = 0
          ) -> tuple[np.ndarray, np.ndarray]:
    """Separable toy images: class c lights up a different pixel band."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.integers(0, 60, (n, *shape)).astype(np.uint8)
    for c in range(k):
        x[y == c, c, ...] = 250
    return x, y
