"""Busy processes beside a bench: what a user's laptop looks like to a 2-core budget.

``busy(n)`` starts ``n`` CPU-bound processes (each one a tight interpreter loop, as
``yes > /dev/null`` would be) and stops them afterwards, so ``--load N`` benches measure
tapas with N other processes competing for the cores at the same priority.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

HOG = "while True:\n    pass\n"


@contextmanager
def busy(n: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` CPU hogs running for the duration of the block (none when ``n`` is 0)."""
    if n < 0:
        raise ValueError(f"the number of busy processes must be >= 0, got {n}")
    procs = [subprocess.Popen([sys.executable, "-c", HOG], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


__all__ = ["busy"]
