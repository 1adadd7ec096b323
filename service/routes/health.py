"""Liveness (the process answers) and readiness (database and default predictor usable)."""

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
    """200 once the database is open and the default predictor is loaded, else 503.

    ``database`` says only whether it is open (where it lies is the operator's business,
    not every caller's); details of a startup failure are in the server log."""
    db = "open" if state.store is not None else None
    pred = state.default_predictor["id"] if state.default_predictor else None
    if state.ready:
        body = Health(status="ok", database=db, predictor=pred,
                      detail=f"no default predictor: {state.no_default}"
                      if state.no_default else None)
        return JSONResponse(body.model_dump(), status_code=200)
    if state.startup_error is not None:
        body = Health(status="failed", database=db,
                      detail=f"default predictor failed ({state.startup_error['code']}); see "
                             "the server log")
    else:
        body = Health(status="starting", database=db,
                      detail="loading the database" if db is None
                      else "loading or training the default predictor")
    return JSONResponse(body.model_dump(), status_code=503)
