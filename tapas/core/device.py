"""Device policy (``auto`` picks CUDA when present, else the CPU) and the thread budget.

:func:`apply_threads` is the one place torch's CPU threads are set: every CLI command
(the root callback) and every :class:`~tapas.app.pipeline.Pipeline` call it when they start.
Small models on a busy machine lose to a second thread: it spins waiting on the first
(measured figures at :data:`tapas.core.config.SMALL_MODEL_THREADS`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING

from tapas.core.lazy import LazyImport

if TYPE_CHECKING:
    import torch

config = LazyImport("tapas.core.config")  # pydantic: not for `tapas --help`

#: torch threads applied in this process (None: not yet); an explicit count (a bench's
#: ``--threads``) replaces it, a later call without one keeps it.
_applied: int | None = None
#: inter-op threads still to set when torch is imported after :func:`apply_threads`.
_interop_pending: int | None = None


def apply_threads(torch_threads: int | None = None) -> int:
    """Apply the thread budget (``TAPAS_THREADS``) once per process; returns torch's
    intra-op thread count.

    Without ``torch_threads`` the first call sets torch's threads to the settings'
    :attr:`~tapas.core.config.Settings.torch_threads` and later calls change nothing (so a
    pipeline started inside a bench keeps the bench's count); an explicit count (a
    command's ``--threads``) always applies. Before torch is imported (the CLI imports it
    lazily) the count goes into ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, which torch reads
    when it loads, and ``OMP_WAIT_POLICY`` defaults to ``PASSIVE``: torch's CPU backend is
    OpenMP, whose idle threads otherwise spin on a core between parallel regions (on 2 cores
    with 2 threads: 88 s of CPU for 58 s of wall, 66 s with passive waiting). Inter-op
    threads are set to the same count, at once or when torch compute first starts
    (:func:`resolve_device`)."""
    global _applied, _interop_pending
    if torch_threads is None and _applied is not None:
        return _applied
    n = config.get_settings().torch_threads if torch_threads is None else max(1, int(torch_threads))
    _applied = n
    if "torch" not in sys.modules:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(n)
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        _interop_pending = n
        return n
    import torch  # already loaded (checked above): this never loads it

    torch.set_num_threads(n)
    _interop_pending = n
    _apply_interop()
    return n


def _apply_interop() -> None:
    """Set torch's inter-op threads once (torch allows it only before inter-op work)."""
    global _interop_pending
    if _interop_pending is None or "torch" not in sys.modules:
        return
    import torch  # already loaded (checked above): this never loads it

    with contextlib.suppress(RuntimeError):  # already set, or inter-op work has begun
        torch.set_num_interop_threads(_interop_pending)
    _interop_pending = None


def resolve_device(policy: str = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda`` into a ``torch.device``; ``cuda`` without a GPU is an error.
    Called where torch compute starts, so it also finishes :func:`apply_threads`."""
    import torch  # loaded here, before the pending inter-op threads are set below

    _apply_interop()

    if policy == "cpu":
        return torch.device("cpu")
    if policy == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device policy 'cuda' was asked for but no CUDA device is available")
        return torch.device("cuda")
    if policy == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    raise ValueError(f"unknown device policy {policy!r}; expected auto, cpu or cuda")
