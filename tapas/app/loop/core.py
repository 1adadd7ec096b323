"""The lifelong loop: the predictor proposes, a few networks are trained, it learns, repeat.

Each round (BANANAS-style, White et al. 2021; the loop NASLib's predictor searches run):

1. a search of :data:`tapas.app.search.STRATEGIES` (regularized evolution by default)
   over the space, started from the best networks trained so far, scores
   ``search_budget`` candidates with the loop's scorer (the target's predictor, pinned,
   corrected by what the trained networks taught it: :mod:`tapas.app.loop.adapt`);
2. the ``train`` most promising candidates not trained yet are trained by the
   *trainer* (:mod:`tapas.app.loop.trainers`), which writes them to the LDE; a network
   whose result the LDE already holds (same job key) is read back, not trained;
3. the correction is refitted on every trained network's true accuracy.

The budget is ``train * rounds`` networks trained on the dataset by this trainer, those
an earlier loop left in the LDE included (round 0 of the result): a loop stopped half-way
resumes where it stopped, and a second loop on the same dataset starts from what the
first one trained.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tapas.app.loop.adapt import AdaptedScorer
from tapas.app.loop.trainers import Trainer, TrainingFailed, stored_accuracies, stored_networks
from tapas.app.pipeline import lde_history
from tapas.app.search import STRATEGIES, Pinned, check_space
from tapas.core.spaces import SearchSpace, get_space
from tapas.core.types import Target, resolve_target

if TYPE_CHECKING:
    from tapas.app.scorer import LocalScorer


@dataclass(frozen=True)
class TrainedNetwork:
    """One network the loop trained (or found trained): its true accuracy beside what
    was predicted for it when it was chosen (``predicted``: corrected; ``base``: the
    pinned predictor's own mean). ``round`` 0: trained before this loop began;
    ``reused``: its result was read from the LDE, not trained by this loop."""

    genotype: Any
    label: str
    accuracy: float
    predicted: float
    base: float
    round: int
    reused: bool

    def to_dict(self) -> dict[str, Any]:
        return {"genotype": self.genotype, "label": self.label, "accuracy": self.accuracy,
                "predicted": _finite(self.predicted), "base": _finite(self.base),
                "round": self.round, "reused": self.reused}


@dataclass(frozen=True)
class LoopStatus:
    """What :func:`lifelong_search` reports to its ``progress`` callback."""

    phase: str
    """``search`` (proposing), ``train`` (training, ``done``/``total`` of the round) or
    ``round`` (a round finished)."""
    round: int
    rounds: int
    trained: int
    budget: int
    best: float
    done: int = 0
    total: int = 0


LoopProgress = Callable[[LoopStatus], None]


@dataclass
class LoopResult:
    """The networks a loop trained, in order, and the best true accuracy after each round
    (``best_per_round[0]``: what the LDE held before, NaN when nothing)."""

    dataset: str
    space: str
    train: int
    rounds: int
    seed: int
    strategy: str
    predictor: str
    trainer: str
    trained: list[TrainedNetwork]
    best_per_round: list[float]
    seconds: float
    stop: str = "budget"
    params: dict[str, Any] = field(default_factory=dict)
    alphas: list[float] = field(default_factory=list)
    """The ridge strength the correction chose before each round's search (NaN: not
    fitted; ``inf``: a shift of every prediction alike, which leaves the ranking as it was)."""

    @property
    def best(self) -> TrainedNetwork:
        """The trained network of highest true accuracy."""
        return max(self.trained, key=lambda t: t.accuracy)

    @property
    def new(self) -> int:
        """Networks this loop trained itself."""
        return sum(1 for t in self.trained if not t.reused)

    def best_at(self, n: int) -> float:
        """The best true accuracy among the first ``n`` trained networks."""
        if n < 1 or not self.trained:
            raise ValueError(f"best_at needs 1 <= n, and a trained network; got n={n}")
        return max(t.accuracy for t in self.trained[:n])

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "space": self.space, "train": self.train,
                "rounds": self.rounds, "seed": self.seed, "strategy": self.strategy,
                "predictor": self.predictor, "trainer": self.trainer, "stop": self.stop,
                "seconds": round(self.seconds, 3), "params": self.params,
                "new": self.new, "best": self.best.to_dict(),
                "best_per_round": [_finite(b) for b in self.best_per_round],
                "alphas": [a if math.isfinite(a) else (None if math.isnan(a) else "inf")
                           for a in self.alphas],
                "trained": [t.to_dict() for t in self.trained]}

    def rows(self) -> list[dict[str, Any]]:
        """The trained networks as flat rows (the CSV/Parquet form)."""
        return [{"order": i, **t.to_dict()} for i, t in enumerate(self.trained, 1)]


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def check_loop(train: Any, rounds: Any, space: SearchSpace) -> None:
    """``ValueError`` naming the argument when the loop cannot run as asked."""
    for name, v in (("train", train), ("rounds", rounds)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive whole number of "
                             f"{'networks per round' if name == 'train' else 'rounds'}, "
                             f"got {v!r}")
    size = getattr(space, "size", None)
    if isinstance(size, int):
        if train > size:
            raise ValueError(f"train ({train} networks per round) exceeds the {space.name} "
                             f"space, which holds {size} networks")
        if train * rounds > size:
            raise ValueError(f"train x rounds ({train} x {rounds} = {train * rounds} "
                             f"networks) exceeds the {space.name} space, which holds {size}")


def lifelong_search(scorer: LocalScorer, trainer: Trainer, space: SearchSpace | str = "nb201",
                    *, train: int, rounds: int, seed: int = 0, strategy: str = "rea",
                    search_budget: int = 500, reference: int = 500, adapt: bool = True,
                    predictor: str | None = None, progress: LoopProgress | None = None,
                    **search_kw: Any) -> LoopResult:
    """Run the loop on ``trainer.dataset`` (a dataset of the scorer's LDE, with its DCN)
    until ``train * rounds`` networks of ``space`` are trained (see the module doc).

    ``scorer``: an in-process scorer (:class:`tapas.app.scorer.LocalScorer`: its LDE
    receives the experiments). ``predictor`` pins a registered predictor (default: the
    one that would answer a prediction for the dataset, trained when none covers its DCN;
    the experiments a loop adds do not retrain it, they reach it through the correction).
    ``search_budget``: predictor queries per round's search; ``reference``: random
    networks scored once to scale the correction's features; ``adapt=False`` keeps the
    zero-shot predictor throughout.
    ``search_kw`` go to the strategy (``population``, ``sample_size``, ...).
    """
    t0 = time.perf_counter()
    sp = get_space(space) if isinstance(space, str) else space
    check_space(sp)
    check_loop(train, rounds, sp)
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if search_budget < train:
        raise ValueError(f"search_budget ({search_budget}) must be at least train ({train})")
    target: Target = resolve_target(scorer, dataset=trainer.dataset)
    sp.check(target)
    store = scorer.pipeline.store
    if predictor is None:  # as a prediction would: one covering the DCN, else trained
        dcn = scorer.pipeline.target(dataset=trainer.dataset).value
        predictor = scorer.pipeline.select(dcn, exclude_datasets=scorer.exclude_datasets,
                                           train=True)[1].id
    history = lde_history(store, exclude_datasets=[trainer.dataset])
    rng = random.Random(seed)
    ref = [sp.sample(rng) for _ in range(max(0, reference))]
    model = AdaptedScorer(Pinned(scorer, predictor), sp, target,
                          history if history.groups else None, ref)
    budget = train * rounds

    trained: list[TrainedNetwork] = []
    for g, acc in stored_networks(store, trainer, sp.name)[:budget]:
        b = float(model.base_means([g])[0])
        trained.append(TrainedNetwork(g, sp.describe(g), acc, b, b, 0, True))
    keys = {sp.key(t.genotype) for t in trained}
    best_per_round = [max((t.accuracy for t in trained), default=math.nan)]
    stop, r = "budget", 0
    alphas: list[float] = []

    def report(phase: str, done: int = 0, total: int = 0) -> None:
        if progress is not None:
            progress(LoopStatus(phase, r, rounds, len(trained), budget,
                                best_per_round_max(), done, total))

    def best_per_round_max() -> float:
        return max((t.accuracy for t in trained), default=math.nan)

    while len(trained) < budget:
        r += 1
        want = min(train, budget - len(trained))
        report("search")
        if adapt and trained:
            model.fit([t.genotype for t in trained], [t.accuracy for t in trained])
        alphas.append(float(model.adapter.alpha_) if model.adapter is not None else math.nan)
        picks = _propose(model, sp, target, trained, keys, want, strategy, search_budget,
                         seed * 1009 + r, search_kw)
        if not picks:
            stop = "exhausted"
            break
        job_keys = [trainer.job_key(g) for g in picks]
        have = stored_accuracies(store, job_keys)
        todo = [g for g, k in zip(picks, job_keys, strict=True) if k not in have]
        report("train", 0, len(todo))
        if todo:
            trainer.train(todo, store, lambda d, n: report("train", d, n))
        accs = stored_accuracies(store, job_keys)
        lost = [sp.describe(g) for g, k in zip(picks, job_keys, strict=True) if k not in accs]
        if lost:
            raise TrainingFailed(f"{len(lost)} trained network(s) did not reach the LDE, "
                                 f"e.g. {lost[0]}")
        predicted = model.corrected(picks)
        base = model.base_means(picks)
        for g, k, p, b in zip(picks, job_keys, predicted, base, strict=True):
            trained.append(TrainedNetwork(g, sp.describe(g), accs[k], float(p), float(b), r,
                                          k in have))
            keys.add(sp.key(g))
        best_per_round.append(best_per_round_max())
        report("round")
    if not trained:
        raise RuntimeError("the loop trained no network")
    return LoopResult(dataset=trainer.dataset, space=sp.name, train=train, rounds=rounds,
                      seed=seed, strategy=strategy, predictor=predictor,
                      trainer=trainer.signature, trained=trained,
                      best_per_round=best_per_round, seconds=time.perf_counter() - t0,
                      stop=stop, params={"search_budget": search_budget,
                                         "reference": reference, "adapt": adapt, **search_kw},
                      alphas=alphas)


def _propose(model: AdaptedScorer, sp: SearchSpace, target: Target,
             trained: Sequence[TrainedNetwork], keys: set[str], want: int, strategy: str,
             budget: int, seed: int, search_kw: dict[str, Any]) -> list[Any]:
    """The ``want`` candidates of highest corrected mean that are not trained, found by a
    search started from the best trained networks (random untrained ones fill a search
    that found too few)."""
    start = [t.genotype for t in sorted(trained, key=lambda t: -t.accuracy)]
    start = start[:search_kw.get("population", 50)]
    res = STRATEGIES[strategy](model, sp, target=target, budget=budget, seed=seed,
                               top_k=want + len(keys), start=start, **search_kw)
    picks: dict[str, Any] = {}
    for c in res.best:
        k = sp.key(c.genotype)
        if k not in keys and len(picks) < want:
            picks[k] = c.genotype
    rng = random.Random(seed)
    for _ in range(50 * want):
        if len(picks) >= want:
            break
        g = sp.sample(rng)
        k = sp.key(g)
        if k not in keys:
            picks.setdefault(k, g)
    return list(picks.values())
