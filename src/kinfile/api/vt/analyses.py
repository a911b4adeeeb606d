"""``/analyses/{id}`` and ``/analyses/{id}/item``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from kinfile.api.auth import base_url, require_key, services_of
from kinfile.api.responses import JSONResponse
from kinfile.api.vt.serialize import vt_object

router = APIRouter(dependencies=[Depends(require_key)])


@router.get("/analyses/{ident}")
async def get_analysis(ident: str, request: Request) -> JSONResponse:
    services = services_of(request)
    found = await run_in_threadpool(services.get_analysis, ident)
    row = await run_in_threadpool(services.get_file, found["sha256"])
    attrs: dict[str, Any] = {
        "date": found["date"],
        "status": found["status"],
        "stats": found["stats"],
        "results": found["results"],
    }
    body = {
        "data": vt_object(base_url(request), "analysis", ident, attrs),
        "meta": {"file_info": {k: row.columns[k] for k in ("sha256", "sha1", "md5", "size")}},
    }
    return JSONResponse(body)


@router.get("/analyses/{ident}/item")
async def get_analysis_item(ident: str, request: Request) -> JSONResponse:
    services = services_of(request)
    found = await run_in_threadpool(services.get_analysis, ident)
    row = await run_in_threadpool(services.get_file, found["sha256"])
    return JSONResponse(
        {"data": vt_object(base_url(request), "file", row.sha256, services.file_attributes(row))}
    )
