"""Random search, regularized evolution and Thompson sampling driven by a predictor.

Both strategies take any *scorer*: an object with ``predict(archs, dcn=|dataset=,
num_classes=, input_shape=) -> list[Prediction]`` and ``dataset_info(name)``, i.e.
:class:`tapas.app.client.Client` (over HTTP) or :class:`tapas.app.scorer.LocalScorer`
(in process). Candidates are scored in batches (one request per batch). A scorer
with ``train_predictor(dcn=|dataset=)`` is asked for the target's predictor first
(trained, or found ready), so the search's first batch does not wait on training.

Budget: the number of distinct architectures sent to the scorer. A genotype seen
before is answered from the search's own cache and costs nothing, so a search never
asks the predictor twice about the same network. A search may stop before its budget
is spent: evolution once it has converged (``stop == "converged"``: for
``20 * population`` children in a row every mutation was already scored), either
strategy when the space holds no unscored member (``"exhausted"``).

Regularized evolution follows Real et al. (2019, "aging evolution"): a population
of ``population`` members; each child is a mutation of the best of ``sample_size``
members drawn at random; every new child joins the population and the *oldest*
member leaves. To score in batches, new children are collected until ``batch_size``
of them can be scored together, as with that many parallel workers (a child seen
before is answered from the cache and joins the population at once).

Thompson sampling (``thompson``) is BANANAS's acquisition (White et al. 2021,
"independent Thompson sampling") with the predictor's ensemble as the posterior:
every round, each architecture scored so far gets one independent draw from
N(mean, spread) (``spread``: the members' standard deviation), the ``parents``
highest draws are mutated into ``batch_size`` new children, and those are scored.
An architecture the members disagree on is explored more often than its mean alone
would earn.

Objectives (what "best" means): ``mean``; ``lower``/``upper``, the calibrated
interval's bounds (clipped to [0, 1], so ``upper`` ties at 1.0 for wide intervals);
``ucb``, ``mean + UCB_KAPPA * spread`` on the members, never clipped, which ranks
optimistic candidates without ties.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tapas.core.spaces import SearchSpace, get_space
from tapas.core.tables import parquet_metadata, write_parquet, write_text
from tapas.core.types import DatasetInfo, Prediction, Target, resolve_target

OBJECTIVES = ("mean", "lower", "upper", "ucb")
UCB_KAPPA = 1.0
"""Members' standard deviations added to the mean by the ``ucb`` objective."""
Progress = Callable[[int, int, float], None]
"""``progress(queries_used, budget, best_so_far)``."""


class Scorer(Protocol):
    def predict(self, archs: Sequence[Any], *, dcn: float | None = None,
                dataset: str | None = None, num_classes: int | None = None,
                input_shape: Sequence[int] | None = None) -> list[Prediction]: ...

    def dataset_info(self, ident: str) -> DatasetInfo: ...


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Candidate:
    """One scored architecture: its genotype, how the space describes it, the predictor's
    answer for it (whose fields read as the candidate's: ``c.mean``) and the 1-based index
    of the predictor query that scored it."""

    genotype: Any
    label: str
    prediction: Prediction
    query: int

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "prediction":  # copying, unpickling
            raise AttributeError(name)
        return getattr(self.prediction, name)

    def to_dict(self) -> dict[str, Any]:
        """Flat: the genotype, the label, the prediction's fields that have a value, the
        query."""
        pred = {k: v for k, v in self.prediction.to_dict().items() if v is not None}
        return {"genotype": self.genotype, "label": self.label, **pred, "query": self.query}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        """Inverse of :meth:`to_dict` (a result saved before the DCN was recorded per
        candidate reads it as NaN)."""
        return cls(d["genotype"], d["label"], Prediction.from_dict({"dcn": math.nan, **d}),
                   int(d["query"]))


