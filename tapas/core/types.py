"""The types every part of tapas shares, and the rules that go with them.

Dependency-free (the standard library and the pure-Python ``tapas.core.arch``), so the HTTP
client, the search, the in-process scorer, the service and the pipeline all speak the
same records:

* :class:`Target` and :func:`resolve_target`: what a prediction is for (a DCN or a
  stored dataset, plus the classes and input shape the networks are built for), with
  the one defaulting rule (:data:`DEFAULT_NUM_CLASSES`, :data:`DEFAULT_INPUT_SHAPE`).
* :class:`DatasetInfo`, :class:`PredictorInfo`, :class:`Prediction`: a stored
  dataset, a trained predictor's provenance, one architecture's predicted accuracy (the
  one shape a prediction has, from the model's output to the wire and the CLI's rows).
* :class:`Query`, :class:`Answer`: a predict request, parsed, and its answer (the
  predictor, the values its networks share, a :class:`Prediction` each).
* :func:`covering_first`: which registered or loaded predictor answers a DCN.
* :class:`ArchListError`: the one error for a list of architectures with invalid items
  (read by :func:`tapas.core.spaces.parse_archs`), each named by its path.
* :func:`check_predictor_id`, :func:`is_model_file_name`: a predictor id and its model
  file's name are names, never paths (an id from a file or a request is checked first).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, get_args, get_origin, get_type_hints

from tapas.core.arch import Architecture
from tapas.core.arch.cache import set_budget, usage
from tapas.core.arch.ops import ArchError
from tapas.core.errors import DcnPending, Invalid, NoPredictor, PredictorNotFound

DEFAULT_NUM_CLASSES = 10
"""Classes of the networks a DCN-only target builds (CIFAR-10's)."""
DEFAULT_INPUT_SHAPE: tuple[int, int, int] = (3, 32, 32)
"""Input of the networks a DCN-only target builds (CIFAR-10's)."""
MAX_INPUT_SIDE = 4096
"""Largest input dimension a target may name (a bigger one is a typo, not a dataset)."""


class TargetError(Invalid):
    """A prediction target that cannot be resolved; ``field`` names the bad argument
    (``dcn``, ``dataset``, ``input_shape``, ``num_classes``), ``code`` says why."""

    def __init__(self, message: str, field: str, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


class DcnPendingError(DcnPending, TargetError):
    """A target naming a dataset whose DCN is not computed yet (a conflict, not bad
    input: it resolves once the DCN job finishes)."""


PREDICTOR_ID = re.compile(r"p_[0-9a-f]{16}")
"""Every predictor id: ``p_`` and 16 hex digits (``tapas.app.pipeline.predictor_key``)."""
MODEL_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")
"""A registered model file: one plain name inside the model directory (no folder)."""


class PredictorIdError(PredictorNotFound, Invalid):
    """A predictor id that is not one: it names no predictor (a ``PredictorNotFound``) and
    is bad input (a ``ValueError``); the message quotes it, shortened."""


def _quoted(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 20] + f"...({len(text):,} chars)"


def check_predictor_id(pid: object, what: str = "predictor id") -> str:
    """``pid`` when it is a predictor id, else :class:`PredictorIdError`: ids reach file
    names and lookups, so one from a model file, a request or a command line is checked
    here first (``../x`` or ``/etc/x`` never becomes a path)."""
    if isinstance(pid, str) and PREDICTOR_ID.fullmatch(pid):
        return pid
    raise PredictorIdError(f"{what} {_quoted(pid)} is not a predictor id (p_ and 16 hex "
                           "digits; tapas predictor list shows them)")


def is_model_file_name(name: object) -> bool:
    """Whether ``name`` is a plain file name a registry row may store (no folder, no
    ``..``, not hidden): such a name always resolves inside the model directory."""
    return isinstance(name, str) and MODEL_FILE_NAME.fullmatch(name) is not None


NoPredictorError = NoPredictor
"""The former name of :class:`tapas.core.errors.NoPredictor` (the same class)."""


# ------------------------------------------------------------------------- records
@dataclass(frozen=True)
class DatasetInfo:
    """A stored dataset: what a prediction for ``dataset`` uses (DCN, classes, shape)."""

    id: str
    name: str
    n_classes: int
    input_shape: tuple[int, int, int]
    dcn: float | None
    n_samples: int | None = None
    source: str | None = None
    fingerprint: str | None = None
    dcn_meta: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetInfo:
        return cls(id=str(d["id"]), name=str(d["name"]), n_classes=int(d["n_classes"]),
                   input_shape=tuple(int(s) for s in d["input_shape"]),  # type: ignore[arg-type]
                   dcn=None if d.get("dcn") is None else float(d["dcn"]),
                   n_samples=d.get("n_samples"), source=d.get("source"),
                   fingerprint=d.get("fingerprint"), dcn_meta=d.get("dcn_meta"))

    @classmethod
    def from_row(cls, row: Any) -> DatasetInfo:
        """From any object with the same attributes (e.g. ``lde.DatasetRow``)."""
        dcn = getattr(row, "dcn", None)
        return cls(id=row.id, name=row.name, n_classes=int(row.n_classes),
                   input_shape=tuple(int(s) for s in row.input_shape),  # type: ignore[arg-type]
                   dcn=None if dcn is None else float(dcn),
                   n_samples=getattr(row, "n_samples", None), source=getattr(row, "source", None),
                   fingerprint=getattr(row, "fingerprint", None),
                   dcn_meta=getattr(row, "dcn_meta", None))

    def to_dict(self) -> dict[str, Any]:
        """The API's ``Dataset`` object."""
        return {"id": self.id, "name": self.name, "fingerprint": self.fingerprint,
                "n_samples": self.n_samples, "n_classes": self.n_classes,
                "input_shape": list(self.input_shape), "dcn": self.dcn,
                "dcn_meta": self.dcn_meta, "source": self.source}


@dataclass(frozen=True)
class PredictorInfo:
    """A trained predictor: where it came from; reported beside each prediction.

    ``datasets`` are the datasets its DCN filter selected, ``[dcn_lo, dcn_hi]`` the DCN
    range of its training experiments (it answers targets inside it), ``cached`` whether
    this answer reused a predictor trained earlier.
    """

    id: str
    dcn: float
    tau: float
    dcn_lo: float
    dcn_hi: float
    snapshot: str
    n_train: int
    datasets: tuple[str, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)
    artifact: str = ""
    cached: bool | None = None
    created: str | None = None
    provenance: dict[str, Any] | None = None

    def covers(self, dcn: float) -> bool:
        return self.dcn_lo - 1e-9 <= dcn <= self.dcn_hi + 1e-9

    def with_(self, **changes: Any) -> PredictorInfo:
        return PredictorInfo(**{**asdict(self), **changes})

    def to_dict(self) -> dict[str, Any]:
        """The API's ``Predictor`` object (``provenance`` only when known)."""
        d = asdict(self)
        d["datasets"] = list(self.datasets)
        d["metrics"] = dict(self.metrics or {})
        if d["provenance"] is None:
            del d["provenance"]
        del d["artifact"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PredictorInfo:
        prov = d.get("provenance")
        return cls(id=str(d["id"]), dcn=float(d["dcn"]), tau=float(d["tau"]),
                   dcn_lo=float(d["dcn_lo"]), dcn_hi=float(d["dcn_hi"]),
                   snapshot=str(d.get("snapshot", "")), n_train=int(d.get("n_train", 0)),
                   datasets=tuple(d.get("datasets") or (prov or {}).get("datasets") or ()),
                   metrics=dict(d.get("metrics") or {}), artifact=str(d.get("artifact", "")),
                   cached=d.get("cached"), created=d.get("created"), provenance=prov)


def covering_first(infos: Iterable[PredictorInfo], dcn: float) -> list[PredictorInfo]:
    """The predictors of ``infos`` whose DCN range covers ``dcn``, in the order they answer:
    the one trained for the nearest DCN first, then the newest registration, then by id.
    The one rule for the registry (:meth:`lde.Store.covering_predictors`) and the
    predictors a pipeline holds in memory."""
    out = sorted((i for i in infos if i.covers(dcn)), key=lambda i: i.id)
    out.sort(key=lambda i: i.created or "", reverse=True)  # ISO timestamps sort as text
    out.sort(key=lambda i: abs(i.dcn - dcn))
    return out


def _answer_level(doc: str) -> dict[str, Any]:
    """Field metadata of a :class:`Prediction` field that is the whole answer's (the same for
    every network of a request): on the wire it is the response's, not each result's."""
    return {"answer": True, "doc": doc}


@dataclass(frozen=True)
class Prediction:
    """One architecture's predicted final accuracy (fractions in [0, 1]): the one shape a
    prediction has from the model to the wire. The HTTP schema, the wire form
    (:meth:`wire`), the client's parse (:meth:`from_wire`), the CLI's rows (:meth:`row`)
    and the search's candidates are all derived from these fields, so a new field is
    declared here and filled in where the model's output is converted
    (:func:`tapas.app.pipeline.to_predictions`). ``doc`` in a field's metadata is its API text.

    ``spread`` is the ensemble's standard deviation; ``[lower, upper]`` the calibrated
    interval of nominal ``coverage``; ``predictor`` the id of the model that answered;
    ``members`` each ensemble member's prediction when asked for (``members=True``);
    ``in_domain`` whether the network and target lie inside what the predictor's training
    experiments cover (input shape, classes, DCN, op types, network size), and if not,
    ``domain_reasons`` says what lies outside (an extrapolation: the number may still rank
    well, but the interval's coverage does not hold there; it is widened).
    """

    arch_id: str = field(metadata={"doc": "The architecture's content hash.", "wire": "id"})
    mean: float = field(metadata={"doc": "Predicted final accuracy in [0, 1]."})
    spread: float = field(metadata={"doc": "Standard deviation over the ensemble's members."})
    lower: float = field(metadata={"doc": "Lower bound of the calibrated interval."})
    upper: float = field(metadata={"doc": "Upper bound of the calibrated interval."})
    predictor: str = field(metadata=_answer_level("The id of the predictor that answered."))
    dcn: float = field(metadata=_answer_level("The target's DCN."))
    coverage: float = field(metadata=_answer_level("Nominal coverage of [lower, upper]."))
    members: tuple[float, ...] | None = field(default=None, metadata={
        "doc": "Each ensemble member's prediction (when the request asks for them)."})
    in_domain: bool = field(default=True, metadata={
        "doc": "Whether the network and the target lie inside what the predictor's training "
               "experiments cover (input shape, classes, DCN, op types, network size). False: "
               "an extrapolation; the interval is widened and its coverage is not guaranteed."})
    domain_reasons: tuple[str, ...] = field(default=(), metadata={
        "doc": "What lies outside the training domain, one sentence each (empty when in "
               "domain)."})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name), finite=False) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prediction:
        """Inverse of :meth:`to_dict`; other keys are ignored, a missing optional field
        takes its default."""
        return cls(**{f.name: _decode(_HINTS[f.name], d[f.name]) for f in fields(cls)
                      if f.name in d})

    def wire(self) -> dict[str, Any]:
        """This network's entry of a ``/v1/predict`` answer's ``results``: every
        per-network field (the answer-level ones are the response's, :meth:`Answer.wire`)
        by its wire name, a non-finite number as null, an optional field that is None
        (``members`` unless asked for) left out."""
        return {key: _plain(getattr(self, name)) for name, key, optional in _WIRE
                if not (optional and getattr(self, name) is None)}

    @classmethod
    def from_wire(cls, result: dict[str, Any], answer: dict[str, Any]) -> Prediction:
        """Inverse of :meth:`wire`: ``answer`` holds the answer-level fields (the predictor's
        id, the DCN, the coverage); a missing optional field takes its default, null a
        number's NaN."""
        kw = {f.name: answer[f.name] for f in ANSWER_FIELDS}
        kw.update({name: _decode(_HINTS[name], result[key]) for name, key, _ in _WIRE
                   if key in result})
        return cls(**kw)

    def row(self) -> dict[str, Any]:
        """This prediction as a flat table row (the CLI's JSON, CSV and Parquet rows): the
        per-network fields that have a value, and the predictor's id."""
        out = {f.name: _plain(getattr(self, f.name), finite=False) for f in NETWORK_FIELDS
               if getattr(self, f.name) is not None}
        out["predictor"] = self.predictor
        return out


ANSWER_FIELDS = tuple(f for f in fields(Prediction) if f.metadata.get("answer"))
"""The :class:`Prediction` fields every network of one answer shares."""
NETWORK_FIELDS = tuple(f for f in fields(Prediction) if not f.metadata.get("answer"))
"""The :class:`Prediction` fields of each network."""
_HINTS = get_type_hints(Prediction)
_WIRE = tuple((f.name, f.metadata.get("wire", f.name), f.default is None)
              for f in NETWORK_FIELDS)
"""Per network field: its name, its wire name, whether None leaves it out."""


@dataclass(frozen=True)
class Answer:
    """One predict request's answer: the predictor that answered, the values every network
    shares (their :class:`Prediction` fields of the same names repeat them, so each stands
    alone) and one :class:`Prediction` per network in order. :meth:`wire` is the body of
    ``POST /v1/predict``; a field's API text is the :class:`Prediction` field's of the same
    name, else ``doc`` in its metadata."""

    predictor: PredictorInfo
    dcn: float
    coverage: float
    predictions: tuple[Prediction, ...] = ()
    latency_ms: float | None = field(default=None, metadata={
        "doc": "Milliseconds the predictor took to answer: choosing it and the forward pass "
               "(shared with the requests batched alongside), not the time in the queue."})

    def _own(self, finite: bool) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name), finite) for f in fields(self)
                if f.name not in ("predictor", "predictions")}

    def summary(self) -> dict[str, Any]:
        """The answer's own fields as plain values, the predictor as its id (the CLI's)."""
        return {"predictor": self.predictor.id, **self._own(finite=False)}

    def wire(self) -> dict[str, Any]:
        """The ``/v1/predict`` response: the predictor object, the shared fields and
        ``results`` (:meth:`Prediction.wire`)."""
        return {"predictor": self.predictor.to_dict(), **self._own(finite=True),
                "results": [p.wire() for p in self.predictions]}

    @staticmethod
    def predictions_from_wire(body: dict[str, Any]) -> list[Prediction]:
        """The predictions of a ``/v1/predict`` response (the client's parse, inverse of
        :meth:`wire`); of the predictor object only its id is read."""
        shared = {f.name: _decode(_ANSWER_HINTS[f.name], body[f.name]) for f in fields(Answer)
                  if f.name not in ("predictor", "predictions") and f.name in body}
        shared["predictor"] = str(body["predictor"]["id"])
        return [Prediction.from_wire(r, shared) for r in body["results"]]


