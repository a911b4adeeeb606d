"""The ``kinfile`` command: a click group; settings are built here, at the edge.

Every :class:`~kinfile.errors.KinfileError` becomes a one-line message on stderr and the
error's exit code; nothing else in kinfile prints or exits.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from kinfile import __version__
from kinfile.errors import KinfileError
from kinfile.settings import Settings, load_settings


class KinfileGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KinfileError as exc:
            click.echo(f"error: {exc.vt_code}: {exc.message}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=KinfileGroup)
@click.version_option(__version__, prog_name="kinfile")
@click.option("--home", envvar=None, default=None, help="Data directory (default $KINFILE_HOME).")
@click.option("--db", default=None, help="Database URL (sqlite:///... or postgresql://...).")
@click.option("--blobs", default=None, help="Blob store URL (file://... or s3://...).")
@click.option("--config", "config_file", default=None, help="TOML settings file.")
@click.option("--setting", "extra", multiple=True, metavar="NAME=VALUE", help="Any setting (repeatable).")
@click.pass_context
def main(
    ctx: click.Context,
    home: str | None,
    db: str | None,
    blobs: str | None,
    config_file: str | None,
    extra: tuple[str, ...],
) -> None:
    """kinfile: VirusTotal-style file intelligence over your own sample collection."""
    overrides: dict[str, Any] = {"home": home, "db": db, "blobs": blobs}
    for item in extra:
        if "=" not in item:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--setting")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value
    ctx.obj = {"overrides": overrides, "config_file": config_file}


def settings_from(ctx: click.Context, **more: Any) -> Settings:
    """Resolve the frozen settings for a command (CLI flags of the command included)."""
    root = ctx.find_root().obj
    overrides = dict(root["overrides"])
    overrides.update({k: v for k, v in more.items() if v is not None})
    settings = load_settings(overrides, config_file=root["config_file"])
    logging.basicConfig(
        level=getattr(logging, str(settings.log_level).upper(), logging.WARNING),
        format="%(levelname)s %(name)s: %(message)s",
    )
    return settings


def _register() -> None:
    from kinfile.cli import admin, ingest, search, serve, verdicts

    main.add_command(serve.serve)
    main.add_command(ingest.ingest)
    main.add_command(admin.config)
    main.add_command(admin.apikey)
    main.add_command(admin.reanalyse)
    main.add_command(admin.show)
    main.add_command(admin.migrate)
    main.add_command(admin.reindex)
    main.add_command(admin.compact)
    main.add_command(admin.gc_blobs)
    main.add_command(search.search)
    main.add_command(search.similar)
    main.add_command(verdicts.rescan)
    main.add_command(verdicts.import_vt)
    main.add_command(verdicts.engines)

    from kinfile.cli import clusters  # issue 7

    main.add_command(clusters.clusters_command)

    from kinfile.cli import clues  # issue 8

    main.add_command(clues.clues_command)

    from kinfile.cli import content  # issue 5

    main.add_command(content.index_command)
    main.add_command(content.delete)


_register()
