"""``/metadata``: engines and relationships (vt-cli's ``vt init`` caches the relationships)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from kinfile import relationships
from kinfile.api.auth import require_key, services_of
from kinfile.api.responses import JSONResponse

router = APIRouter(dependencies=[Depends(require_key)])


@router.get("/metadata")
async def get_metadata(request: Request) -> JSONResponse:
    rels = [{"name": r.name, "description": r.description} for r in relationships.REGISTRY.values()]
    infos = await run_in_threadpool(services_of(request).verdicts.infos)
    engines = {i.name: {k: v for k, v in i.as_dict().items() if k != "name"} for i in infos}
    return JSONResponse({"data": {"engines": engines, "relationships": {"file": rels}, "privileges": []}})