_ANSWER_HINTS = get_type_hints(Answer)


@dataclass(frozen=True)
class Query:
    """One predict request, its networks parsed: the target's DCN, the predictor pinned by
    id (None: the one covering the DCN), whether each member's prediction is wanted, the
    datasets the predictor must not have trained on, and whether to train one when none
    covers the DCN. What :meth:`tapas.app.pipeline.Pipeline.answer_many` answers."""

    archs: tuple[Architecture, ...]
    dcn: float
    predictor: str | None = None
    members: bool = False
    exclude_datasets: tuple[str, ...] = ()
    train: bool = False


def _plain(v: Any, finite: bool = True) -> Any:
    """A JSON value: tuples as lists; with ``finite``, a non-finite number (never expected)
    as null rather than invalid JSON."""
    if isinstance(v, tuple):
        return [_plain(x, finite) for x in v]
    if finite and isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _decode(hint: Any, v: Any) -> Any:
    """A JSON value as the field's type: null a number's NaN (or an optional's None), a
    list a tuple."""
    args = get_args(hint)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return None if v is None else _decode(rest[0], v)
    if get_origin(hint) is tuple:
        return tuple(_decode(args[0], x) for x in v or ())
    if hint is float:
        return math.nan if v is None else float(v)
    return hint(v)



