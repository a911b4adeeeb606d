"""``kinfile serve``: the VirusTotal-compatible API on the embedded (or configured) store."""

from __future__ import annotations

import json
import os

import click

from kinfile.cli import settings_from


@click.command()
@click.option("--host", default=None, help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8080).")
@click.option("--workers", type=int, default=None, help="Worker processes (default 1).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the VirusTotal v3 API (vt-py / vt-cli compatible) at http://HOST:PORT/api/v3."""
    import uvicorn

    from kinfile.api.app import SETTINGS_ENV, create_app
    from kinfile.services import Services

    settings = settings_from(ctx, host=host, port=port, workers=workers)
    services = Services(settings)  # creates the data dir and runs migrations once, up front
    if settings.auth and not services.store.list_api_keys():
        key = services.store.create_api_key("admin")
        click.echo(
            f"First start: created API key for 'admin' (shown once; more with "
            f"`kinfile apikey create --name NAME`):\n  {key}",
            err=True,
        )
    click.echo(
        f"kinfile serving http://{settings.host}:{settings.port}/api/v3 "
        f"(db {settings.db}, blobs {settings.blobs})",
        err=True,
    )
    if settings.workers > 1:
        services.close()
        raw = {k: v for k, v in settings.as_dict().items() if k != "secret_key"}
        if settings.secret_key:
            raw["secret_key"] = settings.secret_key
        os.environ[SETTINGS_ENV] = json.dumps(raw)
        uvicorn.run(
            "kinfile.api.app:create_app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level="warning",
        )
        return
    uvicorn.run(create_app(settings, services), host=settings.host, port=settings.port, log_level="warning")
