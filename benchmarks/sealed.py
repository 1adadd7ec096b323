"""``python -m benchmarks.sealed --db /work/sealed/lde.duckdb``: the sealed test suite.

The sealed suite (``lde/sealed/DATA_CARD.md``, ``--preset sealed``) is scored only to
*report* a change after it is chosen, never to choose one. For each sealed dataset this
bench does what a fresh default install does for a dataset it has never seen (scenario C
as production runs it): a copy of a new default database (the starter data and
NAS-Bench-201, :func:`lde.default_data.seed_default`, and the shipped predictors it
registers; the sealed dataset is never in it), the predictor
:meth:`~tapas.app.pipeline.Pipeline.select` answers the dataset's DCN with (a shipped one
whose DCN range covers it, else one trained on the production DCN selection), and the
sealed networks scored by it.
Beside TAP, on the same selection rows (:func:`tapas.app.pipeline.identity.selection`,
the pipeline's dataset-balanced sample): the project's gradient boosting
(:class:`benchmarks.baselines.GBRBaseline`), the history consensus (the mean percentile of
a network's family on the datasets the LDE holds it on,
:class:`~benchmarks.baselines.MeanRankOtherBaseline`, with the LDE's whole history) and
the parameter count. Also TAP's interval coverage at its nominal 90 % and median width,
and the noise ceiling (:func:`lde.starter.label_kendall` of the sealed runs).

A network is scored on a dataset once it holds every seed of
:data:`~tapas.app.experiments.plan.SEALED_SEEDS` there (its label is their mean), so a
partly generated suite gives figures on the part that exists (``coverage`` says how
much). DuckDB lets one process hold a database file: stop the generation first (it
resumes where it stopped).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from lde.starter import label_kendall
from tapas.core.lazy import LazyImport

# the store, the pipeline, scikit-learn and torch: loaded when a bench runs
lde = LazyImport("lde")
baselines = LazyImport("benchmarks.baselines")
metrics = LazyImport("predictor.metrics")
sampling = LazyImport("predictor.sampling")
pipeline = LazyImport("tapas.app.pipeline")
identity = LazyImport("tapas.app.pipeline.identity")
plan = LazyImport("tapas.app.experiments.plan")
common = LazyImport("tapas.app.cli.common")
rich_table = LazyImport("rich.table")

#: Fewer networks with a complete label than this on a dataset: it is not scored.
MIN_NETWORKS = 10


@dataclass
class SealedDataset:
    """One sealed dataset as the bench scores it: its stored row and the networks that
    hold a complete label there."""

    name: str
    dcn: float
    arch_ids: list[str]
    labels: np.ndarray
    noise_ceiling: float | None
    noise_ceiling_seeds: int


def load_sealed(db: Path, min_networks: int = MIN_NETWORKS
                ) -> tuple[list[SealedDataset], dict[str, Any], Any]:
    """The sealed datasets with their labels, the suite's coverage, and the networks
    (``{arch_id: Architecture}``) from the sealed database ``db`` (read-only)."""
    if not Path(db).exists():
        raise FileNotFoundError(f"no sealed database at {db}; generate it with "
                                "tapas experiments run --preset sealed --db PATH")
    with lde.Store(db, read_only=True) as store:
        runs = store.sql("""
            SELECT d.name AS dataset, d.dcn AS dcn, e.arch_id, e.seed, e.accuracy
            FROM experiments e JOIN datasets d ON d.id = e.dataset_id
            WHERE e.source = ? ORDER BY d.name, e.arch_id, e.seed""",
                         [plan.SEALED_SOURCE]).to_pylist()
        if not runs:
            raise ValueError(f"{db}: holds no sealed runs (source {plan.SEALED_SOURCE!r})")
        archs = store.architectures(sorted({r["arch_id"] for r in runs}))
    by: dict[str, dict[str, dict[int, float]]] = {}
    dcn: dict[str, float | None] = {}
    for r in runs:
        by.setdefault(r["dataset"], {}).setdefault(r["arch_id"], {})[r["seed"]] = r["accuracy"]
        dcn[r["dataset"]] = r["dcn"]
    ceiling = label_kendall([(r["dataset"], r["arch_id"], r["seed"], r["accuracy"])
                             for r in runs])
    out: list[SealedDataset] = []
    skipped: dict[str, str] = {}
    for name, nets in by.items():
        done = {a: s for a, s in nets.items() if set(plan.SEALED_SEEDS) <= set(s)}
        if dcn[name] is None:
            skipped[name] = "no DCN"
            continue
        if len(done) < min_networks:
            skipped[name] = f"{len(done)} networks with a complete label (< {min_networks})"
            continue
        ids = sorted(done)
        labels = np.array([np.mean([done[a][s] for s in plan.SEALED_SEEDS]) for a in ids])
        tau, k = ceiling.get(name, (None, 0))
        out.append(SealedDataset(name, float(dcn[name]), ids, labels, tau, k))
    coverage = {"runs": len(runs), "datasets_with_runs": len(by),
                "datasets_scored": len(out), "skipped": skipped,
                "labels": {d.name: len(d.arch_ids) for d in out},
                "networks": len({r["arch_id"] for r in runs})}
    return out, coverage, archs


def _selection_rows(store: Any, info: Any, pipe: Any) -> tuple[list[Any], np.ndarray,
                                                                np.ndarray, bool]:
    """The rows the pipeline trains the predictor ``info`` on: its DCN selection, seeds
    averaged, the dataset-balanced sample; and whether that selection is the predictor's
    own (its id recomputed)."""
    prov = info.provenance or {}  # a shipped predictor's own hyper-parameters are in its id
    params = prov.get("params", pipe.predictor_params)
    exps, _, pid = identity.selection(store, info.dcn, pipe.min_experiments, params)
    runs = exps.mean_over_seeds()
    rows = sampling.balanced_rows(runs.dataset_id, pipeline.MAX_TRAIN_ROWS, seed=0)
    ids = runs.arch_id[rows]
    got = store.architectures(list(dict.fromkeys(ids.tolist())))
    return [got[a] for a in ids], runs.dcn[rows], runs.accuracy[rows], pid == info.id


def score_dataset(ds: SealedDataset, archs: list[Any], base_db: Path, work: Path,
                  predictor_params: dict[str, Any] | None = None, seed: int = 0
                  ) -> dict[str, Any]:
    """TAP as a fresh default install answers ``ds`` (a copy of ``base_db``), and the
    baselines on the same selection rows; Kendall tau of each against the labels."""
    work.mkdir(parents=True)
    shutil.copy(base_db, work / "lde.duckdb")
    t0 = time.perf_counter()
    with pipeline.Pipeline(work / "lde.duckdb", model_dir=work / "models",
                  predictor_params=predictor_params) as pipe:
        model, info = pipe.select(ds.dcn, train=True)
        dcns = np.full(len(archs), ds.dcn)
        p = model.predict_interval(archs, dcns)
        tap_s = time.perf_counter() - t0
        a_tr, d_tr, y_tr, same = _selection_rows(pipe.store, info, pipe)
        history = pipeline.lde_history(pipe.store)
        fam = history.rows(archs)
        others = {
            "gbr": baselines.GBRBaseline(seed=seed).fit(a_tr, d_tr, y_tr),
            "history": baselines.MeanRankOtherBaseline().fit(a_tr, d_tr, y_tr, history=history),
            "params": baselines.ParamsBaseline().fit(a_tr, d_tr, y_tr)}
    y = ds.labels
    kt = {"tap": metrics.kendall(p.mean, y)}
    if hasattr(model, "predict_parts"):  # TAP's parts alone: lstm, trees, fixed, stack
        kt.update({f"tap_{k}": metrics.kendall(v, y)
                   for k, v in model.predict_parts(archs, dcns).items()})
    kt.update({k: metrics.kendall(m.predict(archs, dcns), y) for k, m in others.items()})
    lower, upper = np.asarray(p.lower), np.asarray(p.upper)
    return {"dcn": round(ds.dcn, 4), "n_networks": len(y), "kendall": kt,
            "tap_mae": metrics.mae(p.mean, y), "coverage_90": metrics.coverage(lower, upper, y),
            # does the ensemble spread say where TAP errs? (issue 35: an acquisition's signal)
            "spread_error_spearman": metrics.spearman(p.spread, np.abs(p.mean - y)),
            "interval_width_median": float(np.median(upper - lower)),
            "in_domain": _share(getattr(p, "in_domain", None)),
            "noise_ceiling": ds.noise_ceiling, "noise_ceiling_seeds": ds.noise_ceiling_seeds,
            "history_known": float(np.mean(fam >= 0)),
            "predictor": {"id": info.id, "dcn": round(info.dcn, 4), "cached": info.cached,
                          "origin": (info.provenance or {}).get("origin", "trained"),
                          "datasets": len(info.datasets), "n_train": info.n_train,
                          "same_selection": same},
            "train_rows": len(y_tr), "seconds": round(time.perf_counter() - t0, 1),
            "tap_seconds": round(tap_s, 1)}


def _share(flags: Any) -> float | None:
    """The share of true flags, None when there are none to count."""
    return None if flags is None else float(np.mean(np.asarray(flags, dtype=bool)))


def run_sealed(db: Path, predictor_params: dict[str, Any] | None = None, seed: int = 0,
               min_networks: int = MIN_NETWORKS,
               log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Score every sealed dataset with a complete-enough label set; one JSON-ready dict
    (stable keys: ``suite``, ``db``, ``coverage``, ``datasets``, ``kendall_mean``,
    ``coverage_90``, ``interval_width_median``, ``spread_error_spearman``,
    ``noise_ceiling_mean``, ``seconds``)."""
    say = log or (lambda s: None)
    t0 = time.perf_counter()
    sets, cov, by_id = load_sealed(db, min_networks)
    if not sets:
        raise ValueError(f"{db}: no sealed dataset has {min_networks} networks with a "
                         f"complete label yet ({cov['skipped']})")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tapas-sealed-") as tmp:
        base = Path(tmp) / "default.duckdb"
        say("a fresh default LDE (starter, NAS-Bench-201, the shipped predictors)")
        with pipeline.Pipeline(base, model_dir=Path(tmp) / "models",
                      predictor_params=predictor_params) as pipe:
            held = {d.name for d in pipe.store.datasets()}
        leaked = sorted(held & {d.name for d in sets})
        if leaked:
            raise ValueError(f"sealed datasets are in the default LDE: {leaked}")
        for i, ds in enumerate(sets):
            say(f"{ds.name}: DCN {ds.dcn:.3f}, {len(ds.arch_ids)} networks")
            out[ds.name] = score_dataset(ds, [by_id[a] for a in ds.arch_ids], base,
                                         Path(tmp) / f"d{i}", predictor_params, seed)
    models = tuple(next(iter(out.values()))["kendall"])  # TAP's parts too, when it has them
    ceil = [r["noise_ceiling"] for r in out.values() if r["noise_ceiling"] is not None]
    return {"suite": "sealed", "db": str(db), "coverage": cov, "datasets": out,
            "kendall_mean": {m: float(np.mean([r["kendall"][m] for r in out.values()]))
                             for m in models},
            "coverage_90": float(np.mean([r["coverage_90"] for r in out.values()])),
            "spread_error_spearman": float(np.mean([r["spread_error_spearman"]
                                                    for r in out.values()])),
            "interval_width_median": float(np.median(
                [r["interval_width_median"] for r in out.values()])),
            "noise_ceiling_mean": float(np.mean(ceil)) if ceil else None,
            "seconds": round(time.perf_counter() - t0, 1)}


