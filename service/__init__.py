"""The HTTP scoring service (FastAPI): ``create_app`` builds it, ``tapas serve`` runs it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from tapas.core.config import Settings


def create_app(settings: Settings | None = None, **kwargs: Any) -> FastAPI:
    """Build the FastAPI app (see :func:`service.app.create_app`)."""
    # fastapi and the pipeline (~0.6 s): not paid by importing one part, e.g. service.body
    from service.app import create_app as _create_app

    return _create_app(settings, **kwargs)


__all__ = ["create_app"]
