"""The ASGI application: one routing table, one error renderer, the upload size guard."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kinfile import __version__
from kinfile.api.responses import JSONResponse
from kinfile.errors import (
    BadRequestError,
    ForbiddenError,
    InvalidArgumentError,
    KinfileError,
    NotFoundError,
    PayloadTooLargeError,
)
from kinfile.services import Services
from kinfile.settings import Settings, load_settings

logger = logging.getLogger(__name__)

SETTINGS_ENV = "KINFILE_SERVE_SETTINGS"
MULTIPART_OVERHEAD = 1024 * 1024


def error_response(exc: KinfileError) -> JSONResponse:
    """The single renderer of errors on the wire: ``{"error": {"code", "message"}}``."""
    return JSONResponse(exc.to_dict(), status_code=exc.http_status)


class UploadSizeGuard:
    """Rejects request bodies larger than the upload limit while they stream in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit + MULTIPART_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await _send_error(
                        send,
                        PayloadTooLargeError(f"request body of {declared} bytes exceeds the upload limit"),
                    )
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise PayloadTooLargeError("request body exceeds the upload limit")
            return message

        await self.app(scope, counted, send)


async def _send_error(send: Send, exc: KinfileError) -> None:
    body = json.dumps(exc.to_dict()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": exc.http_status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    from kinfile.api.vt import analyses, files, metadata, verdicts
    from kinfile.api.vt import search as vt_search

    app = FastAPI(
        title="kinfile",
        version=__version__,
        docs_url="/docs",
        redoc_url=None,
        default_response_class=JSONResponse,
    )
    app.state.settings = settings
    app.state.services = services or Services(settings)

    @app.exception_handler(KinfileError)
    async def _kinfile_error(_request: Request, exc: KinfileError) -> JSONResponse:
        if exc.http_status >= 500:
            logger.error("%s: %s", exc.vt_code, exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return error_response(InvalidArgumentError("; ".join(parts) or "invalid arguments"))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(
                NotFoundError(str(exc.detail) if exc.detail != "Not Found" else "Not found")
            )
        if exc.status_code == 403:
            return error_response(ForbiddenError(str(exc.detail)))
        if exc.status_code == 413:
            return error_response(PayloadTooLargeError(str(exc.detail)))
        return error_response(BadRequestError(str(exc.detail)))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_response(KinfileError(f"internal error: {type(exc).__name__}"))

    from kinfile.api.vt import clues as vt_clues  # issue 8 (before files: /files/{id}/clues)

    app.include_router(vt_clues.router, prefix="/api/v3")
    from kinfile.api.vt import content as vt_content  # issue 5 (before search: /search/snippets)

    app.include_router(vt_content.router, prefix="/api/v3")
    app.include_router(files.router, prefix="/api/v3")
    app.include_router(analyses.router, prefix="/api/v3")
    app.include_router(metadata.router, prefix="/api/v3")
    app.include_router(verdicts.router, prefix="/api/v3")
    app.include_router(vt_search.router, prefix="/api/v3")
    app.include_router(files.public_router)
    from kinfile.api.vt import clusters as vt_clusters  # issue 7: v3 stats and v2 file/clusters

    app.include_router(vt_clusters.router, prefix="/api/v3")
    app.include_router(vt_clusters.v2_router)
    app.add_middleware(UploadSizeGuard, limit=settings.max_upload_size)
    return app


def create_app_from_environment() -> FastAPI:
    """uvicorn factory for multi-worker serving: settings come serialised from `kinfile serve`."""
    raw: dict[str, Any] = json.loads(os.environ.get(SETTINGS_ENV, "{}"))
    return create_app(load_settings(raw))