def print_table(rep: dict[str, Any]) -> None:
    """The report as one rich table (a row per dataset and the mean)."""
    t = rich_table.Table(title=f"sealed suite, scenario C as production (Kendall tau); {rep['db']}")
    for col in ("dataset", "DCN", "nets", "tap", "gbr", "history", "params", "coverage 90",
                "width", "ceiling (seeds)"):
        t.add_column(col, justify="left" if col == "dataset" else "right")
    for name, r in rep["datasets"].items():
        k = r["kendall"]
        ceil = (f"{r['noise_ceiling']:.3f} ({r['noise_ceiling_seeds']})"
                if r["noise_ceiling"] is not None else "-")
        t.add_row(name, f"{r['dcn']:.3f}", str(r["n_networks"]),
                  *[f"{k[m]:.3f}" for m in ("tap", "gbr", "history", "params")],
                  f"{r['coverage_90']:.3f}", f"{r['interval_width_median']:.3f}", ceil)
    m = rep["kendall_mean"]
    t.add_row("mean", "", "", *[f"{m[k]:.3f}" for k in ("tap", "gbr", "history", "params")],
              f"{rep['coverage_90']:.3f}", f"{rep['interval_width_median']:.3f}",
              f"{rep['noise_ceiling_mean']:.3f}" if rep["noise_ceiling_mean"] else "-")
    common.console.print(t)
    common.console.print(f"coverage of the suite: {rep['coverage']['runs']} runs, "
                  f"{rep['coverage']['networks']} networks, labels per dataset "
                  f"{rep['coverage']['labels']}; skipped {rep['coverage']['skipped'] or 'none'}")


def main(
    db: Annotated[Path, typer.Option(help="The sealed suite's database (--preset sealed).")],
    seed: Annotated[int, typer.Option(help="Seed of the gradient boosting.")] = 0,
    min_networks: Annotated[int, typer.Option(
        "--min-networks", min=2, help="Networks with a complete label a dataset needs to be "
        "scored.")] = MIN_NETWORKS,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Report TAP, gradient boosting, the history consensus and the parameter count on
    the sealed suite (to report a change after it is chosen, never to choose one)."""
    try:
        rep = run_sealed(db, seed=seed, min_networks=min_networks,
                         log=lambda s: common.err_console.print(f"[dim]{s}[/]"))
    except (FileNotFoundError, ValueError) as e:
        common.fail(str(e))
    if as_json:
        common.print_json(rep)
    else:
        print_table(rep)


if __name__ == "__main__":
    from benchmarks import run_cli

    run_cli(main)