@dataclass
class SearchResult:
    """What a search found: the best architectures by predicted accuracy, and how the
    best-so-far evolved (``history[i]``: best objective after ``i + 1`` queries)."""

    strategy: str
    space: str
    target: Target
    budget: int
    queries: int
    seed: int
    objective: str
    seconds: float
    best: list[Candidate]
    history: list[float]
    params: dict[str, Any] = field(default_factory=dict)
    predictors: list[str] = field(default_factory=list)
    stop: str = "budget"
    """Why it stopped: ``budget`` (spent), ``converged`` (evolution, Thompson sampling:
    every mutation tried was already scored) or ``exhausted`` (no unscored member
    found)."""
    means: list[float] = field(default_factory=list)
    """Predicted mean of every query in order (``means[i]``: query ``i + 1``)."""

    @property
    def chosen(self) -> Candidate:
        """The architecture the search returns (highest objective)."""
        return self.best[0]

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "space": self.space, "target": self.target.to_dict(),
                "budget": self.budget, "queries": self.queries, "seed": self.seed,
                "objective": self.objective, "stop": self.stop,
                "seconds": round(self.seconds, 4),
                "params": self.params, "predictors": self.predictors,
                "best": [c.to_dict() for c in self.best], "history": self.history,
                "means": self.means}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchResult:
        """Inverse of :meth:`to_dict`."""
        try:
            t = d["target"]
            target = Target(t.get("dcn"), t.get("dataset"), int(t["num_classes"]),
                            tuple(int(s) for s in t["input_shape"]))  # type: ignore[arg-type]
            return cls(strategy=d["strategy"], space=d["space"], target=target,
                       budget=int(d["budget"]), queries=int(d["queries"]), seed=int(d["seed"]),
                       objective=d["objective"], seconds=float(d["seconds"]),
                       best=[Candidate.from_dict(c) for c in d["best"]],
                       history=[float(h) for h in d["history"]],
                       params=dict(d.get("params") or {}),
                       predictors=list(d.get("predictors") or []), stop=d.get("stop", "budget"),
                       means=[float(m) for m in d.get("means") or []])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a saved search result: {type(e).__name__} {e}") from None

    def rows(self) -> list[dict[str, Any]]:
        """The best architectures as flat table rows (rank first; the CSV/Parquet form)."""
        return [{"rank": i, **c.to_dict()} for i, c in enumerate(self.best, 1)]

    def save(self, path: str | Path) -> Path:
        """Write the result: ``.json`` (everything) or ``.parquet`` (the best architectures
        as rows, everything in the file's metadata); both load back with :meth:`load`."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix.lower() in (".parquet", ".pq"):
            return write_parquet(self.rows(), p, metadata=self.to_dict())
        return write_text(json.dumps(self.to_dict(), indent=1) + "\n", p)

    @classmethod
    def load(cls, path: str | Path) -> SearchResult:
        """A result saved by :meth:`save` or ``tapas search --out`` (JSON or Parquet)."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"no saved search result at {p}")
        if p.suffix.lower() in (".parquet", ".pq"):
            meta = parquet_metadata(p)
            if not isinstance(meta, dict):
                raise ValueError(f"{p}: a Parquet file without a tapas search result in its "
                                 "metadata")
            return cls.from_dict(meta)
        if p.suffix.lower() == ".csv":
            raise ValueError(f"{p}: a CSV holds only the table of best architectures; save "
                             "as .json or .parquet to load the result back")
        try:
            d = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{p}: not JSON ({e})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{p}: not a saved search result (a JSON object is expected)")
        return cls.from_dict(d)


class Pinned:
    """``scorer`` with every prediction answered by one registered predictor: a search
    whose scores do not change when another predictor is trained meanwhile."""

    def __init__(self, scorer: Scorer, predictor: str) -> None:
        self.scorer, self.predictor = scorer, str(predictor)

    def predict(self, archs: Sequence[Any], **kw: Any) -> list[Prediction]:
        return self.scorer.predict(archs, predictor=self.predictor, **kw)  # type: ignore

    def dataset_info(self, ident: str) -> DatasetInfo:
        return self.scorer.dataset_info(ident)


