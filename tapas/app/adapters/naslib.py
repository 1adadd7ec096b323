"""A NASLib-style predictor: ``fit(xtrain, ytrain)`` / ``query(xtest)`` over NAS-Bench-201.

NASLib's predictor-based search strategies (BANANAS, predictor-guided evolution, the
predictor evaluator) call a predictor object with ``fit`` and ``query``. This adapter
gives them the TAP: ``fit`` trains a :class:`predictor.TAPRegressor` on the labelled
cells (a model-based predictor, like NASLib's LSTM/GCN ones), and with a ``scorer``
(the HTTP :class:`tapas.app.client.Client` or the in-process
:class:`tapas.app.scorer.LocalScorer`) and no training data ``query`` answers zero-shot
with the service's predictor for a DCN or dataset (the train-less mode).

Architectures may be given as NAS-Bench-201 cell strings, as NASLib's six op indices
(op order ``skip_connect, none, nor_conv_3x3, nor_conv_1x1, avg_pool_3x3``; edges
(1,2), (1,3), (1,4), (2,3), (2,4), (3,4)), or as objects with NASLib's
``get_op_indices()``. With ``ss_type="nasbench301"`` (the DARTS space) they are DARTS
genotypes (printed text, ``Genotype`` namedtuples), NASLib's compact form (two tuples
of eight ``(input, op index)`` pairs, op order ``max_pool_3x3, avg_pool_3x3,
skip_connect, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5``) or objects
with ``get_compact()``, expanded at NAS-Bench-301's size (C=32, 8 cells) unless
``channels``/``layers`` say otherwise; with ``ss_type="nasbench101"`` they are
``{"matrix", "ops"}`` specs or objects with NASLib's ``get_spec()``. Accuracies may be
percentages (NASLib's convention) or fractions; ``query`` answers on the scale ``fit``
saw (percent for a scorer unless ``percent=False``). ``query_members`` (and
:class:`TapasNASLibEnsemble`'s ``query``) answers every ensemble member, for
BANANAS-style acquisitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tapas.core.arch import cell_string, parse_cell, parse_genotype
from tapas.core.arch.darts import genotype_string
from tapas.core.arch.nb101 import parse_cell as parse_nb101
from tapas.core.lazy import LazyImport
from tapas.core.spaces import SPACES, parse_archs

tap = LazyImport("predictor.tap")  # torch and scikit-learn: loaded by fit()

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
    return cell_string(ops)


def cell_to_op_indices(cell: str) -> tuple[int, ...]:
    """The NAS-Bench-201 cell string as NASLib's six op indices (inverse of the above)."""
    by_edge = {(j + 1, i + 2): op for i, node in enumerate(parse_cell(cell))
               for op, j in node}
    return tuple(NASLIB_OPS.index(by_edge[e]) for e in _EDGES)


def to_cell(x: Any) -> str:
    """A cell string from whatever NASLib hands over (string, indices, or graph object)."""
    if isinstance(x, str):
        return SPACES["nb201"].parse(x)  # ArchError names what is wrong
    get = getattr(x, "get_op_indices", None)
    if callable(get):
        return op_indices_to_cell(get())
    if isinstance(x, Sequence | np.ndarray):
        return op_indices_to_cell(list(x))
    raise TypeError(f"cannot read a NAS-Bench-201 cell from {type(x).__name__}; give a cell "
                    "string, six op indices, or an object with get_op_indices()")


NASLIB_DARTS_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                    "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
SS_TYPES = ("nasbench201", "nasbench301", "nasbench101")


def compact_to_genotype(compact: Sequence[Sequence[Sequence[int]]]) -> str:
    """NASLib's compact DARTS form as the genotype text the DARTS code prints."""
    if len(compact) != 2 or any(len(cell) != 8 for cell in compact):
        raise ValueError("a compact DARTS architecture is two cells of eight (input, op) pairs")
    cells = []
    for cell in compact:
        edges = []
        for src, op in cell:
            if not 0 <= int(op) < len(NASLIB_DARTS_OPS):
                raise ValueError(f"op index {op} is not in 0..{len(NASLIB_DARTS_OPS) - 1}")
            edges.append((NASLIB_DARTS_OPS[int(op)], int(src)))
        cells.append(edges)
    return genotype_string({"normal": cells[0], "normal_concat": [2, 3, 4, 5],
                            "reduce": cells[1], "reduce_concat": [2, 3, 4, 5]})


def to_spec(x: Any, ss_type: str, channels: int = 32, layers: int = 8) -> Any:
    """The cell spec tapas reads (:func:`tapas.core.spaces.read_notation`) from what NASLib
    hands over for ``ss_type``; NAS-Bench-201 cells stay cell strings."""

    if ss_type == "nasbench201":
        return to_cell(x)
    if ss_type == "nasbench301":
        get = getattr(x, "get_compact", None)
        if callable(get):
            x = get()
        if isinstance(x, str):
            text = x.strip()
        elif all(hasattr(x, k) for k in ("normal", "normal_concat", "reduce", "reduce_concat")):
            text = compact_genotype_text(x)
        elif isinstance(x, Sequence | np.ndarray):
            text = compact_to_genotype(x)
        else:
            raise TypeError(f"cannot read a DARTS architecture from {type(x).__name__}")
        parse_genotype(text)  # ArchError names what is wrong
        return {"genotype": text, "C": channels, "layers": layers}
    get = getattr(x, "get_spec", None)
    if callable(get):
        x = get()
    if not isinstance(x, dict) or "matrix" not in x or "ops" not in x:
        raise TypeError(f"cannot read a NAS-Bench-101 cell from {type(x).__name__}; give "
                        "{'matrix': ..., 'ops': ...} or an object with get_spec()")
    spec = {"matrix": np.asarray(x["matrix"]).astype(int).tolist(), "ops": list(x["ops"])}
    parse_nb101(spec)
    return spec


