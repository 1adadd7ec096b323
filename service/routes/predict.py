"""Score architectures: predicted accuracy, ensemble spread and calibrated interval."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from service.body import LARGE_ITEMS, gc_paused
from service.errors import APIError
from service.routes import State, errors, json_body, parse_body
from service.schemas import PredictRequest, PredictResponse
from service.state import ServiceState
from tapas.core.spaces import parse_archs
from tapas.core.types import Query

router = APIRouter(prefix="/v1", tags=["predict"])


@router.post("/predict", response_model=PredictResponse, openapi_extra=json_body(PredictRequest),
             responses=errors(404, 409, 413, 422, 503))
async def predict(request: Request, state: State) -> Response:
    """Predict each architecture's final accuracy on a dataset of the given DCN.

    `archs` holds IR JSON objects or NAS-Bench-201 cell strings (up to
    `max_archs_per_request`, default 10,000: more is 413 `too_many_archs`). Give `dcn`,
    or `dataset` (a characterised dataset: its DCN, classes and input shape are used).
    An invalid architecture fails the request with 422 `invalid_architecture` and the
    path of the field, e.g. `body.archs[3].layers[2].kernel`. The answer names the
    predictor that scored: `predictor` pins a registered one by id (404 when unknown),
    else a loaded one whose DCN range covers the target answers (none: 409
    `no_predictor`, train one with `POST /v1/predictors`). Each result says whether it
    is `in_domain` (inside what the predictor's training experiments cover) and, if not,
    `domain_reasons`: an extrapolation, with a widened interval.
    """
    req = await parse_body(request, PredictRequest)
    return await run_in_threadpool(_predict, req, state)


def _predict(req: PredictRequest, state: ServiceState) -> Response:
    # thousands of networks: no GIL-holding collector passes meanwhile
    with gc_paused(len(req.archs) >= LARGE_ITEMS):
        return _predict_now(req, state)


def _predict_now(req: PredictRequest, state: ServiceState) -> Response:
    cap = state.settings.max_archs_per_request
    if len(req.archs) > cap:
        raise APIError(413, "too_many_archs", f"{len(req.archs)} architectures in one request; "
                       f"at most {cap} are allowed (split the batch)", "body.archs")
    target = state.target(dcn=req.dcn, dataset=req.dataset, num_classes=req.num_classes,
                          input_shape=req.input_shape)
    archs = parse_archs(req.archs, target.num_classes, target.input_shape, prefix="body.archs")
    answer = state.predict(Query(tuple(archs), target.value, req.predictor, req.members))
    return Response(json.dumps(answer.wire(), default=str, allow_nan=False).encode(),
                    media_type="application/json")
