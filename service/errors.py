"""One error shape for every failure: ``{"error": {"code", "message", "path"}}``.

Clients (and search loops) branch on ``code``; ``path`` points at the offending field,
e.g. ``body.archs[3].layers[2].kernel``. Bad input is always a 4xx; an unexpected
failure is a 500 with code ``internal_error`` and no traceback in the body.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def not_found(what: str, ident: Any, path: str) -> APIError:
    return APIError(404, f"{what}_not_found", f"no {what} with id {ident!r}", path)


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
