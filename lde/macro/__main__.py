"""``python -m lde.macro PATH/TO/nas_bench_macro_cifar10.csv``: rebuild the shipped export."""

from __future__ import annotations

import sys
from pathlib import Path

from lde.macro import MACRO_DIR, build

if len(sys.argv) != 2:
    sys.exit("usage: python -m lde.macro PATH/TO/nas_bench_macro_cifar10.csv")
report = build(Path(sys.argv[1]))
print(f"added {report.added} experiments; wrote {MACRO_DIR}")
