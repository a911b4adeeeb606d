"""Content search on the wire: ``GET /intelligence/search/snippets/{id}`` (API_NOTES §3.2),
``DELETE /files/{id}`` (a kinfile extension: a private collection must be able to forget a file),
and the server's background content indexer (the router's lifespan)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request

from kinfile import content_search
from kinfile.api.auth import require_key, services_of
from kinfile.api.responses import JSONResponse
from kinfile.content import ContentIndexer


@asynccontextmanager
async def _indexer(app: FastAPI) -> AsyncIterator[None]:
    """Index queued files every ``content_index_interval`` seconds (0 disables it)."""
    settings = app.state.settings
    indexer = None
    if settings.content_index_interval > 0:
        indexer = ContentIndexer(app.state.services.content, settings.content_index_interval)
        indexer.start()
    try:
        yield
    finally:
        if indexer is not None:
            indexer.stop()


router = APIRouter(dependencies=[Depends(require_key)], lifespan=_indexer)


@router.get("/intelligence/search/snippets/{snippet}")
def get_snippet(snippet: str, request: Request) -> JSONResponse:
    return JSONResponse({"data": content_search.snippet(services_of(request), snippet)})


@router.delete("/files/{file_id}")
def delete_file(file_id: str, request: Request) -> JSONResponse:
    deleted = services_of(request).delete_files([file_id])
    return JSONResponse({"data": [{"type": "file", "id": sha256} for sha256 in deleted]})
