"""A NASLib-style predictor: ``fit(xtrain, ytrain)`` / ``query(xtest)`` over NAS-Bench-201.

NASLib's predictor-based search strategies (BANANAS, predictor-guided evolution, the
predictor evaluator) call a predictor object with ``fit`` and ``query``. This adapter
gives them the TAP: ``fit`` trains a :class:`predictor.TAPRegressor` on the labelled
cells (a model-based predictor, like NASLib's LSTM/GCN ones), and with a ``scorer``
(the HTTP :class:`tapas.client.Client` or the in-process
:class:`tapas.scorer.LocalScorer`) and no training data ``query`` answers zero-shot
with the service's predictor for a DCN or dataset (the train-less mode).

Architectures may be given as NAS-Bench-201 cell strings, as NASLib's six op indices
(op order ``skip_connect, none, nor_conv_3x3, nor_conv_1x1, avg_pool_3x3``; edges
(1,2), (1,3), (1,4), (2,3), (2,4), (3,4)), or as objects with NASLib's
``get_op_indices()``. Accuracies may be percentages (NASLib's convention) or
fractions; ``query`` answers on the scale ``fit`` saw (percent for a scorer unless
``percent=False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
_EDGES = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))
# cell-string order of the edges: node 1 <- 0; node 2 <- 0, 1; node 3 <- 0, 1, 2
_STRING_ORDER = sorted(range(6), key=lambda k: (_EDGES[k][1], _EDGES[k][0]))


def op_indices_to_cell(op_indices: Sequence[int]) -> str:
    """NASLib's six op indices as the NAS-Bench-201 cell string."""
    idx = [int(i) for i in op_indices]
    if len(idx) != 6 or not all(0 <= i < len(NASLIB_OPS) for i in idx):
        raise ValueError(f"expected six op indices in 0..4, got {list(op_indices)!r}")
    ops = [NASLIB_OPS[idx[k]] for k in _STRING_ORDER]
    from tapas.arch import cell_string

    return cell_string(ops)


def cell_to_op_indices(cell: str) -> tuple[int, ...]:
    """The NAS-Bench-201 cell string as NASLib's six op indices (inverse of the above)."""
    from tapas.arch import parse_cell

    by_edge = {(j + 1, i + 2): op for i, node in enumerate(parse_cell(cell))
               for op, j in node}
    return tuple(NASLIB_OPS.index(by_edge[e]) for e in _EDGES)


def to_cell(x: Any) -> str:
    """A cell string from whatever NASLib hands over (string, indices, or graph object)."""
    if isinstance(x, str):
        from tapas.arch import parse_cell

        parse_cell(x)  # raises ArchError naming what is wrong
        return x.strip()
    get = getattr(x, "get_op_indices", None)
    if callable(get):
        return op_indices_to_cell(get())
    if isinstance(x, Sequence | np.ndarray):
        return op_indices_to_cell(list(x))
    raise TypeError(f"cannot read a NAS-Bench-201 cell from {type(x).__name__}; give a cell "
                    "string, six op indices, or an object with get_op_indices()")


class TapasNASLibPredictor:
    """TAP behind NASLib's predictor interface (NAS-Bench-201 search space).

    Parameters
    ----------
    dcn : DCN of the target dataset (the TAP's dataset input). With a ``scorer`` and
        no ``fit``, give this or ``dataset``.
    dataset : a stored dataset's name (zero-shot mode through ``scorer``).
    num_classes, input_size, in_channels : the network each cell is expanded into
        (default: NAS-Bench-201's CIFAR-10 network).
    scorer : a :class:`tapas.client.Client` or :class:`tapas.scorer.LocalScorer` for
        zero-shot queries.
    hparams : :class:`predictor.TAPRegressor` hyper-parameters for ``fit``.
    percent : with a scorer and no ``fit``, answer in percent (NASLib's scale).
    """

    def __init__(self, dcn: float | None = None, dataset: str | None = None,
                 num_classes: int = 10, input_size: int = 32, in_channels: int = 3,
                 scorer: Any = None, hparams: dict[str, Any] | None = None,
                 percent: bool = True, ss_type: str = "nasbench201") -> None:
        if ss_type != "nasbench201":
            raise ValueError(f"only the nasbench201 search space is supported, got {ss_type!r}")
        self.dcn = dcn
        self.dataset = dataset
        self.num_classes = num_classes
        self.input_size = input_size
        self.in_channels = in_channels
        self.scorer = scorer
        self.hparams = dict(hparams or {})
        self.percent = percent
        self.ss_type = ss_type
        self.model_: Any = None
        self.scale_ = 100.0 if percent else 1.0

    # ------------------------------------------------------------------ NASLib API
    def get_data_reqs(self) -> dict[str, Any]:
        """What NASLib must supply: final accuracies only (no learning curves, no
        zero-cost scores, no unlabelled data)."""
        return {"requires_partial_lc": False, "metric": None, "requires_hyperparameters": False,
                "hyperparams": None, "unlabeled": False, "unlabeled_factor": 0}

    def pre_process(self) -> None:
        """NASLib calls this before fitting; nothing to prepare."""

    def set_hyperparams(self, params: dict[str, Any]) -> None:
        self.hparams = dict(params)

    def get_hyperparams(self) -> dict[str, Any]:
        return dict(self.hparams)

    def reset_hyperparams(self) -> None:
        self.hparams = {}

    def _archs(self, xs: Sequence[Any]) -> list[Any]:
        from tapas.arch import from_nb201

        return [from_nb201(to_cell(x), self.num_classes, self.input_size,
                           in_channels=self.in_channels) for x in xs]

    def fit(self, xtrain: Sequence[Any], ytrain: Sequence[float],
            train_info: Any = None, **kwargs: Any) -> TapasNASLibPredictor:
        """Train the TAP on labelled cells (percent or fraction accuracies)."""
        from predictor.tap import TAPRegressor

        y = np.asarray(ytrain, dtype=np.float64)
        if len(xtrain) != len(y) or len(y) < 2:
            raise ValueError(f"need at least two labelled cells with one accuracy each, got "
                             f"{len(xtrain)} cells and {len(y)} accuracies")
        if not np.isfinite(y).all() or y.min() < 0 or y.max() > 100:
            raise ValueError("accuracies must be finite, in [0, 1] or in percent [0, 100]")
        self.scale_ = 100.0 if y.max() > 1.0 else 1.0
        dcn = 0.5 if self.dcn is None else float(self.dcn)
        self.model_ = TAPRegressor(**self.hparams).fit(self._archs(xtrain), dcn, y / self.scale_)
        return self

    def query(self, xtest: Sequence[Any], info: Any = None, **kwargs: Any) -> np.ndarray:
        """Predicted accuracy of each cell (on the scale of ``fit``'s accuracies)."""
        if len(xtest) == 0:
            return np.zeros(0)
        if self.model_ is not None:
            dcn = 0.5 if self.dcn is None else float(self.dcn)
            return np.asarray(self.model_.predict(self._archs(xtest), dcn)) * self.scale_
        if self.scorer is None:
            raise RuntimeError("call fit() first, or give a scorer for zero-shot queries")
        target = {"dcn": self.dcn} if self.dataset is None else {"dataset": self.dataset}
        cells = [to_cell(x) for x in xtest]
        preds = self.scorer.predict(cells, num_classes=self.num_classes,
                                    input_shape=[self.in_channels, self.input_size,
                                                 self.input_size], train=True, **target)
        return np.array([p.mean for p in preds]) * self.scale_


__all__ = ["NASLIB_OPS", "TapasNASLibPredictor", "cell_to_op_indices", "op_indices_to_cell",
           "to_cell"]
