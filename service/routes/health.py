"""Liveness (the process answers) and readiness (the database is open; the default
predictor's state beside it)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.routes import State
from service.schemas import Health

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", response_model=Health)
def live() -> Health:
    """200 while the process serves requests."""
    return Health(status="ok")


@router.get("/ready", response_model=Health, responses={503: {"model": Health}})
def ready(state: State) -> JSONResponse:
    """200 once the database is open: requests are answered. The default predictor is
    loaded or trained as a job meanwhile (``default``: ``training``, then ``loaded``);
    a predict that only it could answer is a 503 ``predictor_training`` until then.

    ``database`` says only whether it is open (where it lies is the operator's business,
    not every caller's); details of a startup failure are in the server log."""
    db = "open" if state.store is not None else None
    pred = state.default_predictor["id"] if state.default_predictor else None
    default = state.default_state
    if state.ready:
        detail = {"training": f"loading or training the default predictor (job "
                              f"{state.default_job}); requests other predictors cover are "
                              "answered",
                  "none": f"no default predictor: {state.no_default}"}.get(default)
        body = Health(status="ok", database=db, predictor=pred, default=default, detail=detail)
        return JSONResponse(body.model_dump(), status_code=200)
    if state.startup_error is not None:
        body = Health(status="failed", database=db, default=default,
                      detail=f"default predictor failed ({state.startup_error['code']}); see "
                             "the server log")
    else:
        body = Health(status="starting", database=db, default=default,
                      detail="opening the database")
    return JSONResponse(body.model_dump(), status_code=503)