# ---------------------------------------------------------------------------- evaluator
class _Evaluator:
    """Scores genotypes in batches with a cache, a query budget and a best-so-far log."""

    def __init__(self, scorer: Scorer, space: SearchSpace, target: Target, budget: int,
                 objective: str, progress: Progress | None) -> None:
        self.scorer, self.space, self.target = scorer, space, target
        self.budget, self.objective, self.progress = budget, objective, progress
        self.cache: dict[str, Candidate] = {}
        self.history: list[float] = []
        self.best = float("-inf")
        self.predictors: list[str] = []
        self.means: list[float] = []
        self._kw = target.predict_kwargs()

    @property
    def queries(self) -> int:
        return len(self.cache)

    @property
    def left(self) -> int:
        return self.budget - self.queries

    def fitness(self, c: Candidate) -> float:
        return objective_value(c, self.objective)

    def score(self, genotypes: Sequence[Any]) -> list[Candidate | None]:
        """Candidates for ``genotypes`` (cached ones free); None past the budget."""
        keys = [self.space.key(g) for g in genotypes]
        new: dict[str, Any] = {}
        for k, g in zip(keys, genotypes, strict=True):
            if k not in self.cache and k not in new and len(new) < self.left:
                new[k] = g
        if new:
            queries = [self.space.query(g, self.target) for g in new.values()]
            preds = self.scorer.predict(queries, **self._kw)
            if len(preds) != len(queries):
                raise RuntimeError(f"the scorer answered {len(preds)} predictions for "
                                   f"{len(queries)} architectures")
            for (k, g), p in zip(new.items(), preds, strict=True):
                c = Candidate(g, self.space.describe(g), p, query=len(self.cache) + 1)
                self.cache[k] = c
                self.means.append(c.mean)
                if p.predictor not in self.predictors:
                    self.predictors.append(p.predictor)
                f = self.fitness(c)
                if f > self.best:
                    self.best = f
                self.history.append(self.best)
            if self.progress is not None:
                self.progress(self.queries, self.budget, self.best)
        return [self.cache.get(k) for k in keys]

    def top(self, k: int) -> list[Candidate]:
        return sorted(self.cache.values(), key=lambda c: (-self.fitness(c), c.query))[:k]


def objective_value(c: Candidate | Prediction, objective: str) -> float:
    """The value a search maximises for ``c`` (see the module doc's objectives)."""
    if objective == "ucb":
        return c.mean + UCB_KAPPA * c.spread
    return {"mean": c.mean, "lower": c.lower, "upper": c.upper}[objective]


