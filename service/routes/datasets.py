"""Datasets: upload an ``.npz`` or name a built-in one; its DCN is computed as a job."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from service.errors import APIError, format_loc
from service.routes import State, errors, read_limited
from service.schemas import Dataset, DatasetAccepted, DatasetList, DatasetSpec
from service.security import WriteAccess

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

_UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/DatasetSpec"}},
            "multipart/form-data": {"schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary",
                             "description": "An .npz with arrays x (N x H x W, N x H x W x C "
                                            "or N x C x H x W) and y (N integer labels)."},
                    "name": {"type": "string", "pattern": _NAME_RE.pattern,
                             "description": "Dataset name (default: the file's name)."},
                    "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                    "force": {"type": "boolean"},
                },
            }},
        },
    }
}


def _bad_form(message: str, path: str, code: str = "invalid_request") -> APIError:
    return APIError(422, code, message, path)


async def _from_multipart(request: Request, state: State, body: bytes) -> tuple[Any, int, bool]:
    request._body = body  # let Starlette's form parser read what we already buffered
    form = await request.form(max_files=1, max_fields=10, max_part_size=2**20)
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise _bad_form("a multipart upload needs a file field named 'file' (an .npz)",
                            "body.file", "missing_file")
        unknown = sorted(set(form.keys()) - {"file", "name", "seed", "force"})
        if unknown:
            raise _bad_form(f"unknown form field {unknown[0][:100]!r}", "body")
        data = await upload.read()
        filename = upload.filename or "upload.npz"
    finally:
        await form.close()
    name = form.get("name")
    if name is not None and (not isinstance(name, str) or not _NAME_RE.match(name)):
        raise _bad_form("name must be 1-64 letters, digits, '.', '_' or '-', starting with a "
                        "letter or digit", "body.name")
    seed_s = form.get("seed", "0")
    if not isinstance(seed_s, str) or not seed_s.isdigit() or int(seed_s) > 2**31 - 1:
        raise _bad_form(f"seed must be an integer in [0, 2^31 - 1], got {seed_s[:40]!r}",
                        "body.seed")
    force_s = form.get("force", "false")
    if not isinstance(force_s, str) or force_s.lower() not in {"true", "false", "1", "0"}:
        raise _bad_form(f"force must be true or false, got {force_s[:40]!r}", "body.force")
    if not data:
        raise APIError(422, "invalid_npz", "the uploaded file is empty", "body.file")
    if not data.startswith(b"PK"):
        raise APIError(422, "invalid_npz", "the uploaded file is not an .npz archive (a zip of "
                       ".npy arrays as written by numpy.savez, with arrays x and y)", "body.file")
    ref = await run_in_threadpool(state.check_upload, data, name, filename)
    return ref, int(seed_s), force_s.lower() in {"true", "1"}


async def _from_json(state: State, body: bytes) -> tuple[Any, int, bool]:
    try:
        spec = DatasetSpec.model_validate_json(body)
    except ValidationError as e:
        first = e.errors()[0]
        if first.get("type") == "json_invalid":
            raise APIError(422, "invalid_json", "the body is not valid JSON "
                           f"({first.get('msg')})", "body") from None
        path = format_loc(["body", *first.get("loc", ())])
        raise APIError(422, "invalid_request", f"{path[:200]}: {first.get('msg')}",
                       path[:200]) from None
    ref = await run_in_threadpool(state.check_builtin, spec.spec)
    return ref, spec.seed, spec.force


@router.post("", status_code=202, response_model=DatasetAccepted, openapi_extra=_UPLOAD_SCHEMA,
             responses=errors(400, 401, 403, 409, 413, 415, 422))
async def add_dataset(request: Request, state: State, _: WriteAccess) -> JSONResponse:
    """Register a dataset and compute its DCN in the background.

    Send either `multipart/form-data` with an `.npz` in field `file` (limited to
    `TAPAS_MAX_UPLOAD_MB`), or JSON `{"spec": "digits"}` naming a built-in dataset.
    The data are validated before the job starts (bad data: 422 `invalid_npz` /
    `invalid_dataset`; a name that stands for other content, stored or claimed by a queued
    or running upload: 409 `dataset_exists`);
    poll `GET /v1/jobs/{id}` for the DCN. Data already stored under another name
    resolve to that dataset (the job's result names it).
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    limit = int(state.settings.max_upload_mb * 2**20)
    if ctype == "multipart/form-data":
        body = await read_limited(request, limit)
        ref, seed, force = await _from_multipart(request, state, body)
        where = "body.name"
    elif ctype in ("application/json", ""):
        body = await read_limited(request, min(limit, 2**20), "a JSON dataset request")
        ref, seed, force = await _from_json(state, body)
        where = "body.spec"
    else:
        raise APIError(415, "unsupported_media_type",
                       f"send multipart/form-data (an .npz upload) or application/json (a "
                       f"built-in spec), not {ctype!r}", "header.Content-Type")
    job = await run_in_threadpool(state.submit_characterize, ref, seed, force, where)
    body_out = DatasetAccepted(job=job.to_dict(), dataset=ref.name)
    return JSONResponse(body_out.model_dump(mode="json"), status_code=202,
                        headers={"Location": f"/v1/jobs/{job.id}"})


@router.get("", response_model=DatasetList)
def list_datasets(state: State) -> dict:
    """Every stored dataset with its DCN (None while it is being computed)."""
    return {"items": state.datasets()}


@router.get("/{id}", response_model=Dataset, responses=errors(404))
def get_dataset(state: State, id: Annotated[str, Path(max_length=500)]) -> dict:
    """One dataset by id or name."""
    return state.dataset(id)
