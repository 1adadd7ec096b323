"""Bearer-token auth for write routes, request size limits, and the rule against exposing
an open server.

Read routes stay open. Write routes (uploads, ingest, training, cancelling) need
``Authorization: Bearer <TAPAS_API_TOKEN>`` whenever a token is configured. A server
without a token may only listen on a loopback address. :class:`RequestGuard` checks the
token and the declared ``Content-Length`` before a route reads a byte of the body, and
stops a body that grows past the limit while it streams in.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import APIError

_bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                     description="`TAPAS_API_TOKEN`; required by write routes when it is set.")


def token_error(settings: Any, authorization: str | None) -> APIError | None:
    """The 401/403 a request with this ``Authorization`` header gets, or None."""
    token = settings.api_token
    if token is None:
        return None
    scheme, _, cred = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not cred.strip():
        return APIError(401, "missing_token", "this route needs 'Authorization: Bearer <token>' "
                        "(the server's TAPAS_API_TOKEN)", "header.Authorization",
                        headers={"WWW-Authenticate": "Bearer"})
    if not secrets.compare_digest(cred.strip().encode(), token.get_secret_value().encode()):
        return APIError(403, "invalid_token", "the bearer token does not match the server's "
                        "TAPAS_API_TOKEN", "header.Authorization")
    return None


async def require_token(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Dependency of every write route: 401 without a token, 403 with a wrong one
    (:class:`RequestGuard` has already answered before the body was read; this keeps
    the rule next to the route and in the OpenAPI schema)."""
    err = token_error(request.app.state.tapas.settings, request.headers.get("authorization"))
    if err is not None:
        raise err


class RequestGuard:
    """ASGI middleware: token and ``Content-Length`` checks before the body is read.

    ``write_routes``: (compiled path regex, methods) of the routes that need the token.
    ``limit_for(path, content_type) -> bytes``: the largest body allowed.
    """

    def __init__(self, app: Any, settings: Any, write_routes: list[tuple[re.Pattern[str],
                 set[str]]], limit_for: Any) -> None:
        self.app = app
        self.settings = settings
        self.write_routes = write_routes
        self.limit_for = limit_for

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        path, method = scope["path"], scope["method"]
        if any(rx.match(path) and method in methods for rx, methods in self.write_routes):
            err = token_error(self.settings, headers.get("authorization"))
            if err is not None:
                await self._answer(err, scope, receive, send)
                return
        limit = int(self.limit_for(path, headers.get("content-type", "")))
        declared = headers.get("content-length", "")
        hint = (" (TAPAS_MAX_UPLOAD_MB)" if "multipart" in headers.get("content-type", "")
                else " (TAPAS_MAX_BODY_MB); split it into smaller requests "
                "(tapas.app.client.Client batches predict and ingest requests itself)")
        too_big = APIError(413, "body_too_large", f"the request body exceeds the server's limit "
                           f"of {limit / 2**20:g} MiB{hint}", "body")
        if declared.isdigit() and int(declared) > limit:
            await self._answer(too_big, scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise StarletteHTTPException(413, too_big.message)
            return message

        await self.app(scope, limited_receive, send)

    @staticmethod
    async def _answer(err: APIError, scope: Any, receive: Any, send: Any) -> None:
        headers = {**(err.headers or {}), "Connection": "close"}
        await JSONResponse(err.body(), status_code=err.status, headers=headers)(
            scope, receive, send)


WriteAccess = Annotated[None, Depends(require_token)]
"""Add ``_: WriteAccess`` to a route's parameters to make it a write route."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IPs (127.0.0.0/8, ::1)."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


class BindRefused(ValueError):
    """Listening beyond loopback without an API token would expose unauthenticated writes."""


def check_bind(host: str, token_set: bool) -> None:
    """Raise :class:`BindRefused` for a non-loopback ``host`` when no token is configured."""
    if not token_set and not is_loopback(host):
        raise BindRefused(
            f"refusing to listen on {host!r} without an API token: anyone who can reach it "
            "could write to the database. Set TAPAS_API_TOKEN (clients then send "
            "'Authorization: Bearer <token>'), or bind 127.0.0.1.")
