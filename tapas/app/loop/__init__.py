"""The lifelong loop (issue 35): a search that trains a few networks, learns from them,
and finds the best with the fewest trainings.

* :mod:`tapas.app.loop.core` -- :func:`lifelong_search`, its rounds and result;
* :mod:`tapas.app.loop.adapt` -- the loop's scorer: the pinned predictor corrected by
  the trained networks (:class:`predictor.fewshot.FewShotAdapter`);
* :mod:`tapas.app.loop.trainers` -- where true accuracies come from: the experiment
  runner (real training) or a table of published results, always through the LDE.

In process only (it writes the LDE it scores from)::

    from tapas.app.loop import RunnerTrainer, lifelong_search
    from tapas.app.scorer import LocalScorer

    with LocalScorer() as s:
        res = lifelong_search(s, RunnerTrainer("digits?per_class=75"), "chain",
                              train=4, rounds=3)
    print(res.best.label, res.best.accuracy, res.best_per_round)
"""

from __future__ import annotations

from tapas.app.loop.adapt import AdaptedScorer
from tapas.app.loop.core import (
    LoopProgress,
    LoopResult,
    LoopStatus,
    TrainedNetwork,
    check_loop,
    lifelong_search,
)
from tapas.app.loop.trainers import (
    LOOP_SOURCE,
    NB201_COLUMNS,
    LookupTrainer,
    RunnerTrainer,
    Trainer,
    TrainingFailed,
    nb201_table,
    stored_accuracies,
    stored_networks,
)

__all__ = ["LOOP_SOURCE", "NB201_COLUMNS", "AdaptedScorer", "LookupTrainer", "LoopProgress",
           "LoopResult", "LoopStatus", "RunnerTrainer", "TrainedNetwork", "Trainer",
           "TrainingFailed", "check_loop", "lifelong_search", "nb201_table",
           "stored_accuracies", "stored_networks"]
