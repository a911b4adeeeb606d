"""``/metadata``: engines and relationships (vt-cli's ``vt init`` caches the relationships)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from kinfile import relationships
from kinfile.api.auth import require_key

router = APIRouter(dependencies=[Depends(require_key)])


@router.get("/metadata")
def get_metadata() -> JSONResponse:
    rels = [{"name": r.name, "description": r.description} for r in relationships.REGISTRY.values()]
    return JSONResponse({"data": {"engines": {}, "relationships": {"file": rels}, "privileges": []}})
