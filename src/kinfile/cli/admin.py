"""Administrative commands: config, apikey, migrate, reindex, compact, show, reanalyse."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from tqdm import tqdm

from kinfile.cli import settings_from
from kinfile.models import SCHEMA_VERSION
from kinfile.services import Services
from kinfile.storage import migrations
from kinfile.storage.store import Store


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of NAME = VALUE lines.")
@click.pass_context
def config(ctx: click.Context, as_json: bool) -> None:
    """Print the effective settings."""
    values = settings_from(ctx).as_dict()
    if as_json:
        click.echo(json.dumps(values, indent=2, default=str))
        return
    for key, value in values.items():
        click.echo(f"{key} = {value}")


@click.group()
def apikey() -> None:
    """Manage API keys (stored hashed)."""


@apikey.command("create")
@click.option("--name", required=True, help="Who the key is for.")
@click.pass_context
def apikey_create(ctx: click.Context, name: str) -> None:
    """Create a key and print it once."""
    store = Store(settings_from(ctx).db)
    store.migrate()
    click.echo(store.create_api_key(name))


@apikey.command("list")
@click.pass_context
def apikey_list(ctx: click.Context) -> None:
    """List key owners and creation dates."""
    store = Store(settings_from(ctx).db)
    store.migrate()
    for row in store.list_api_keys():
        click.echo(f"{row['name']}\t{row['created']}")


@apikey.command("revoke")
@click.option("--name", required=True)
@click.pass_context
def apikey_revoke(ctx: click.Context, name: str) -> None:
    """Revoke every key of NAME."""
    store = Store(settings_from(ctx).db)
    store.migrate()
    count = store.revoke_api_keys(name)
    click.echo(f"revoked {count} key(s)")
    if not count:
        sys.exit(4)


@click.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Create or upgrade the database schema."""
    store = Store(settings_from(ctx).db)
    ran = store.migrate()
    click.echo(f"applied: {', '.join(ran)}" if ran else "schema is up to date")


@click.command()
@click.option("--detections/--no-detections", default=True, help="The engines: / <engine>: index.")
@click.option("--have/--no-have", default=True, help="The have: rows.")
@click.pass_context
def reindex(ctx: click.Context, detections: bool, have: bool) -> None:
    """Rebuild search indexes from the stored reports (after a crash left one inconsistent,
    e.g. SQLite's "database disk image is malformed" on an engines: search)."""
    store = Store(settings_from(ctx).db)
    store.migrate()
    started = time.perf_counter()
    with store.writing() as conn:  # one transaction: searches see the old index or the new one
        if detections:
            migrations.rebuild_detection_index(conn)
        if have:
            migrations.rebuild_have(conn)
    done = [name for name, chosen in (("detection words", detections), ("have: rows", have)) if chosen]
    click.echo(f"rebuilt {' and '.join(done) or 'nothing'} in {time.perf_counter() - started:.1f} s")
    store.close()


@click.command()
@click.option(
    "--vacuum/--no-vacuum",
    default=True,
    help="Give the freed space back to the file system (VACUUM rewrites the database file and "
    "needs as much free disk as it takes).",
)
@click.pass_context
def compact(ctx: click.Context, vacuum: bool) -> None:
    """SQLite: compress the reports a store keeps as JSON text (stores written before reports
    were compressed; new reports are compressed as they are written), then VACUUM. Safe while
    kinfile runs: one short transaction per 500 reports (VACUUM waits for the writers)."""
    store = Store(settings_from(ctx).db)
    store.migrate()
    if store.dialect != "sqlite":
        click.echo(f"nothing to do: {store.dialect} compresses stored reports itself")
        store.close()
        return
    started = time.perf_counter()
    with store.engine.connect() as conn:
        total = migrations.text_reports(conn)
    rewritten = before = after = 0
    last: str | None = ""
    with tqdm(total=total, unit="report", disable=None, file=sys.stderr) as bar:
        while last is not None:
            with store.writing() as conn:
                done = migrations.compact_reports(conn, last)
            last = done.last
            rewritten, before, after = rewritten + done.rewritten, before + done.before, after + done.after
            bar.update(done.examined)
    message = f"compressed {rewritten:,} reports: {before / 1e6:,.1f} MB of JSON -> {after / 1e6:,.1f} MB"
    if vacuum:
        size = _database_bytes(store)
        raw = store.engine.raw_connection()  # outside any transaction, as VACUUM must be
        try:
            raw.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()
        message += f"; VACUUM gave back {(size - _database_bytes(store)) / 1e6:,.1f} MB"
    click.echo(f"{message} in {time.perf_counter() - started:.1f} s")
    store.close()


