"""In-process scorer: the client's ``predict`` interface, answered by :mod:`tapas.pipeline`.

For search loops that run where the database and models are (no HTTP, no JSON):
the same call as :meth:`tapas.client.Client.predict`, returning the same
:class:`~tapas.client.Prediction` objects, so a loop written against one runs
against the other. Torch and duckdb are imported when the first prediction is made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tapas.client import DatasetInfo, Prediction

if TYPE_CHECKING:
    from lde import Store
    from tapas.arch import Architecture
    from tapas.pipeline import PredictorInfo


class LocalScorer:
    """Score architectures with the predictor the pipeline trains (or reuses) for a DCN.

    Parameters
    ----------
    store : an open ``lde.Store``; default: open the database at ``db_path`` (or the
        settings' database) for writing, since a newly trained predictor is registered.
    db_path : database file when ``store`` is None.
    exclude_datasets : datasets the predictor must not train on (e.g. the search's
        target dataset, to measure search on an unseen dataset).
    predictor_params : hyper-parameters of a predictor trained on demand.
    min_experiments : the DCN filter widens tau until this many experiments remain.
    """

    def __init__(self, store: Store | None = None, *, db_path: str | Path | None = None,
                 exclude_datasets: Sequence[str] = (),
                 predictor_params: dict[str, Any] | None = None,
                 min_experiments: int | None = None) -> None:
        self._store = store
        self._own_store = store is None
        self.db_path = db_path
        self.exclude_datasets = tuple(exclude_datasets)
        self.predictor_params = dict(predictor_params or {})
        self.min_experiments = min_experiments
        self._pinned: dict[float, tuple[Any, PredictorInfo]] = {}

    # -------------------------------------------------------------- plumbing
    @property
    def store(self) -> Store:
        if self._store is None:
            from tapas.pipeline import open_store

            self._store = open_store(self.db_path)
        return self._store

    def close(self) -> None:
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> LocalScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"exclude_datasets": self.exclude_datasets,
                              "params": self.predictor_params or None}
        if self.min_experiments is not None:
            kw["min_experiments"] = self.min_experiments
        return kw

    # -------------------------------------------------------------- scorer interface
    def dataset_info(self, ident: str) -> DatasetInfo:
        """A stored dataset by id or name (``LookupError`` when unknown)."""
        row = self.store.dataset(ident)
        if row is None:
            raise LookupError(f"no dataset {ident!r} in the LDE; characterise it first "
                              "(tapas dcn DATASET)")
        return DatasetInfo(id=row.id, name=row.name, n_classes=int(row.n_classes),
                           input_shape=tuple(int(s) for s in row.input_shape),  # type: ignore
                           dcn=None if row.dcn is None else float(row.dcn),
                           n_samples=row.n_samples, source=row.source)

    def train_predictor(self, *, dcn: float | None = None, dataset: str | None = None,
                        force: bool = False,
                        progress: Callable[[int, int], None] | None = None) -> PredictorInfo:
        """Train (or reuse) the predictor for a DCN or a dataset's DCN, ahead of a search;
        ``progress(epoch, epochs)`` follows a training."""
        from tapas.pipeline import get_predictor

        target, _, _ = self._target(dcn, dataset, None, None)
        model, info = get_predictor(self.store, target, force=force, progress=progress,
                                    **self._kwargs())
        self._pinned[target] = (model, info)
        return info

    def _target(self, dcn: float | None, dataset: str | None, num_classes: int | None,
                input_shape: Sequence[int] | None) -> tuple[float, int, tuple[int, int, int]]:
        """The target DCN, classes and input shape (the search's own rules)."""
        from tapas.search import resolve_target

        tg = resolve_target(self, dcn=dcn, dataset=dataset, num_classes=num_classes,
                            input_shape=input_shape)
        target = tg.dcn if tg.dcn is not None else self.dataset_info(tg.dataset).dcn
        return float(target), tg.num_classes, tg.input_shape  # type: ignore[arg-type]

    def predict(self, archs: Sequence[Any], *, dcn: float | None = None,
                dataset: str | None = None, num_classes: int | None = None,
                input_shape: Sequence[int] | None = None,
                members: bool = False, predictor: str | None = None) -> list[Prediction]:
        """Predicted accuracy of each architecture (same call and answer as the client's);
        ``members=True`` adds each ensemble member's prediction; ``predictor`` pins a
        registered predictor by id (``LookupError`` when unknown)."""
        target, k, shape = self._target(dcn, dataset, num_classes, input_shape)
        parsed = parse_archs(archs, k, shape)
        if not parsed:
            return []
        if predictor is not None:
            from tapas.pipeline import registered_predictor

            model, info = registered_predictor(self.store, predictor)
        else:
            model, info = self._predictor(target)
        p = model.predict_interval(parsed, target)
        cov = float(p.coverage)
        mem: list[Any] = ([tuple(float(v) for v in col) for col in p.members.T]
                          if members and p.members is not None else [None] * len(parsed))
        return [Prediction(arch_id=a.id, mean=float(m), spread=float(s), lower=float(lo),
                           upper=float(hi), predictor=info.id, dcn=target, coverage=cov,
                           members=mb)
                for a, m, s, lo, hi, mb in zip(parsed, p.mean, p.spread, p.lower, p.upper, mem,
                                               strict=True)]

    def _predictor(self, dcn: float) -> tuple[Any, PredictorInfo]:
        """The pipeline's predictor for ``dcn``, resolved once per scorer (see
        :meth:`refresh`), so a search loop neither re-checks the database on every call
        nor changes predictor half-way."""
        hit = self._pinned.get(dcn)
        if hit is None:
            from tapas.pipeline import get_predictor

            hit = self._pinned[dcn] = get_predictor(self.store, dcn, **self._kwargs())
        return hit

    def refresh(self) -> None:
        """Forget the predictors resolved so far (e.g. after ingesting new experiments)."""
        self._pinned.clear()


def parse_archs(archs: Sequence[Any], num_classes: int,
                input_shape: tuple[int, int, int]) -> list[Architecture]:
    """Cell strings (expanded for ``num_classes``/``input_shape``), IR dicts/JSON text or
    ``Architecture`` objects as Architectures; errors name the item (``archs[i]: ...``)."""
    from tapas.arch import ArchError, Architecture, expand, is_cell_spec

    out = []
    for i, obj in enumerate(archs):
        try:
            if isinstance(obj, Architecture):
                out.append(obj)
            elif is_cell_spec(obj):  # NAS-Bench-201/-101 cells, DARTS genotypes
                out.append(expand(obj.strip() if isinstance(obj, str) else obj, num_classes,
                                  tuple(input_shape)))
            elif isinstance(obj, str | bytes):
                out.append(Architecture.from_json(obj))
            elif isinstance(obj, dict):
                out.append(Architecture.from_dict(obj))
            else:
                raise ArchError(f"expected a cell string, IR dict/JSON or Architecture, got "
                                f"{type(obj).__name__}")
        except ArchError as e:
            raise ArchError(f"archs[{i}]: {e}") from None
    return out


__all__ = ["LocalScorer", "parse_archs"]
