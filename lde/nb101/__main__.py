"""``python -m lde.nb101 PATH/TO/nb101_cifar10.csv``: rebuild the shipped NAS-Bench-101 export."""

from __future__ import annotations

import sys
from pathlib import Path

from lde.nb101 import NB101_DIR, build

if len(sys.argv) != 2:
    sys.exit("usage: python -m lde.nb101 PATH/TO/nb101_cifar10.csv")
report = build(Path(sys.argv[1]))
print(f"added {report.added} experiments; wrote {NB101_DIR}")
