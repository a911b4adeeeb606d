"""``/files``: upload, upload_url, object, download, download_url, analyse, relationships."""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from kinfile import relationships
from kinfile.api.auth import base_url, require_key, services_of
from kinfile.api.responses import JSONResponse
from kinfile.api.vt.serialize import collection, error_item, relationship_block, vt_object
from kinfile.errors import BadRequestError, InvalidArgumentError, NotFoundError
from kinfile.services import Services

router = APIRouter(dependencies=[Depends(require_key)])
public_router = APIRouter()

DEFAULT_LIMIT = 10
MAX_LIMIT = 40


def _limit(value: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if value is None or value == "":
        return default
    try:
        limit = int(value)
    except ValueError as exc:
        raise InvalidArgumentError(f"limit must be an integer, got {value!r}") from exc
    if limit < 1:
        raise InvalidArgumentError("limit must be at least 1")
    return min(limit, maximum)


def _analysis_descriptor(request: Request, ident: str) -> JSONResponse:
    return JSONResponse({"data": vt_object(base_url(request), "analysis", ident, descriptor=True)})


async def _receive_upload(request: Request) -> JSONResponse:
    services = services_of(request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequestError('expected a multipart/form-data body with a "file" field')
    parser = MultiPartParser(request.headers, request.stream(), max_files=2, max_fields=10)
    parser.spool_max_size = services.settings.spool_threshold  # larger uploads go to disk
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise BadRequestError(f"malformed multipart body: {exc.message}") from exc
    except (ValueError, AssertionError, KeyError) as exc:
        raise BadRequestError(f"malformed multipart body: {exc}") from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise BadRequestError('missing multipart field "file"')
    password = form.get("password")
    name = re.split(r"[\\/]", upload.filename)[-1] if upload.filename else None  # basename only
    try:
        data = await run_in_threadpool(upload.file.read)
    finally:
        await upload.close()
    if isinstance(password, str) and password:
        name, data = _unzip_single(data, password)
    owner = request.scope.get("kinfile.owner", "api")
    _, analysis = await run_in_threadpool(services.submit_bytes, data, name, f"api:{owner}", "api")
    return _analysis_descriptor(request, analysis)


def _unzip_single(data: bytes, password: str) -> tuple[str, bytes]:
    from kinfile.formats import archive

    try:
        return archive.extract_single_member(data, password.encode("utf-8"))
    except ValueError as exc:
        raise BadRequestError(str(exc)) from exc


@router.post("/files")
async def upload_file(request: Request, owner: str = Depends(require_key)) -> JSONResponse:
    request.scope["kinfile.owner"] = owner
    return await _receive_upload(request)


@router.get("/files/upload_url")
def get_upload_url(request: Request) -> JSONResponse:
    services = services_of(request)
    token = services.encode_cursor({"u": 1, "e": int(time.time()) + 3600})
    return JSONResponse({"data": f"{base_url(request)}/api/v3/files/upload/{token}"})


@router.post("/files/upload/{token}")
async def upload_to_url(token: str, request: Request, owner: str = Depends(require_key)) -> JSONResponse:
    payload = services_of(request).signer.verify(token, "upload URL")
    if payload.get("u") != 1 or int(payload.get("e", 0)) < time.time():
        raise BadRequestError("invalid or expired upload URL")
    request.scope["kinfile.owner"] = owner
    return await _receive_upload(request)


@router.get("/files/{file_id}")
def get_file(file_id: str, request: Request) -> JSONResponse:
    services = services_of(request)
    row = services.get_file(file_id)
    rels = requested_relationships(request, services, row.sha256)
    obj = vt_object(base_url(request), "file", row.sha256, services.file_attributes(row), relationships=rels)
    return JSONResponse({"data": obj})


@router.post("/files/{file_id}/analyse")
def analyse_file(file_id: str, request: Request) -> JSONResponse:
    analysis = services_of(request).reanalyse(file_id)
    return _analysis_descriptor(request, analysis)


@router.get("/files/{file_id}/download")
def download_file(file_id: str, request: Request) -> StreamingResponse:
    return _stream(services_of(request), file_id)


@router.get("/files/{file_id}/download_url")
def download_url(file_id: str, request: Request) -> JSONResponse:
    services = services_of(request)
    sha256, _size = services.open_blob(file_id)
    return JSONResponse({"data": f"{base_url(request)}/download/{services.download_token(sha256)}"})


@public_router.get("/download/{token}")
def download_signed(token: str, request: Request) -> StreamingResponse:
    services = services_of(request)
    return _stream(services, services.verify_download_token(token))


def _stream(services: Services, file_hash: str) -> StreamingResponse:
    sha256, size = services.open_blob(file_hash)
    headers = {"content-length": str(size), "content-disposition": f'attachment; filename="{sha256}"'}
    return StreamingResponse(
        services.iter_blob(sha256), media_type="application/octet-stream", headers=headers
    )


@router.get("/files/{file_id}/relationships/{name}")
def get_relationship_descriptors(file_id: str, name: str, request: Request) -> JSONResponse:
    return _relationship_page(file_id, name, request, descriptors=True)


@router.get("/files/{file_id}/{name}")
def get_relationship_objects(file_id: str, name: str, request: Request) -> JSONResponse:
    return _relationship_page(file_id, name, request, descriptors=False)


def _resolve_page(
    services: Services, sha256: str, name: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    rel = relationships.get(name)
    if rel is None:
        valid = ", ".join(sorted(relationships.REGISTRY))
        raise NotFoundError(f"relationship {name!r} not found; valid relationships: {valid}")
    offset = int(services.decode_cursor(cursor).get("o", 0))
    items = rel.resolve(services, sha256, offset, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    next_cursor = services.encode_cursor({"o": offset + len(items)}) if more and items else None
    return items, next_cursor


def _relationship_page(file_id: str, name: str, request: Request, descriptors: bool) -> JSONResponse:
    services = services_of(request)
    sha256 = services.resolve(file_id)
    params = list(request.query_params.multi_items())
    limit = _limit(request.query_params.get("limit"))
    items, next_cursor = _resolve_page(services, sha256, name, limit, request.query_params.get("cursor"))
    base = base_url(request)
    out = [_render_item(services, base, item, descriptors) for item in items]
    self_url = f"{base}/api/v3/files/{file_id}/" + (f"relationships/{name}" if descriptors else name)
    return JSONResponse(collection(out, next_cursor, self_url, params))


def _render_item(services: Services, base: str, item: dict[str, Any], descriptor: bool) -> dict[str, Any]:
    context = item.get("context_attributes")
    if descriptor:
        out = {"type": item["type"], "id": item["id"]}
        if context:
            out["context_attributes"] = context
        return out
    attrs = item.get("attributes")
    if attrs is None and item["type"] == "file":
        row = services.store.get_file(item["id"])
        if row is None:
            return error_item("file", item["id"], "NotFoundError", f'File "{item["id"]}" not found')
        attrs = services.file_attributes(row)
    return vt_object(base, item["type"], item["id"], attrs, context_attributes=context)


def requested_relationships(request: Request, services: Services, sha256: str) -> dict[str, Any] | None:
    """The ``?relationships=a,b`` descriptor blocks of a file object (first page of each)."""
    wanted = request.query_params.get("relationships")
    if not wanted:
        return None
    base = base_url(request)
    out = {}
    for name in [n.strip() for n in wanted.split(",") if n.strip()]:
        items, cursor = _resolve_page(services, sha256, name, DEFAULT_LIMIT, None)
        descs = [_render_item(services, base, i, True) for i in items]
        out[name] = relationship_block(base, "file", sha256, name, descs, cursor)
    return out
