"""Thin routers: parse the request, call :mod:`service.state`, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from service.body import (
    LARGE_BODY,
    BodyError,
    ItemErrors,
    decode_json,
    gc_paused,
    validate_stepwise,
)
from service.errors import APIError
from service.schemas import ErrorResponse
from service.state import ServiceState

M = TypeVar("M", bound=BaseModel)
BATCH_HINT = ("split it into smaller requests (tapas.app.client.Client batches predict and "
              "ingest requests itself)")
_DRAIN_EXTRA = 16 * 2**20
"""Bytes of an oversized body still read (and dropped) so the client sees the 413."""


async def _state(request: Request) -> ServiceState:
    # async: a sync dependency would cost every request a hop to the thread pool
    return request.app.state.tapas


State = Annotated[ServiceState, Depends(_state)]
"""The running service's :class:`~service.state.ServiceState`."""


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error codes a route can answer."""
    return {c: {"model": ErrorResponse} for c in codes}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body that the route parses itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


async def read_limited(request: Request, limit: int, what: str = "the upload") -> bytes:
    """The request body, or a 413 once it exceeds ``limit`` bytes (a body a little over
    the limit is drained, so the client reads the answer rather than a reset)."""
    setting = (" (TAPAS_MAX_UPLOAD_MB)" if what == "the upload" else
               f" (TAPAS_MAX_BODY_MB); {BATCH_HINT}")
    code = "upload_too_large" if what == "the upload" else "body_too_large"
    too_big = APIError(413, code, f"{what} exceeds the server's limit of "
                       f"{limit / 2**20:g} MiB{setting}", "body")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + _DRAIN_EXTRA:
        raise too_big
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > limit:
            if n > limit + _DRAIN_EXTRA:
                raise too_big
            chunks = []  # keep draining so the client reads the answer, not a reset
            continue
        chunks.append(chunk)
    if n > limit:
        raise too_big
    return b"".join(chunks)


async def parse_body(request: Request, model: type[M]) -> M:
    """Read a JSON body (within TAPAS_MAX_BODY_MB) and decode and validate it on a worker
    thread in small steps (:mod:`service.body`), so a large body never stalls the event
    loop; errors are the usual 422 shape."""
    limit = int(request.app.state.tapas.settings.max_body_mb * 2**20)
    body = await read_limited(request, limit, "the request body")
    return await run_in_threadpool(_decode_and_validate, model, body)


def _decode_and_validate(model: type[M], body: bytes) -> M:
    try:
        with gc_paused(len(body) >= LARGE_BODY):
            return validate_stepwise(model, decode_json(body))
    except BodyError as e:
        raise APIError(422, "invalid_json", f"the body is not valid JSON: {e}", "body") from None
    except ItemErrors as e:
        errs = e.errors
    except ValidationError as e:
        errs = e.errors(include_url=False, include_input=False, include_context=False)[:20]
    raise RequestValidationError([{**err, "loc": ("body", *err.get("loc", ()))}
                                  for err in errs]) from None