# ------------------------------------------------------------------------- target
@dataclass(frozen=True)
class Target:
    """What the predictions are for: a DCN or a stored dataset, plus the classes and
    input shape the networks are built for. ``dataset_dcn`` is the stored dataset's DCN
    when the target names one (resolved once; not part of the target's identity)."""

    dcn: float | None
    dataset: str | None
    num_classes: int
    input_shape: tuple[int, int, int]
    dataset_dcn: float | None = field(default=None, compare=False, repr=False)

    @property
    def value(self) -> float:
        """The DCN the predictions are for (the dataset's when the target names one)."""
        v = self.dcn if self.dcn is not None else self.dataset_dcn
        if v is None:
            raise DcnPendingError(f"dataset {self.dataset!r} has no DCN yet; characterise "
                                  "it first", "dataset")
        return float(v)

    def predict_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"dcn": self.dcn} if self.dataset is None else {
            "dataset": self.dataset}
        kw["num_classes"] = self.num_classes
        kw["input_shape"] = list(self.input_shape)
        return kw

    def to_dict(self) -> dict[str, Any]:
        return {"dcn": self.dcn, "dataset": self.dataset, "num_classes": self.num_classes,
                "input_shape": list(self.input_shape)}


def check_dcn_or_dataset(dcn: float | None, dataset: str | None) -> None:
    """Exactly one of ``dcn`` and ``dataset``; a DCN in [0, 1] (:class:`TargetError`)."""
    if (dcn is None) == (dataset is None):
        raise TargetError("give exactly one of dcn= and dataset=", "dcn", "dcn_or_dataset")
    if dcn is not None and not 0.0 <= float(dcn) <= 1.0:
        raise TargetError(f"dcn must lie in [0, 1], got {dcn!r}", "dcn")


