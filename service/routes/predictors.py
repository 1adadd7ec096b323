"""Predictors: train (or reuse the cached one) for a DCN or a dataset; list them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from service.errors import APIError, status_of
from service.routes import State, errors
from service.schemas import Predictor, PredictorAccepted, PredictorList, PredictorRequest
from service.security import WriteAccess

router = APIRouter(prefix="/v1/predictors", tags=["predictors"])


@router.post("", response_model=Predictor,
             responses={202: {"model": PredictorAccepted}, **errors(401, 403, 404, 409, 422)})
async def train_predictor(req: PredictorRequest, state: State, _: WriteAccess) -> JSONResponse:
    """The predictor for a DCN (or a characterised dataset's DCN).

    A predictor already trained on the same experiments for that DCN range is
    reused (`cached: true`). Training runs as a job: the answer is 200 with the
    predictor when it is ready within `wait_s` seconds, else 202 with the job to poll.
    """
    if (req.dcn is None) == (req.dataset is None):
        raise APIError(422, "dcn_or_dataset", "give exactly one of 'dcn' or 'dataset'",
                       "body.dcn")
    dcn = req.dcn if req.dcn is not None else state.dataset_dcn(req.dataset, "body.dataset")[0]
    job = state.submit_predictor(float(dcn), req.force)
    await run_in_threadpool(job.done.wait, req.wait_s)
    if job.state == "succeeded" and job.result:
        return JSONResponse(Predictor(**job.result["predictor"]).model_dump(mode="json"))
    if job.state == "failed" and job.error:
        code = job.error.get("code", "job_failed")
        raise APIError(status_of(code, 422), code, job.error.get("message", "training failed"),
                       job.error.get("path"))
    return JSONResponse(PredictorAccepted(job=job.to_dict()).model_dump(mode="json"),
                        status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


@router.get("", response_model=PredictorList)
def list_predictors(state: State) -> dict:
    """Every registered predictor with its provenance and metrics."""
    return {"items": state.predictors()}


@router.get("/{id}", response_model=Predictor, responses=errors(404))
def get_predictor(state: State, id: Annotated[str, Path(max_length=200)]) -> dict:
    """One predictor: DCN range, training size, LDE snapshot, metrics, provenance."""
    return state.predictor(id)
