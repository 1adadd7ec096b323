"""A worked Optuna ask-and-tell search whose objective is the predictor, not training.

Each trial picks one op for each of the six edges of a NAS-Bench-201 cell; the
objective is the predicted accuracy. Trials are asked for in rounds of ``batch`` and
scored in one predictor call per round (one HTTP request with the client), then told
back, so Optuna's sampler (TPE here) guides the next round::

    python -m tapas.app.adapters.optuna_example --dcn 0.6 --trials 300
    python -m tapas.app.adapters.optuna_example --url http://127.0.0.1:8000 --dataset digits

Needs ``optuna`` (``pip install optuna``; it is in the project's ``dev`` extras).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from tapas.app.client import Client
from tapas.core.arch import NB201_OPS, cell_string
from tapas.core.lazy import LazyImport

# the server side, absent from a client-only install (which runs this with --url)
local_scorer = LazyImport("tapas.app.scorer")
optuna = LazyImport("optuna")  # the adapter's own dependency, not tapas's


def suggest_cell(trial: Any) -> str:
    """The trial's NAS-Bench-201 cell: one categorical parameter per edge."""
    return cell_string([trial.suggest_categorical(f"edge{e}", list(NB201_OPS))
                        for e in range(6)])


def search(scorer: Any, *, dcn: float | None = None, dataset: str | None = None,
           n_trials: int = 200, batch: int = 20, seed: int = 0,
           num_classes: int | None = None, input_shape: Sequence[int] | None = None) -> Any:
    """Run ``n_trials`` Optuna trials scored by ``scorer``; returns the ``optuna.Study``.

    ``scorer``: :class:`tapas.app.client.Client` or :class:`tapas.app.scorer.LocalScorer`.
    Each trial records the prediction's interval and predictor id as user attributes.
    """
    if (dcn is None) == (dataset is None):
        raise ValueError("give exactly one of dcn= and dataset=")
    if n_trials < 1 or batch < 1:
        raise ValueError("n_trials and batch must be >= 1")
    target: dict[str, Any] = {"dcn": dcn} if dcn is not None else {"dataset": dataset}
    if num_classes is not None:
        target["num_classes"] = num_classes
    if input_shape is not None:
        target["input_shape"] = list(input_shape)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=min(20, n_trials), constant_liar=True))
    done = 0
    while done < n_trials:
        trials = [study.ask() for _ in range(min(batch, n_trials - done))]
        cells = [suggest_cell(t) for t in trials]
        preds = scorer.predict(cells, train=done == 0, **target)
        for t, cell, p in zip(trials, cells, preds, strict=True):
            t.set_user_attr("cell", cell)
            t.set_user_attr("lower", p.lower)
            t.set_user_attr("upper", p.upper)
            t.set_user_attr("predictor", p.predictor)
            study.tell(t, p.mean)
        done += len(trials)
    return study


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--dcn", type=float, help="target DCN")
    group.add_argument("--dataset", help="a characterised dataset's name")
    ap.add_argument("--url", help="tapas service URL (default: in process)")
    ap.add_argument("--token", help="bearer token of the service")
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    source: Any = Client(args.url, args.token) if args.url else local_scorer.LocalScorer()
    try:
        study = search(source, dcn=args.dcn, dataset=args.dataset, n_trials=args.trials,
                       batch=args.batch, seed=args.seed)
    finally:
        source.close()
    best = study.best_trial
    print(json.dumps({"cell": best.user_attrs["cell"], "predicted": best.value,
                      "interval": [best.user_attrs["lower"], best.user_attrs["upper"]],
                      "predictor": best.user_attrs["predictor"], "trials": len(study.trials)}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