def _whole(v: Any, field: str, where: str | None = None) -> int:
    """``v`` as an int; :class:`TargetError` of ``field`` naming ``where`` (e.g.
    ``input_shape[1]``) unless it is a whole number (``1e999``, NaN, ``2.5`` and text
    are errors, not an ``OverflowError``)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return int(v)
    raise TargetError(f"{where or field} must be a whole number, got {str(v)[:40]}", field)


def check_shape(input_shape: Sequence[Any], field: str = "input_shape") -> tuple[int, ...]:
    """``input_shape`` as ints; :class:`TargetError` naming ``field[i]`` for an entry that is
    not a whole number."""
    try:
        items = list(input_shape)
    except TypeError:
        raise TargetError(f"{field} must be a list [C, H, W], got {input_shape!r}",
                          field) from None
    return tuple(_whole(v, field, f"{field}[{i}]") for i, v in enumerate(items))


_SHAPE_TEXT = re.compile(r"\[?\s*(\d+)\s*[x,]\s*(\d+)\s*[x,]\s*(\d+)\s*\]?", re.IGNORECASE)


def parse_input_shape(value: str | Sequence[Any],
                      field: str = "input_shape") -> tuple[int, int, int]:
    """The one input-shape syntax, ``3x32x32`` (C x H x W), for every command, file and
    call; ``3,32,32`` and ``[3, 32, 32]`` (older commands' and CSV files' spellings) and
    sequences of three whole numbers are read too. :class:`TargetError` naming ``field``
    and the value otherwise."""
    given = value
    if isinstance(value, str):
        m = _SHAPE_TEXT.fullmatch(value.strip())
        if m is None:
            raise TargetError(f"{field} must be C x H x W like 3x32x32, got {_quoted(given)}",
                              field)
        value = [int(g) for g in m.groups()]
    shape = check_shape(value, field)
    if len(shape) != 3 or min(shape) < 1:
        raise TargetError(f"{field} must be three positive sizes C x H x W like 3x32x32, got "
                          f"{_quoted(given)}", field)
    return shape  # type: ignore[return-value]


def check_classes(num_classes: Any, field: str = "num_classes") -> int:
    """``num_classes`` as an int (:data:`DEFAULT_NUM_CLASSES` when None); :class:`TargetError`
    unless it is a whole number (the range is the IR's to check)."""
    return DEFAULT_NUM_CLASSES if num_classes is None else _whole(num_classes, field)


def resolve_target(lookup: Callable[[str], DatasetInfo] | Any, *, dcn: float | None = None,
                   dataset: str | None = None, num_classes: int | None = None,
                   input_shape: Sequence[int] | None = None) -> Target:
    """The one target rule: a DCN (networks built for ``num_classes``/``input_shape``,
    default :data:`DEFAULT_NUM_CLASSES` and :data:`DEFAULT_INPUT_SHAPE`) or a stored
    dataset (its DCN, classes and shape; explicit ``num_classes``/``input_shape`` win).

    ``lookup``: ``dataset -> DatasetInfo`` (raising when unknown), or an object with a
    ``dataset_info`` method (a scorer). Raises :class:`TargetError` naming the field.
    """
    check_dcn_or_dataset(dcn, dataset)
    k, shape = DEFAULT_NUM_CLASSES, DEFAULT_INPUT_SHAPE
    ds_dcn = None
    if dataset is not None:
        get = lookup if callable(lookup) else lookup.dataset_info
        info = get(dataset)
        if info.dcn is None:
            raise DcnPendingError(f"dataset {dataset!r} has no DCN yet; characterise it "
                                  "first", "dataset")
        k, shape, ds_dcn = int(info.n_classes), tuple(info.input_shape), float(info.dcn)
    if num_classes is not None:
        k = check_classes(num_classes)
        if k < 1:
            raise TargetError(f"num_classes must be >= 1, got {num_classes!r}", "num_classes")
    if input_shape is not None:
        shape = check_shape(input_shape)
        if len(shape) != 3:
            raise TargetError(f"input_shape must be [C, H, W], got {list(input_shape)}",
                              "input_shape")
        if min(shape) < 1 or max(shape) > MAX_INPUT_SIDE:
            raise TargetError(f"input_shape entries must lie in [1, {MAX_INPUT_SIDE}], got "
                              f"{list(shape)}", "input_shape")
    return Target(None if dcn is None else float(dcn), dataset, k, shape,  # type: ignore
                  ds_dcn)


# ------------------------------------------------------------------------- archs
MAX_REPORTED = 20
"""Invalid architectures described one by one in an :class:`ArchListError`."""


def set_cache_budget(total_bytes: int) -> None:
    """One memory budget for every cache that can grow (:mod:`tapas.core.arch.cache`: the
    notations read (:mod:`tapas.core.spaces.notation`), the NAS-Bench-201 and DARTS
    expansions, the LDE's rebuilt networks, the predictors pipelines hold, ...), which
    share it as one LRU pool; the least recently used entries go until it fits."""
    set_budget(total_bytes)


def cache_bytes() -> int:
    """Estimated bytes held by all the caches in the pool now."""
    return sum(usage().values())


def join_path(prefix: str, sub: str | None) -> str:
    """``archs[3]`` + ``layers[2].kernel`` -> ``archs[3].layers[2].kernel``."""
    if not sub:
        return prefix
    return prefix + (sub if sub.startswith("[") else "." + sub)


class ArchListError(ArchError):
    """Some items of a list of architectures are invalid. ``path`` names the first (e.g.
    ``archs[3].layers[2].kernel``); ``errors`` lists up to :data:`MAX_REPORTED` as
    ``{"path", "message", "index"}``."""

    def __init__(self, message: str, path: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.item_path = path
        self.errors = self.details = errors

    @property
    def path(self) -> str:
        return self.item_path


__all__ = ["ANSWER_FIELDS", "DEFAULT_INPUT_SHAPE", "DEFAULT_NUM_CLASSES", "MODEL_FILE_NAME",
           "NETWORK_FIELDS", "PREDICTOR_ID", "Answer", "ArchListError", "DatasetInfo",
           "NoPredictorError", "Prediction", "PredictorIdError", "PredictorInfo", "Query",
           "Target", "TargetError", "check_classes", "check_dcn_or_dataset", "covering_first",
           "check_predictor_id", "check_shape", "is_model_file_name", "join_path",
           "parse_input_shape", "resolve_target"]