def compact_genotype_text(g: Any) -> str:
    """A ``Genotype`` namedtuple (the DARTS code's) as its printed text."""
    return genotype_string({"normal": [tuple(e) for e in g.normal],
                            "normal_concat": list(g.normal_concat),
                            "reduce": [tuple(e) for e in g.reduce],
                            "reduce_concat": list(g.reduce_concat)})


class TapasNASLibPredictor:
    """TAP behind NASLib's predictor interface (NAS-Bench-201, -301/DARTS and -101).

    Parameters
    ----------
    dcn : DCN of the target dataset (the TAP's dataset input). With a ``scorer`` and
        no ``fit``, give this or ``dataset``.
    dataset : a stored dataset's name (zero-shot mode through ``scorer``).
    num_classes, input_size, in_channels : the network each cell is expanded into
        (default: the benchmark's CIFAR-10 network).
    ss_type : ``nasbench201``, ``nasbench301`` (DARTS) or ``nasbench101``.
    channels, layers : size of DARTS networks (default NAS-Bench-301's C=32, 8 cells).
    scorer : a :class:`tapas.app.client.Client` or :class:`tapas.app.scorer.LocalScorer` for
        zero-shot queries.
    hparams : :class:`predictor.TAPRegressor` hyper-parameters for ``fit``.
    percent : with a scorer and no ``fit``, answer in percent (NASLib's scale).
    """

    def __init__(self, dcn: float | None = None, dataset: str | None = None,
                 num_classes: int = 10, input_size: int = 32, in_channels: int = 3,
                 scorer: Any = None, hparams: dict[str, Any] | None = None,
                 percent: bool = True, ss_type: str = "nasbench201", channels: int = 32,
                 layers: int = 8) -> None:
        if ss_type not in SS_TYPES:
            raise ValueError(f"ss_type must be one of {', '.join(SS_TYPES)}, got {ss_type!r}")
        self.dcn = dcn
        self.dataset = dataset
        self.num_classes = num_classes
        self.input_size = input_size
        self.in_channels = in_channels
        self.scorer = scorer
        self.hparams = dict(hparams or {})
        self.percent = percent
        self.ss_type = ss_type
        self.channels = channels
        self.layers = layers
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

    def _specs(self, xs: Sequence[Any]) -> list[Any]:
        return [to_spec(x, self.ss_type, self.channels, self.layers) for x in xs]

    def _archs(self, xs: Sequence[Any]) -> list[Any]:
        shape = (self.in_channels, self.input_size, self.input_size)
        return parse_archs(self._specs(xs), self.num_classes, shape)

    def fit(self, xtrain: Sequence[Any], ytrain: Sequence[float],
            train_info: Any = None, **kwargs: Any) -> TapasNASLibPredictor:
        """Train the TAP on labelled cells (percent or fraction accuracies)."""
        y = np.asarray(ytrain, dtype=np.float64)
        if len(xtrain) != len(y) or len(y) < 2:
            raise ValueError(f"need at least two labelled cells with one accuracy each, got "
                             f"{len(xtrain)} cells and {len(y)} accuracies")
        if not np.isfinite(y).all() or y.min() < 0 or y.max() > 100:
            raise ValueError("accuracies must be finite, in [0, 1] or in percent [0, 100]")
        self.scale_ = 100.0 if y.max() > 1.0 else 1.0
        dcn = 0.5 if self.dcn is None else float(self.dcn)
        self.model_ = tap.TAPRegressor(**self.hparams).fit(self._archs(xtrain), dcn,
                                                           y / self.scale_)
        return self

    def query(self, xtest: Sequence[Any], info: Any = None, **kwargs: Any) -> np.ndarray:
        """Predicted accuracy of each cell (on the scale of ``fit``'s accuracies)."""
        return self.query_members(xtest).mean(0)

    def query_members(self, xtest: Sequence[Any]) -> np.ndarray:
        """Each ensemble member's prediction, shape (K, N): what BANANAS-style
        acquisitions (independent Thompson sampling, UCB) compute mean and spread from."""
        if len(xtest) == 0:
            return np.zeros((1, 0))
        if self.model_ is not None:
            dcn = 0.5 if self.dcn is None else float(self.dcn)
            return np.asarray(self.model_.predict_members(self._archs(xtest), dcn)) * self.scale_
        if self.scorer is None:
            raise RuntimeError("call fit() first, or give a scorer for zero-shot queries")
        target = {"dcn": self.dcn} if self.dataset is None else {"dataset": self.dataset}
        preds = self.scorer.predict(self._specs(xtest), num_classes=self.num_classes,
                                    input_shape=[self.in_channels, self.input_size,
                                                 self.input_size], members=True, train=True,
                                    **target)
        return np.array([p.members for p in preds]).T * self.scale_


class TapasNASLibEnsemble(TapasNASLibPredictor):
    """The same predictor behind NASLib's ``Ensemble`` contract: ``query`` answers one row
    per member, shape (K, N), as BANANAS's acquisition functions expect."""

    def query(self, xtest: Sequence[Any], info: Any = None, **kwargs: Any) -> np.ndarray:
        return self.query_members(xtest)


__all__ = ["NASLIB_DARTS_OPS", "NASLIB_OPS", "SS_TYPES", "TapasNASLibEnsemble",
           "TapasNASLibPredictor", "cell_to_op_indices", "compact_to_genotype",
           "op_indices_to_cell", "to_cell", "to_spec"]
