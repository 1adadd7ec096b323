"""Bearer-token auth for write routes, and the rule against exposing an open server.

Read routes stay open. Write routes (uploads, ingest, training) need
``Authorization: Bearer <TAPAS_API_TOKEN>`` whenever a token is configured. A server
without a token may only listen on a loopback address.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.errors import APIError

_bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                     description="`TAPAS_API_TOKEN`; required by write routes when it is set.")


async def require_token(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Dependency of every write route: 401 without a token, 403 with a wrong one."""
    token = request.app.state.tapas.settings.api_token
    if token is None:
        return
    if creds is None:
        raise APIError(401, "missing_token", "this route needs 'Authorization: Bearer <token>' "
                       "(the server's TAPAS_API_TOKEN)", "header.Authorization",
                       headers={"WWW-Authenticate": "Bearer"})
    if not secrets.compare_digest(creds.credentials.encode(),
                                  token.get_secret_value().encode()):
        raise APIError(403, "invalid_token", "the bearer token does not match the server's "
                       "TAPAS_API_TOKEN", "header.Authorization")


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
