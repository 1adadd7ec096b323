"""``python -m tapas.app.release``: train the predictors shipped with tapas.

Run at release time (after any change to the shipped data, the selection rule, the
predictor's defaults or ``tapas.__version__``; a test fails until it is). On a freshly
seeded default database (in a temporary folder, no shipped predictors registered), it
trains the predictor :meth:`tapas.app.pipeline.Pipeline.train` gives for each DCN of a grid
(nearby DCNs often select the same experiments: one predictor then serves them all), and
writes them into ``lde/shipped_predictors/`` (:func:`lde.shipped_predictors.pack`). A new
database registers them when it is seeded, so ``train`` for any DCN whose selection is one
of theirs is a lookup, and ``select`` (predict, the service) finds one covering every DCN
in [0, 1].

Each entry's DCN range is the span of its selection's datasets widened to every DCN whose
selection is the same (:func:`lde.selection.selection_interval`): for those, training
would give this very predictor.

    python -m tapas.app.release                      # the default grid, into the package
    python -m tapas.app.release --dcn 0.5,0.9 --out DIR
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lde import shipped_predictors
from lde.selection import MIN_DATASETS, TAU, selection_interval
from tapas import __version__
from tapas.app.pipeline import Pipeline
from tapas.core.device import apply_threads

#: The release grid. 0.95: the selection of every DCN >= 0.921, holding the README's main
#: job (``digits``, DCN 0.990) and ``tapas bench first-prediction`` (0.952); 0.634: the
#: median DCN of a fresh database, the service's default predictor; 0.86: CIFAR-10's
#: selection (``python -m benchmarks.fresh_install``); the others make the ranges cover
#: [0, 1], so a request for any DCN finds a covering predictor without training.
DEFAULT_GRID = (0.10, 0.43, 0.595, 0.634, 0.73, 0.86, 0.95)
COMMAND = "python -m tapas.app.release"


def build(grid: Sequence[float] = DEFAULT_GRID, out: Path | None = None, *,
          log: Callable[[str], None] = print, predictor_params: dict[str, Any] | None = None,
          min_experiments: int | None = None) -> dict[str, Any]:
    """Train the grid's predictors on a fresh default database and pack them into ``out``
    (default: the package's ``lde/shipped_predictors``). Returns the manifest.
    ``predictor_params``/``min_experiments``: a pipeline's (tests build small packs; a
    pipeline registers only the shipped predictors it would train itself)."""
    out = Path(out) if out is not None else shipped_predictors.SHIPPED_DIR
    with tempfile.TemporaryDirectory(prefix="tapas-release-") as tmp:
        t0 = time.perf_counter()
        pipe = Pipeline(Path(tmp) / "lde.duckdb", model_dir=Path(tmp) / "models",
                        shipped=False, predictor_params=predictor_params,
                        min_experiments=min_experiments)
        with pipe:
            store = pipe.store
            snapshot = store.snapshot_id()
            log(f"fresh default database {snapshot} in {time.perf_counter() - t0:.1f} s")
            table = store.dcn_table()
            files, rows, seen = [], [], {}
            for dcn in grid:
                _, _, pid = pipe._selection(store, float(dcn))
                if pid in seen:
                    log(f"DCN {dcn:.4f}: same selection as DCN {seen[pid]:.4f} ({pid})")
                    continue
                seen[pid] = float(dcn)
                t1 = time.perf_counter()
                _, info = pipe.train(float(dcn))
                assert info.id == pid and not info.cached
                lo, hi = selection_interval(table, float(dcn), pipe.min_experiments,
                                            MIN_DATASETS, TAU)
                reg = store.predictor(pid)
                assert reg is not None
                files.append(pipe.model_path(reg.artifact))
                rows.append({"id": pid, "dcn": reg.dcn, "tau": reg.tau,
                             "dcn_lo": min(reg.dcn_lo, lo), "dcn_hi": max(reg.dcn_hi, hi),
                             "snapshot": reg.snapshot, "n_train": reg.n_train,
                             "metrics": reg.metrics,
                             "provenance": {**reg.provenance, "release": COMMAND,
                                            "selection_dcn": [lo, hi]}})
                log(f"DCN {dcn:.4f}: {pid} on {reg.n_train:,} experiments of "
                    f"{len(reg.datasets)} datasets, selection for DCN [{lo:.4f}, {hi:.4f}], "
                    f"covers [{rows[-1]['dcn_lo']:.4f}, {rows[-1]['dcn_hi']:.4f}] "
                    f"({time.perf_counter() - t1:.1f} s)")
            gaps = _gaps([(r["dcn_lo"], r["dcn_hi"]) for r in rows])
            m = shipped_predictors.pack(files, rows, out, {
                "tapas_version": __version__, "lde_snapshot": snapshot, "command": COMMAND,
                "grid": [float(g) for g in grid], "uncovered": gaps})
    size = sum(f.stat().st_size for f in out.iterdir() if f.name in ("manifest.json",
                                                                     "predictors.tap.xz"))
    raw = sum(e["bytes"] for e in m["predictors"])
    log(f"{len(rows)} predictors, {raw / 2**20:.1f} MiB of model files packed into "
        f"{size / 2**20:.2f} MiB in {out}; DCNs no predictor covers: {gaps or 'none'}")
    return m


def _gaps(ranges: list[tuple[float, float]]) -> list[list[float]]:
    """Parts of [0, 1] that none of ``ranges`` covers."""
    gaps, at = [], 0.0
    for lo, hi in sorted(ranges):
        if lo > at + 1e-9:
            gaps.append([at, lo])
        at = max(at, hi)
    if at < 1.0 - 1e-9:
        gaps.append([at, 1.0])
    return gaps


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    p.add_argument("--dcn", default=",".join(str(g) for g in DEFAULT_GRID),
                   help="comma-separated grid of DCNs (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder to write (default: the package's lde/shipped_predictors)")
    a = p.parse_args(argv)
    try:
        grid = [float(x) for x in a.dcn.split(",") if x.strip()]
    except ValueError:
        p.error(f"--dcn must be numbers separated by commas, got {a.dcn!r}")
    if not grid or not all(0.0 <= g <= 1.0 for g in grid):
        p.error("--dcn needs DCNs in [0, 1]")
    apply_threads()
    build(grid, a.out, log=lambda s: print(s, file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
