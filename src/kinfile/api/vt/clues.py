"""Clue rules on the wire: ``/clue_rules/{id}``, ``/clue_rules/{id}/files`` (and its
``relationships/files`` descriptor form) and ``/files/{id}/clues`` (API_NOTES §5).

The router's lifespan runs :class:`kinfile.clues.service.MonthlyMiner` in the server.
Collections carry ``meta.count``; cursors are signed ``{"a": <last sha256>}`` (rule files) or
``{"o": <offset>}`` (a file's clues) and a page with a cursor is never empty.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request

from kinfile.api.auth import base_url, require_key, services_of
from kinfile.api.responses import JSONResponse
from kinfile.api.vt.files import _limit
from kinfile.api.vt.serialize import collection, error_item, vt_object
from kinfile.clues import service, sql


@asynccontextmanager
async def _monthly_mining(app: FastAPI) -> AsyncIterator[None]:
    """The server's monthly mining job (setting ``clue_mining_day``; never under pytest)."""
    settings = app.state.settings
    miner = None
    if settings.clue_mining_day > 0 and "PYTEST_CURRENT_TEST" not in os.environ:
        miner = service.MonthlyMiner(
            app.state.services.store, settings.clue_mining_day, settings.clue_min_support
        )
        miner.start()
    try:
        yield
    finally:
        if miner is not None:
            miner.stop()


router = APIRouter(dependencies=[Depends(require_key)], lifespan=_monthly_mining)


def _rule_object(base: str, rule: sql.RuleRow) -> dict[str, Any]:
    return vt_object(base, "clue_rule", rule.id, service.rule_attributes(rule))


@router.get("/clue_rules/{clue_id}")
def get_clue_rule(clue_id: str, request: Request) -> JSONResponse:
    rule = service.get_rule(services_of(request).store, clue_id)
    return JSONResponse({"data": _rule_object(base_url(request), rule)})


def _rule_files(clue_id: str, request: Request, descriptors: bool) -> JSONResponse:
    services = services_of(request)
    store = services.store
    rule = service.get_rule(store, clue_id)
    limit = _limit(request.query_params.get("limit"))
    after = str(services.decode_cursor(request.query_params.get("cursor")).get("a", ""))
    sha256s = sql.rule_files(store, rule, after, limit + 1)
    more = len(sha256s) > limit
    sha256s = sha256s[:limit]
    cursor = services.encode_cursor({"a": sha256s[-1]}) if more and sha256s else None
    base = base_url(request)
    items: list[dict[str, Any]] = []
    if descriptors:
        items = [{"type": "file", "id": s} for s in sha256s]
    else:
        rows = store.get_files(sha256s)
        for s in sha256s:
            row = rows.get(s)
            if row is None:
                items.append(error_item("file", s, "NotFoundError", f'File "{s}" not found'))
            else:
                items.append(vt_object(base, "file", s, services.file_attributes(row)))
    path = "relationships/files" if descriptors else "files"
    self_url = f"{base}/api/v3/clue_rules/{rule.id}/{path}"
    meta = {"count": sql.count_rule_files(store, rule)}
    return JSONResponse(collection(items, cursor, self_url, list(request.query_params.multi_items()), meta))


@router.get("/clue_rules/{clue_id}/files")
def get_clue_rule_files(clue_id: str, request: Request) -> JSONResponse:
    return _rule_files(clue_id, request, descriptors=False)


@router.get("/clue_rules/{clue_id}/relationships/files")
def get_clue_rule_file_descriptors(clue_id: str, request: Request) -> JSONResponse:
    return _rule_files(clue_id, request, descriptors=True)


@router.get("/files/{file_id}/clues")
def get_file_clues(file_id: str, request: Request) -> JSONResponse:
    services = services_of(request)
    sha256 = services.resolve(file_id)
    rules = service.file_clues(services.store, sha256)
    limit = _limit(request.query_params.get("limit"))
    offset = int(services.decode_cursor(request.query_params.get("cursor")).get("o", 0))
    page = rules[offset : offset + limit]
    more = offset + limit < len(rules)
    cursor = services.encode_cursor({"o": offset + len(page)}) if more and page else None
    base = base_url(request)
    items = [_rule_object(base, r) for r in page]
    self_url = f"{base}/api/v3/files/{file_id}/clues"
    params = list(request.query_params.multi_items())
    return JSONResponse(collection(items, cursor, self_url, params, {"count": len(rules)}))
