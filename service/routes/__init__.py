"""Thin routers: parse the request, call :mod:`service.state`, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from service.schemas import ErrorResponse
from service.state import ServiceState


async def _state(request: Request) -> ServiceState:
    # async: a sync dependency would cost every request a hop to the thread pool
    return request.app.state.tapas


State = Annotated[ServiceState, Depends(_state)]
"""The running service's :class:`~service.state.ServiceState`."""


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error codes a route can answer."""
    return {c: {"model": ErrorResponse} for c in codes}
