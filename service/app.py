"""The app factory: ``create_app(settings) -> FastAPI``.

The lifespan handler opens the database for writing (the running service is its only
writer) and queues the default predictor; ``GET /health/ready`` turns 200 once that
predictor is usable. Routers stay thin; the work happens in :mod:`service.state`,
which calls :mod:`tapas.app.pipeline`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from service.body import freeze_long_lived
from service.errors import install_error_handlers
from service.routes import datasets, experiments, health, jobs, predict, predictors
from service.schemas import DatasetSpec, ErrorResponse, ExperimentBatch, PredictRequest
from service.security import RequestGuard, require_token
from service.state import ServiceState
from tapas import __version__
from tapas.core.config import Settings, get_settings

log = logging.getLogger("tapas.service")


def create_app(settings: Settings | None = None, *, train_default: bool = True,
               job_workers: int = 1, predictor_params: dict[str, Any] | None = None,
               min_experiments: int | None = None, torch_threads: int | None = 1) -> FastAPI:
    """Build the service. ``settings`` default to :func:`tapas.core.config.get_settings`.

    ``train_default=False`` skips loading the default predictor at startup (the app is
    ready once the database is open; predictors are then made on request).
    ``predictor_params`` / ``min_experiments`` go to ``tapas.app.pipeline.Pipeline``
    (estimator hyper-parameters; the adaptive DCN filter's minimum). ``torch_threads``:
    torch's intra-op threads while the app runs (None: leave torch's setting alone).
    """
    settings = settings or get_settings()
    state = ServiceState(settings, train_default=train_default, job_workers=job_workers,
                         predictor_params=predictor_params, min_experiments=min_experiments,
                         torch_threads=torch_threads)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.open)
        freeze_long_lived()  # what startup made lives on
        log.info("tapas service: database %s open", settings.database)
        try:
            yield
        finally:
            await run_in_threadpool(state.close)

    app = FastAPI(
        title="tapas",
        version=__version__,
        summary="Train-less accuracy prediction for neural architecture search.",
        description=(
            "Characterise datasets (DCN), ingest experiments into the lifelong database, "
            "train predictors and score architectures without training them. Errors are "
            "JSON `{\"error\": {\"code\", \"message\", \"path\"}}`. Write routes need "
            "`Authorization: Bearer <TAPAS_API_TOKEN>` when the server has a token."),
        lifespan=lifespan,
    )
    app.state.tapas = state
    install_error_handlers(app)

    for module in (health, datasets, jobs, experiments, predictors, predict):
        app.include_router(module.router)
    _document_errors(app)
    _guard(app, settings)
    return app


def _guard(app: FastAPI, settings: Settings) -> None:
    """Token and body-size checks before any route reads the body (see RequestGuard)."""
    def needs_token(dep: Any) -> bool:
        return dep.call is require_token or any(needs_token(d) for d in dep.dependencies)

    writes = [(r.path_regex, set(r.methods)) for r in app.routes
              if isinstance(r, APIRoute) and needs_token(r.dependant)]
    upload = int(settings.max_upload_mb * 2**20) + 17 * 2**20  # the route drains a bit more
    body = int(settings.max_body_mb * 2**20)

    def limit_for(path: str, content_type: str) -> int:
        return upload if path == "/v1/datasets" and "multipart" in content_type else body

    app.add_middleware(RequestGuard, settings=settings, write_routes=writes,
                       limit_for=limit_for)


def _document_errors(app: FastAPI) -> None:
    """Make the OpenAPI schema tell the truth about errors: every 4xx/5xx body is
    ``ErrorResponse`` (FastAPI documents its own 422 shape, which this service replaces),
    and every operation may answer 422 (its parameters are validated) and 500."""
    ref = {"$ref": "#/components/schemas/ErrorResponse"}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                             description=app.description, routes=app.routes)
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, sub in ErrorResponse.model_json_schema(
                ref_template="#/components/schemas/{model}").get("$defs", {}).items():
            comps.setdefault(name, sub)
        comps["ErrorResponse"] = {k: v for k, v in ErrorResponse.model_json_schema(
            ref_template="#/components/schemas/{model}").items() if k != "$defs"}
        for model in (DatasetSpec, ExperimentBatch, PredictRequest):  # bodies routes parse
            sch = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in sch.pop("$defs", {}).items():
                comps.setdefault(name, sub)
            comps.setdefault(model.__name__, sch)
        for ops in schema.get("paths", {}).values():
            for method, op in ops.items():
                responses = op.setdefault("responses", {})
                codes = ("400", "422", "500") if method == "post" else ("422", "500")
                for code in codes:
                    responses.setdefault(code, {"description": "Error"})
                for code, resp in responses.items():
                    if code[0] in "45" and not (code == "503" and "Health" in str(resp)):
                        resp["content"] = {"application/json": {"schema": ref}}
                        resp.setdefault("description", "Error")
        comps.pop("HTTPValidationError", None)
        comps.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