@click.command("gc-blobs")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=24.0,
    show_default=True,
    help="Hours a blob must be unused before it goes (a file being ingested has a fresh blob).",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; remove nothing.")
@click.pass_context
def gc_blobs(ctx: click.Context, grace: float, dry_run: bool) -> None:
    """Remove the blobs no stored file uses (a file whose rows failed to store after its bytes
    were written) and temporary files interrupted writes left, older than --grace hours."""
    services = Services(settings_from(ctx))
    started = time.perf_counter()
    with tqdm(unit="file", disable=None, file=sys.stderr) as bar:
        done = services.collect_blobs(grace * 3600, dry_run, bar.update)
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {done.unreferenced:,} unreferenced blob(s) and {done.leftovers:,} leftover "
        f"temporary file(s), {done.freed / 1e6:,.1f} MB, of {done.scanned:,} file(s) in "
        f"{time.perf_counter() - started:.1f} s; {done.young:,} unused but within the grace period"
    )


def _database_bytes(store: Store) -> int:
    """The size of a SQLite store's files: the database and its write-ahead log."""
    path = Path(store.engine.url.database or "")
    files = (path, path.with_name(path.name + "-wal"))
    return sum(p.stat().st_size for p in files if p.is_file())


@click.command()
@click.argument("file_hash")
@click.pass_context
def show(ctx: click.Context, file_hash: str) -> None:
    """Print a file's VirusTotal attributes as JSON (md5, sha1 or sha256)."""
    services = Services(settings_from(ctx))
    row = services.get_file(file_hash)
    click.echo(
        json.dumps(
            {"type": "file", "id": row.sha256, "attributes": services.file_attributes(row)},
            indent=2,
            sort_keys=True,
        )
    )


def chosen_files(services: Services, hashes: tuple[str, ...], query: str | None) -> list[str]:
    """The sha256s named on the command line, then those a search QUERY matches (no repeats)."""
    found = [services.resolve(h) for h in hashes]
    if query:
        from kinfile.search import iter_hits

        found += [hit.sha256 for hit in iter_hits(services, query)]
    return list(dict.fromkeys(found))


@click.command()
@click.argument("hashes", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every stored file, not only outdated reports.")
@click.option("--query", default=None, help="Every file a search QUERY matches (VT query language).")
@click.pass_context
def reanalyse(ctx: click.Context, hashes: tuple[str, ...], everything: bool, query: str | None) -> None:
    """Re-run analysis on stored bytes: given files, the files a --query matches, or every report
    older than the current schema.
    """
    services = Services(settings_from(ctx))
    if query or hashes:
        targets = chosen_files(services, hashes, query)
    else:
        targets = list(services.store.iter_sha256(None if everything else SCHEMA_VERSION))
    failed = 0
    for sha256 in tqdm(targets, unit="file", disable=not sys.stderr.isatty()):
        try:
            services.reanalyse(sha256)
        except Exception as exc:  # report and go on; one bad blob must not stop the batch
            failed += 1
            click.echo(f"failed: {sha256}: {exc}", err=True)
    click.echo(f"reanalysed {len(targets) - failed} file(s), {failed} failed")
    if failed:
        sys.exit(1)
