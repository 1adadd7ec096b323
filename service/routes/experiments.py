"""Experiments: ingest batches of training runs; list them filtered by DCN."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from service.body import LARGE_ITEMS, gc_paused
from service.routes import State, errors, json_body, parse_body
from service.schemas import ExperimentBatch, ExperimentPage, IngestResult
from service.security import WriteAccess

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])


@router.post("", response_model=IngestResult, openapi_extra=json_body(ExperimentBatch),
             responses=errors(401, 403, 413, 422))
async def ingest(request: Request, state: State, _: WriteAccess) -> dict:
    """Add a batch of experiment records, with the CLI's validation and idempotency.

    The valid records commit together; invalid ones are listed in `rejected` with their
    index (`body.records[i]`) and reason, and records already stored are `skipped`.
    """
    batch = await parse_body(request, ExperimentBatch)

    def ingest_now() -> dict:
        # up to 100,000 records: no GIL-holding collector passes meanwhile
        with gc_paused(len(batch.records) >= LARGE_ITEMS):
            return state.ingest([r.model_dump(exclude_none=True) for r in batch.records])

    return await run_in_threadpool(ingest_now)


@router.get("", response_model=ExperimentPage, responses=errors(422))
def list_experiments(
    state: State,
    dcn: Annotated[float, Query(ge=0.0, le=1.0, description="Target DCN.")] = 0.5,
    tau: Annotated[float, Query(ge=0.0, le=1.0, description="Keep datasets with "
                                "|DCN - dcn| <= tau (default: every characterised "
                                "dataset).")] = 1.0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict:
    """Experiments on datasets whose DCN lies within `tau` of `dcn`, in ingest order."""
    return state.experiments(dcn, tau, limit, offset)
