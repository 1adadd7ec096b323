"""Request and response bodies of the HTTP API (pydantic; they generate the OpenAPI schema)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from tapas.core.config import MAX_CURVE_LEN, MAX_EPOCHS, MAX_HPARAMS_BYTES, SEED_RANGE
from tapas.core.records import check_hparams
from tapas.core.types import NETWORK_FIELDS, Answer, Prediction

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    """Request bodies reject unknown fields, so typos surface as errors with their path,
    and NaN or infinite numbers (``Infinity``, ``1e999``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# ----------------------------------------------------------------------------- errors
class ErrorInfo(BaseModel):
    code: str = Field(description="Machine-readable, e.g. `invalid_architecture`.")
    message: str
    path: str | None = Field(None, description="The offending field, e.g. "
                             "`body.archs[3].layers[2].kernel`.")
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


# ----------------------------------------------------------------------------- health
class Health(BaseModel):
    status: Literal["ok", "starting", "failed"]
    database: Literal["open"] | None = Field(None, description="`open` once the database is.")
    predictor: str | None = Field(None, description="Id of the default predictor once loaded.")
    default: Literal["loaded", "training", "none", "failed", "off"] | None = Field(
        None, description="The default predictor: `loaded`; `training` (being loaded or "
        "trained as a job: the service already answers what other predictors cover); "
        "`none` (the database holds no experiments yet); `failed`; `off` (not asked for).")
    detail: str | None = None


# ------------------------------------------------------------------------------- jobs
class Job(BaseModel):
    id: str
    kind: str
    description: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled", "lost"]
    progress: float = Field(description="Fraction done, 0..1.")
    message: str
    created: datetime
    started: datetime | None = None
    finished: datetime | None = None
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None


class JobList(BaseModel):
    items: list[Job]


# --------------------------------------------------------------------------- datasets
class DatasetSpec(_Strict):
    spec: str = Field(min_length=1, max_length=500, examples=["digits", "mnist1d?label_noise=0.2"],
                      description="A built-in dataset (digits, mnist5k, mnist1d), optionally "
                                  "with variant parameters after `?`.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the DCN's probe networks.")
    force: bool = Field(False, description="Recompute the DCN even when it is cached.")


class Dataset(BaseModel):
    id: str
    name: str
    fingerprint: str | None = None
    n_samples: int | None = None
    n_classes: int
    input_shape: list[int]
    dcn: float | None = Field(None, description="None until the DCN job has finished.")
    dcn_meta: dict[str, Any] | None = None
    source: str


class DatasetList(BaseModel):
    items: list[Dataset]


class DatasetAccepted(BaseModel):
    job: Job
    dataset: str = Field(description="The dataset's name (its id once the job has stored it).")


# ------------------------------------------------------------------------ experiments
class ExperimentIn(_Strict):
    """One training run, in the record format of `tapas ingest` (JSONL). Values are
    checked per record: a bad one is rejected by index, the others are stored."""

    arch: str | dict[str, Any] = Field(description="IR JSON object (or its text) or a "
                                       "NAS-Bench-201 cell string (expanded for the dataset's "
                                       "classes and input).")
    dataset: str = Field(min_length=1, max_length=500, description="Id or name of a stored "
                         "dataset.")
    accuracy: float | None = Field(None, description="Final accuracy as a fraction in [0, 1] "
                                   "(or give `accuracy_pct`).")
    accuracy_pct: float | None = Field(None, description="Final accuracy in percent.")
    split: str | None = Field(None, max_length=20, description="test (default), valid or train.")
    epochs: int | None = Field(None, ge=0, le=MAX_EPOCHS)
    hparams: dict[str, Any] | None = Field(None, description="Any JSON object of at most "
                                           f"{MAX_HPARAMS_BYTES:,} bytes.")
    curve: list[float] | None = Field(None, max_length=MAX_CURVE_LEN,
                                      description="Per-epoch accuracy, same unit as the final.")
    seed: int | None = Field(None, ge=SEED_RANGE[0], le=SEED_RANGE[1])
    source: str | None = Field(None, max_length=200, description="Where it came from "
                               "(default `api`).")


    @field_validator("hparams")
    @classmethod
    def _hparams(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_hparams(v)  # the records' rule, not a copy


class ExperimentBatch(_Strict):
    records: list[ExperimentIn] = Field(max_length=100_000, description="At most 100,000 "
                                        "records; the batch commits all-or-nothing, invalid "
                                        "records are rejected by index.")


class Rejected(BaseModel):
    where: int | str
    reason: str
    path: str | None = None


class IngestResult(BaseModel):
    added: int
    skipped: int = Field(description="Already present (ingest is idempotent).")
    rejected: list[Rejected]
    n_rejected: int
    architectures_added: int
    datasets_added: int
    batch: int | None
    seconds: float


class Experiment(BaseModel):
    arch_id: str
    dataset_id: str
    dcn: float
    accuracy: float
    num_classes: int
    split: str


class ExperimentPage(BaseModel):
    items: list[Experiment]
    total: int
    limit: int
    offset: int
    dcn: float
    tau: float


# ------------------------------------------------------------------------- predictors
class PredictorRequest(_Strict):
    dcn: Fraction | None = Field(None, description="Target DCN (give this or `dataset`).")
    dataset: str | None = Field(None, min_length=1, max_length=500,
                                description="Id or name of a characterised dataset.")
    force: bool = Field(False, description="Retrain even when a cached predictor fits.")
    wait_s: float = Field(1.0, ge=0.0, le=600.0, description="Answer 200 with the predictor if "
                          "it is ready within this many seconds, else 202 with the job.")


class Predictor(BaseModel):
    id: str
    dcn: float
    tau: float
    dcn_lo: float
    dcn_hi: float
    n_train: int
    snapshot: str
    datasets: list[str] = []
    metrics: dict[str, Any]
    created: Any = None
    cached: bool | None = None
    provenance: dict[str, Any] | None = None


class PredictorList(BaseModel):
    items: list[Predictor]


class PredictorAccepted(BaseModel):
    job: Job


# ---------------------------------------------------------------------------- predict
class PredictRequest(_Strict):
    archs: list[str | dict[str, Any]] = Field(
        description="Architectures in any notation `tapas arch notations` lists (IR JSON "
                    "objects, NAS-Bench-201 cell strings, DARTS genotypes, NAS-Bench-101 "
                    "cells, search-space genotypes, a `SPACE:` prefix naming one); at most "
                    "`max_archs_per_request` (default 10,000).")
    dcn: Fraction | None = Field(None, description="Target DCN (give this or `dataset`).")
    dataset: str | None = Field(None, min_length=1, max_length=500,
                                description="Id or name of a characterised dataset; its DCN, "
                                            "classes and input shape are used.")
    num_classes: int | None = Field(None, ge=2, le=100_000,
                                    description="For cell strings (default: the dataset's, "
                                                "else 10).")
    input_shape: list[int] | None = Field(None, min_length=3, max_length=3,
                                          description="[C, H, W] for cell strings (default: "
                                                      "the dataset's, else [3, 32, 32]).")
    members: bool = Field(False, description="Also answer each ensemble member's prediction "
                                             "(for Thompson sampling or UCB acquisitions).")
    predictor: str | None = Field(None, min_length=1, max_length=200,
                                  description="Id of a registered predictor to answer (pinned: "
                                              "the same answers whatever is trained later); "
                                              "default: the one covering the DCN.")


def _wire_type(hint: Any) -> Any:
    """A dataclass field's type as its JSON form (a tuple is a list)."""
    args = get_args(hint)
    if get_origin(hint) is tuple:
        return list[_wire_type(args[0])]  # type: ignore[misc]
    if type(None) in args:
        return _wire_type(next(a for a in args if a is not type(None))) | None
    return hint


def _wire_field(f: dataclasses.Field[Any], hint: Any, doc: str | None) -> tuple[Any, Any]:
    """A dataclass field as a pydantic field of the same type, default and description."""
    if f.default is dataclasses.MISSING:
        info = Field(description=doc)
    elif isinstance(f.default, tuple):
        info = Field(default_factory=list, description=doc)
    else:
        info = Field(f.default, description=doc)
    return _wire_type(hint), info


def _doc(f: dataclasses.Field[Any]) -> str | None:
    return f.metadata.get("doc") or None


_PREDICTION_HINTS = get_type_hints(Prediction)
#: One network's result: :class:`tapas.core.types.Prediction`'s per-network fields by their wire
#: names (:meth:`Prediction.wire`), generated so that a new field is declared once.
Score = create_model("Score", **{  # type: ignore[call-overload]
    f.metadata.get("wire", f.name): _wire_field(f, _PREDICTION_HINTS[f.name], _doc(f))
    for f in NETWORK_FIELDS})
_ANSWER_HINTS = get_type_hints(Answer)
_PREDICTION_DOCS = {f.name: _doc(f) for f in dataclasses.fields(Prediction)}
#: The ``/v1/predict`` response: :class:`tapas.core.types.Answer`'s fields (:meth:`Answer.wire`),
#: each described as the :class:`~tapas.core.types.Prediction` field of the same name, if any.
PredictResponse = create_model("PredictResponse", predictor=(Predictor, ...), **{
    f.name: _wire_field(f, _ANSWER_HINTS[f.name], _PREDICTION_DOCS.get(f.name) or _doc(f))
    for f in dataclasses.fields(Answer) if f.name not in ("predictor", "predictions")},
    results=(list[Score], ...))
