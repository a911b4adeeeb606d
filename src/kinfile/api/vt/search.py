"""``GET /api/v3/intelligence/search``: thin handler over :func:`kinfile.search.search`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from kinfile import search
from kinfile.api.auth import base_url, require_key, services_of
from kinfile.api.responses import JSONResponse
from kinfile.api.vt.files import requested_relationships
from kinfile.api.vt.serialize import collection, error_item, vt_object

router = APIRouter(dependencies=[Depends(require_key)])

TRUE_WORDS = {"1", "true", "yes"}


@router.get("/intelligence/search")
def intelligence_search(request: Request, owner: str = Depends(require_key)) -> JSONResponse:
    services = services_of(request)
    params = request.query_params
    descriptors = params.get("descriptors_only", "").strip().lower() in TRUE_WORDS
    page = search.search(
        services,
        params.get("query", ""),
        params.get("order") or None,
        params.get("limit"),
        params.get("cursor") or None,
        owner=owner,
        with_files=not descriptors,
    )
    base = base_url(request)
    items = []
    for hit in page.hits:
        if descriptors:
            items.append(vt_object(base, "file", hit.sha256, descriptor=True, context_attributes=hit.context))
            continue
        row = page.files.get(hit.sha256)
        if row is None:
            items.append(error_item("file", hit.sha256, "NotFoundError", f'File "{hit.sha256}" not found'))
            continue
        attributes = services.file_attributes(row)
        rels = requested_relationships(request, services, hit.sha256)
        items.append(
            vt_object(
                base, "file", hit.sha256, attributes, context_attributes=hit.context, relationships=rels
            )
        )
    self_url = f"{base}/api/v3/intelligence/search"
    return JSONResponse(collection(items, page.cursor, self_url, list(params.multi_items()), meta=page.meta))