def _check(budget: int, batch_size: int, objective: str, top_k: int) -> None:
    if not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive number of predictor queries, got {budget!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")


def _setup(scorer: Scorer, space: SearchSpace | str, target: Target | None, budget: int,
           objective: str, progress: Progress | None, **kw: Any) -> _Evaluator:
    """The evaluator of a search in ``space`` for ``target`` (else the one ``kw`` names),
    its predictor trained (or found) before the first batch is scored."""
    sp = get_space(space) if isinstance(space, str) else space
    check_space(sp)
    tg = target if target is not None else resolve_target(scorer, **kw)
    sp.check(tg)
    prepare = getattr(scorer, "train_predictor", None)
    if callable(prepare):  # train (or find) the predictor before the first batch is scored
        prepare(**({"dcn": tg.dcn} if tg.dataset is None else {"dataset": tg.dataset}))
    return _Evaluator(scorer, sp, tg, budget, objective, progress)


def _initial(sp: SearchSpace, rng: random.Random, population: int, budget: int,
             start: Sequence[Any] = ()) -> list[Any]:
    """The initial population: the distinct ``start`` genotypes (up to ``budget``), then
    random members up to ``min(population, budget)`` (fewer in a space too small to draw
    them from in ``50 * population`` draws)."""
    init: dict[str, Any] = {}
    for g in start:
        if len(init) < budget:
            init.setdefault(sp.key(g), g)
    draws = 0
    while len(init) < min(population, budget) and draws < 50 * population:
        g = sp.sample(rng)
        draws += 1
        init.setdefault(sp.key(g), g)
    return list(init.values())


# ---------------------------------------------------------------------------- strategies
def random_search(scorer: Scorer, space: SearchSpace | str = "nb201", *, budget: int = 1000,
                  seed: int = 0, dcn: float | None = None, dataset: str | None = None,
                  num_classes: int | None = None, input_shape: Sequence[int] | None = None,
                  target: Target | None = None, batch_size: int = 100,
                  objective: str = "mean", top_k: int = 10,
                  progress: Progress | None = None, start: Sequence[Any] = ()) -> SearchResult:
    """Score ``budget`` distinct architectures (the ``start`` genotypes first, then random
    ones); return the best ones."""
    _check(budget, batch_size, objective, top_k)
    ev = _setup(scorer, space, target, budget, objective, progress, dcn=dcn, dataset=dataset,
                num_classes=num_classes, input_shape=input_shape)
    sp, tg, rng, t0 = ev.space, ev.target, random.Random(seed), time.perf_counter()
    first = _initial(sp, rng, 0, budget, start)
    for i in range(0, len(first), batch_size):
        ev.score(first[i:i + batch_size])
    draws, max_draws = 0, 50 * budget + 1000  # stops in spaces smaller than the budget
    while ev.left > 0:
        if draws >= max_draws:
            break
        batch: dict[str, Any] = {}
        while len(batch) < min(batch_size, ev.left) and draws < max_draws:
            g = sp.sample(rng)
            draws += 1
            k = sp.key(g)
            if k not in ev.cache:
                batch.setdefault(k, g)
        if batch:
            ev.score(list(batch.values()))
    return _result("random", sp, tg, budget, seed, objective, t0, ev, top_k,
                   {"batch_size": batch_size}, "budget" if ev.left == 0 else "exhausted")


def regularized_evolution(scorer: Scorer, space: SearchSpace | str = "nb201", *,
                          budget: int = 1000, seed: int = 0, dcn: float | None = None,
                          dataset: str | None = None, num_classes: int | None = None,
                          input_shape: Sequence[int] | None = None,
                          target: Target | None = None, population: int = 50,
                          sample_size: int = 10, batch_size: int = 10,
                          objective: str = "mean", top_k: int = 10,
                          progress: Progress | None = None,
                          start: Sequence[Any] = ()) -> SearchResult:
    """Aging evolution (Real et al. 2019) with a budget of ``budget`` predictor queries.

    The ``start`` genotypes and random architectures up to ``population`` start the
    population (the newest ``population`` of them stay); then each child is a
    mutation of the best of ``sample_size`` random members, joins the population and
    pushes out the oldest member. New children are scored ``batch_size`` at a time.
    """
    _check(budget, batch_size, objective, top_k)
    if population < 2 or not 1 <= sample_size <= population:
        raise ValueError(f"need population >= 2 and 1 <= sample_size <= population, got "
                         f"population={population}, sample_size={sample_size}")
    ev = _setup(scorer, space, target, budget, objective, progress, dcn=dcn, dataset=dataset,
                num_classes=num_classes, input_shape=input_shape)
    sp, tg, rng, t0 = ev.space, ev.target, random.Random(seed), time.perf_counter()

    init = _initial(sp, rng, population, budget, start)
    pop: deque[tuple[Any, float]] = deque(maxlen=population)
    for start in range(0, len(init), batch_size * 10):
        chunk = init[start:start + batch_size * 10]
        for g, c in zip(chunk, ev.score(chunk), strict=True):
            if c is not None:
                pop.append((g, ev.fitness(c)))

    # evolution: a child already scored costs nothing and joins at once (the oldest
    # member leaves); new children wait until ``batch_size`` of them can be scored
    # together (as if bred by parallel workers: they join when their scores come back)
    pending: dict[str, Any] = {}
    # converged: this many children in a row were all scored before (the population
    # sits on one optimum and every mutation of it is known); the search stops there
    stall_limit, stalled = 20 * population, 0
    stop = "budget"
    while ev.left > 0 and len(pop) >= 2:
        if stalled >= stall_limit:
            stop = "converged"
            break
        tournament = rng.sample(list(pop), min(sample_size, len(pop)))
        parent = max(tournament, key=lambda m: m[1])
        child = sp.mutate(parent[0], rng)
        k = sp.key(child)
        if k in ev.cache or k in pending:
            stalled += 1
            if k in ev.cache:
                pop.append((child, ev.fitness(ev.cache[k])))
            continue
        stalled = 0
        pending[k] = child
        if len(pending) >= min(batch_size, ev.left):
            kids = list(pending.values())
            pending = {}
            for g, c in zip(kids, ev.score(kids), strict=True):
                if c is not None:
                    pop.append((g, ev.fitness(c)))
    if pending and ev.left > 0:
        ev.score(list(pending.values()))
    return _result("rea", sp, tg, budget, seed, objective, t0, ev, top_k,
                   {"population": population, "sample_size": sample_size,
                    "batch_size": batch_size}, stop)


def thompson_search(scorer: Scorer, space: SearchSpace | str = "nb201", *,
                    budget: int = 1000, seed: int = 0, dcn: float | None = None,
                    dataset: str | None = None, num_classes: int | None = None,
                    input_shape: Sequence[int] | None = None,
                    target: Target | None = None, population: int = 50, parents: int = 10,
                    batch_size: int = 10, objective: str = "mean", top_k: int = 10,
                    progress: Progress | None = None,
                    start: Sequence[Any] = ()) -> SearchResult:
    """BANANAS-style search with independent Thompson sampling over the ensemble.

    The ``start`` genotypes and random architectures up to ``population`` are scored
    first; then each round draws one
    sample from N(mean, spread) for every scored architecture, mutates the ``parents``
    best draws into ``batch_size`` new children and scores them. The result ranks by
    ``objective`` as the other strategies do.
    """
    _check(budget, batch_size, objective, top_k)
    if population < 1 or parents < 1:
        raise ValueError(f"need population >= 1 and parents >= 1, got population="
                         f"{population}, parents={parents}")
    ev = _setup(scorer, space, target, budget, objective, progress, dcn=dcn, dataset=dataset,
                num_classes=num_classes, input_shape=input_shape)
    sp, tg, rng, t0 = ev.space, ev.target, random.Random(seed), time.perf_counter()
    ev.score(_initial(sp, rng, population, budget, start))
    stop = "budget"
    while ev.left > 0:
        scored = list(ev.cache.values())
        if not scored:
            stop = "exhausted"
            break
        sampled = sorted(scored, key=lambda c: -rng.gauss(c.mean, max(c.spread, 1e-12)))
        kids: dict[str, Any] = {}
        want = min(batch_size, ev.left)
        width = parents  # widened down the sampled ranking once those parents' neighbours
        while len(kids) < want:  # are all scored (instead of stopping early)
            chosen = sampled[:width]
            for t in range(10 * want):
                child = sp.mutate(chosen[t % len(chosen)].genotype, rng)
                k = sp.key(child)
                if k not in ev.cache:
                    kids.setdefault(k, child)
                    if len(kids) >= want:
                        break
            if width >= len(sampled):
                break
            width = min(2 * width, len(sampled))
        if not kids:  # every mutation of every scored network is known
            stop = "converged"
            break
        ev.score(list(kids.values()))
    return _result("thompson", sp, tg, budget, seed, objective, t0, ev, top_k,
                   {"population": population, "parents": parents, "batch_size": batch_size},
                   stop)


STRATEGIES: dict[str, Callable[..., SearchResult]] = {
    "rea": regularized_evolution, "random": random_search, "thompson": thompson_search}


def _result(strategy: str, sp: SearchSpace, tg: Target, budget: int, seed: int, objective: str,
            t0: float, ev: _Evaluator, top_k: int, params: dict[str, Any],
            stop: str) -> SearchResult:
    if not ev.cache:
        raise RuntimeError("the search scored no architecture")
    return SearchResult(strategy=strategy, space=sp.name, target=tg, budget=budget,
                        queries=ev.queries, seed=seed, objective=objective,
                        seconds=time.perf_counter() - t0, best=ev.top(top_k),
                        history=list(ev.history), params=params,
                        predictors=list(ev.predictors), stop=stop, means=list(ev.means))


_SPACE_METHODS = ("check", "sample", "mutate", "key", "query", "describe")


def check_space(space: Any) -> None:
    """Fail early, naming what is missing, when ``space`` lacks a :class:`SearchSpace`
    method (instead of an ``AttributeError`` in the middle of a search)."""
    missing = [m for m in _SPACE_METHODS if not callable(getattr(space, m, None))]
    if missing or not isinstance(getattr(space, "name", None), str):
        what = ", ".join(missing + ([] if isinstance(getattr(space, "name", None), str)
                                    else ["name (a str attribute)"]))
        raise TypeError(f"{type(space).__name__} is not a search space: it lacks {what}; "
                        "see tapas.app.search.SearchSpace for what each method does")
