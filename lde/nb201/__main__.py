"""``python -m lde.nb201 PATH/TO/nb201.csv``: rebuild the shipped NAS-Bench-201 export."""

from __future__ import annotations

import sys
from pathlib import Path

from lde.nb201 import NB201_DIR, build

if len(sys.argv) != 2:
    sys.exit("usage: python -m lde.nb201 PATH/TO/nb201.csv")
report = build(Path(sys.argv[1]))
print(f"added {report.added} experiments, rejected {len(report.rejected)}; wrote {NB201_DIR}")
