"""``python -m benchmarks.spaces``: build, encoding and scoring speed per search space.

DARTS networks have 4-7x the IR layers of NAS-Bench-201's, so the cost that grows
with the network (expansion into the IR with shape inference, the layer-wise
encoding) is measured per space. The predictor's LSTM runs over at most
``MAX_STEPS`` steps whatever the network, so its share should not grow.

For each space, ``n`` genotypes are sampled (seeded) and timed in three passes on
fresh objects (nothing cached):

* ``build``: genotype -> :class:`~tapas.core.arch.Architecture` (validation, expansion,
  shape inference, params/FLOPs);
* ``encode``: the TAP step vectors of the built networks;
* ``score``: a fitted :class:`predictor.TAPRegressor` (default size, trained briefly
  on real NAS-Bench-201 CIFAR-10 results) predicts all ``n`` in one batch, from
  genotype (build + encode + model), and the model alone on encoded networks.

Each figure is the median of ``repeats`` runs.
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from benchmarks import run_cli
from predictor.table import SHARED_DATA
from tapas.app.cli.common import fail, print_json

SHARED_NB201 = SHARED_DATA / "nb201.csv"
SPACES = ("nb201", "darts", "darts-paper", "nb101")


class BenchError(RuntimeError):
    """A benchmark that cannot run (e.g. missing data); the CLI prints it as one line."""


def _builders(seed: int, n: int) -> dict[str, list[Any]]:
    """Per space: ``n`` zero-argument callables each building one fresh network."""
    from tapas.core.arch import Architecture
    from tapas.core.arch.darts import darts_dict
    from tapas.core.arch.nb201 import nb201_dict
    from tapas.core.spaces import SPACES

    rng = random.Random(seed)
    darts, nb101 = SPACES["darts"], SPACES["nb101"]
    cells = [SPACES["nb201"].sample(rng) for _ in range(n)]
    dg = [darts.spec(darts.sample(rng)) for _ in range(n)]
    ng = [nb101.spec(nb101.sample(rng)) for _ in range(n)]
    from tapas.core.arch.nb101 import nb101_dict

    # the un-cached dict builders, so every call pays the full expansion
    return {
        "nb201": [lambda c=c: Architecture.from_dict(nb201_dict(c)) for c in cells],
        "darts": [lambda g=g: Architecture.from_dict(darts_dict(g["genotype"], 16, 8))
                  for g in dg],
        "darts-paper": [lambda g=g: Architecture.from_dict(darts_dict(g["genotype"], 36, 20))
                        for g in dg],
        "nb101": [lambda g=g: Architecture.from_dict(nb101_dict(g)) for g in ng],
    }


def _fit_model(data: Path, n_fit: int, seed: int) -> Any:
    import csv

    from predictor.tap import TAPRegressor
    from tapas.core.arch import from_nb201

    if not data.exists():
        raise BenchError(f"NAS-Bench-201 results not found at {data}; give --data")
    with data.open() as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"arch_str", "cifar10_test"} <= set(rows[0]):
        raise BenchError(f"{data}: missing columns arch_str, cifar10_test")
    rows = random.Random(seed).sample(rows, min(n_fit, len(rows)))
    archs = [from_nb201(r["arch_str"]) for r in rows]
    y = [float(r["cifar10_test"]) / 100.0 for r in rows]
    return TAPRegressor(epochs=3, seed=seed, device="cpu").fit(archs, 0.5, y)


def run_benchmark(n: int = 500, repeats: int = 3, seed: int = 0, data: Path | None = None,
                  spaces: tuple[str, ...] = SPACES, n_fit: int = 500) -> dict[str, Any]:
    """Time build / encode / score per space; returns a JSON-ready dict."""
    from predictor.encoding import step_vectors

    bad = [s for s in spaces if s not in SPACES]
    if bad:
        raise BenchError(f"unknown space(s) {bad}; expected some of {', '.join(SPACES)}")
    if n < 1 or repeats < 1:
        raise BenchError("n and repeats must be at least 1")
    model = _fit_model(Path(data) if data else SHARED_NB201, n_fit, seed)
    out: dict[str, Any] = {"n": n, "repeats": repeats, "seed": seed, "spaces": {}}
    for space in spaces:
        times: dict[str, list[float]] = {"build": [], "encode": [], "score_total": [],
                                         "score_model": []}
        archs: list[Any] = []
        for r in range(repeats):
            makers = _builders(seed + r, n)[space]
            t0 = time.perf_counter()
            archs = [make() for make in makers]
            t1 = time.perf_counter()
            for a in archs:
                step_vectors(a)
            t2 = time.perf_counter()
            model.predict(archs, 0.5)  # encodings cached now: the model alone
            t3 = time.perf_counter()
            fresh = [make() for make in makers]
            model.predict(fresh, 0.5)
            t5 = time.perf_counter()
            times["build"].append(t1 - t0)
            times["encode"].append(t2 - t1)
            times["score_model"].append(t3 - t2)
            times["score_total"].append(t5 - t3)  # build + encode + model
        med = {k: statistics.median(v) for k, v in times.items()}
        out["spaces"][space] = {
            "mean_layers": sum(len(a) for a in archs) / len(archs),
            "mean_params": sum(a.params for a in archs) / len(archs),
            **{f"{k}_per_s": n / v for k, v in med.items()},
        }
    return out


def print_table(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"spaces: {res['n']} networks per space, median of {res['repeats']}")
    cols = ("space", "IR layers", "params", "build/s", "encode/s", "score/s (model)",
            "score/s (genotype->prediction)")
    for c in cols:
        t.add_column(c, justify="left" if c == "space" else "right")
    for name, r in res["spaces"].items():
        t.add_row(name, f"{r['mean_layers']:.0f}", f"{r['mean_params']:,.0f}",
                  f"{r['build_per_s']:,.0f}", f"{r['encode_per_s']:,.0f}",
                  f"{r['score_model_per_s']:,.0f}", f"{r['score_total_per_s']:,.0f}")
    Console().print(t)


def main(
    n: Annotated[int, typer.Option(min=1, max=100_000,
                                   help="Networks per space.")] = 500,
    repeats: Annotated[int, typer.Option(min=1, max=20, help="Runs; medians.")] = 3,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    data: Annotated[Path | None, typer.Option(
        help="NAS-Bench-201 results CSV the timed predictor is fitted on "
             "(default ../shared/data/nb201.csv).")] = None,
    space: Annotated[list[str] | None, typer.Option(
        "--space", help="nb201, darts (C=16, 8 cells), darts-paper (C=36, 20 cells), "
                        "nb101; repeat for several (default all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Build, encoding and scoring speed of DARTS / NB-101 networks vs NB-201."""
    try:
        res = run_benchmark(n, repeats, seed, data, tuple(space or SPACES))
    except BenchError as e:
        fail(str(e))
    if as_json:
        print_json(res)
    else:
        print_table(res)


if __name__ == "__main__":
    run_cli(main)
