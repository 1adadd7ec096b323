"""One error shape for every failure: ``{"error": {"code", "message", "path"}}``.

Clients (and search loops) branch on ``code``; ``path`` points at the offending field,
e.g. ``body.archs[3].layers[2].kernel``. Bad input is always a 4xx; an unexpected
failure is a 500 with code ``internal_error`` and no traceback in the body.

The domain errors of every layer (:mod:`tapas.core.errors`) reach the answer through one
table, :data:`HTTP_STATUS`, and one handler; routes and the service state raise them
and never catch one to re-map it. :class:`APIError` is for what only HTTP knows (a
body too large, a missing token, a server still starting).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tapas.core.errors import (
    Conflict,
    DatasetTooLarge,
    Invalid,
    NoPredictor,
    NotFound,
    QueueFull,
    TapasError,
    error_class,
)

log = logging.getLogger("tapas.service")

_STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
    413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
    429: "too_many_requests", 503: "not_ready",
}


class APIError(Exception):
    """An error the service answers with a JSON body (raised from routes and helpers)."""

    def __init__(self, status: int, code: str, message: str, path: str | None = None,
                 details: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.path = path
        self.details = details
        self.headers = headers

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "path": self.path}
        if self.details:
            err["details"] = self.details
        return {"error": err}


def _no_predictor(e: NoPredictor) -> dict[str, Any]:
    dcn = f"{e.dcn:.4f}" if e.dcn is not None else "D"
    return {"message": f"no trained predictor covers DCN {dcn}; train one with POST "
                       f"/v1/predictors {{\"dcn\": {dcn}}} (a background job) and retry",
            "path": e.path or "body.dcn"}


def _queue_full(e: QueueFull) -> dict[str, Any]:
    return {"message": f"{e.message}; retry in about {e.retry_after} s (TAPAS_MAX_QUEUED_JOBS "
                       "bounds the queue)", "path": None,
            "headers": {"Retry-After": str(e.retry_after)}}


HTTP_STATUS: dict[type[TapasError], tuple[int, Callable[[Any], dict[str, Any]] | None]] = {
    NotFound: (404, None),
    NoPredictor: (409, _no_predictor),
    Conflict: (409, None),
    DatasetTooLarge: (413, None),
    Invalid: (422, None),
    QueueFull: (429, _queue_full),
}
"""The one map from a domain error's class (its nearest listed base) to the HTTP status,
with what the answer says instead of the in-process message where HTTP needs other
words (how to train a predictor over HTTP; when to retry). A domain error of no listed
class (a locked or failing database) is unexpected: 500 ``internal_error``."""


def _rule(cls: type[BaseException]) -> tuple[int, Callable[[Any], dict[str, Any]] | None] | None:
    return next((HTTP_STATUS[c] for c in cls.__mro__ if c in HTTP_STATUS), None)


def to_api_error(e: BaseException) -> APIError | None:
    """A domain error as the answer :data:`HTTP_STATUS` gives it (an :class:`APIError`
    as it is); None for anything else."""
    if isinstance(e, APIError):
        return e
    rule = _rule(type(e)) if isinstance(e, TapasError) else None
    if rule is None:
        return None
    status, wire = rule
    assert isinstance(e, TapasError)
    said = {"message": e.message, "path": e.path or None, **(wire(e) if wire else {})}
    return APIError(status, e.code or "error", said["message"], said["path"], e.details,
                    said.get("headers"))


def status_of(code: str, default: int) -> int:
    """The HTTP status of the domain error whose code is ``code`` (``default`` when no
    listed class has it), for errors that come back from a job as their code."""
    rule = _rule(error_class(code))
    return default if rule is None else rule[0]


def format_loc(loc: Iterable[Any]) -> str:
    """``("body", "archs", 3, "layers")`` -> ``body.archs[3].layers``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if len(text) > 64:  # a hostile 10 MB key is named, not echoed
                text = text[:48] + f"...({len(text):,} chars)"
            out += ("." if out else "") + text
    return out


def _error_response(err: APIError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for e in exc.errors()[:20]:
        loc = list(e.get("loc", ()))
        # pydantic adds the union member's tag (e.g. "str", "dict[str,any]") to the location.
        loc = [p for p in loc if not (isinstance(p, str) and ("[" in p or p in {"str", "float",
                                                                                "int"}))]
        details.append({"path": format_loc(loc), "message": str(e.get("msg", "invalid")),
                        "type": str(e.get("type", ""))})
    return details


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through :class:`APIError`'s JSON shape."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(TapasError)
    async def _domain_error(request: Request, exc: TapasError) -> JSONResponse:
        err = to_api_error(exc)
        if err is None:
            return await _unexpected(request, exc)
        return _error_response(err)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"path": None, "message": "invalid request"}
        code = "invalid_json" if first.get("type") == "json_invalid" else "invalid_request"
        msg = f"{first['path']}: {first['message']}" if first.get("path") else first["message"]
        return _error_response(APIError(422, code, msg, first.get("path"), details))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        path = "url.path" if exc.status_code in (404, 405) else None
        message = str(exc.detail) if exc.detail else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        return _error_response(APIError(exc.status_code, code, message, path,
                                        headers=getattr(exc, "headers", None)))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error_response(APIError(500, "internal_error",
                                        f"unexpected {type(exc).__name__}; see the server log"))
