"""``POST /api/v3/kinfile/imports``: bulk import of VirusTotal reports (kinfile extension).

The body is JSON lines (VT v3 file objects or feed lines, ``{"data": ...}`` documents, VT v2
reports, AVClass lines) or one JSON document. The answer is always 200 with an ``import``
object whose attributes count the reports and list the failed lines (VT clients treat any other
success status as an error).
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from kinfile.api.auth import require_key, services_of
from kinfile.api.responses import JSONResponse
from kinfile.errors import BadRequestError
from kinfile.importer import Importer

router = APIRouter(dependencies=[Depends(require_key)])


@router.post("/kinfile/imports")
async def import_reports(request: Request, owner: str = Depends(require_key)) -> JSONResponse:
    services = services_of(request)
    body = await request.body()
    if not body.strip():
        raise BadRequestError("empty body: expected JSON lines of VirusTotal reports")
    importer = Importer(services.store, f"api:{owner}")
    summary = await run_in_threadpool(importer.import_lines, body.splitlines(), "body")
    ident = secrets.token_hex(8)
    return JSONResponse({"data": {"type": "import", "id": ident, "attributes": summary.as_dict()}})
