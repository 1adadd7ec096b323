"""State and progress of background jobs (DCNs, predictor training)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from service.routes import State, errors
from service.schemas import Job, JobList
from service.security import WriteAccess
from tapas.core.errors import JobNotFound

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("", response_model=JobList)
def list_jobs(state: State, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict:
    """The most recent jobs, newest first (kept across restarts; a job the server never
    finished because it was killed is `lost`)."""
    return {"items": [j.to_dict() for j in state.jobs.list(limit)]}


@router.get("/{id}", response_model=Job, responses=errors(404))
def get_job(state: State, id: Annotated[str, Path(max_length=200)]) -> dict:
    """A job's state (`queued`, `running`, `succeeded`, `failed`, `cancelled`), progress,
    and its result or error."""
    job = state.jobs.get(id)
    if job is None:
        raise JobNotFound(f"no job with id {id!r}", path="url.id")
    return job.to_dict()


@router.delete("/{id}", response_model=Job, responses=errors(401, 403, 404))
def cancel_job(state: State, id: Annotated[str, Path(max_length=200)], _: WriteAccess) -> dict:
    """Cancel a job: a queued one at once (`cancelled`), a running one at its next progress
    report or phase boundary (a predictor training checks during selection and encoding
    too; poll it). A finished job is returned as it is."""
    job = state.jobs.cancel(id)
    if job is None:
        raise JobNotFound(f"no job with id {id!r}", path="url.id")
    return job.to_dict()
