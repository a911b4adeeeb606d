"""``kinfile index status|update|compact|rebuild`` (the content index) and ``kinfile delete``."""

from __future__ import annotations

import json
import sys

import click
from tqdm import tqdm

from kinfile.cli import settings_from
from kinfile.content import UpdateResult


def _services(ctx: click.Context):  # type: ignore[no-untyped-def]
    from kinfile.services import Services

    return Services(settings_from(ctx))


def _progress(show: bool, total_docs: int) -> tuple[tqdm, object]:
    bar = tqdm(total=total_docs, unit="file", disable=not show, dynamic_ncols=True)
    done = [0]

    def tick(documents: int, nbytes: int) -> None:
        bar.update(documents - done[0])
        done[0] = documents
        elapsed = bar.format_dict.get("elapsed") or 0
        if elapsed:
            bar.set_postfix_str(f"{nbytes / 1e6 / elapsed:.1f} MB/s", refresh=False)

    return bar, tick


def _report(result: UpdateResult) -> None:
    rate = result.bytes / 1e6 / result.seconds if result.seconds else 0.0
    click.echo(
        f"indexed {result.documents} files, {result.bytes / 1e6:.1f} MB in {result.seconds:.1f} s "
        f"({rate:.1f} MB/s)" + (f"; {result.missing} had no stored bytes" if result.missing else "")
    )


@click.group("index")
def index_command() -> None:
    """The content index behind content: searches."""


@index_command.command("status")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """Segments, documents, sizes and the queue of files not yet indexed."""
    info = _services(ctx).content.status()
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"content index {info['root']}")
    click.echo(
        f"  {info['documents']} files, {info['indexed_bytes'] / 1e6:.1f} MB indexed in {info['segments']} "
        f"segments, index {info['index_bytes'] / 1e6:.1f} MB ({info['size_ratio'] * 100:.1f} % of the bytes)"
    )
    click.echo(f"  {info['pending']} files queued, {info['tombstones']} deleted awaiting compaction")
    for part in info["partitions"]:
        click.echo(
            f"  partition {part['partition']:02d}: {part['segments']} segments, {part['documents']} files, "
            f"{part['index_bytes'] / 1e6:.1f} MB"
        )


def _update(ctx: click.Context, progress: bool | None, rebuild: bool) -> None:
    services = _services(ctx)
    pending = services.content.pending()
    show = sys.stderr.isatty() if progress is None else progress
    bar, tick = _progress(show, pending)
    result = services.content.rebuild(tick) if rebuild else services.content.update(progress=tick)  # type: ignore[arg-type]
    bar.close()
    _report(result)


@index_command.command("update")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a TTY).")
@click.pass_context
def update(ctx: click.Context, progress: bool | None) -> None:
    """Index the files queued since the last update (the server does this every second)."""
    _update(ctx, progress, rebuild=False)


@index_command.command("rebuild")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a TTY).")
@click.pass_context
def rebuild(ctx: click.Context, progress: bool | None) -> None:
    """Drop the index and index every stored file again (searches stay exact meanwhile)."""
    _update(ctx, progress, rebuild=True)


@index_command.command("compact")
@click.option("--tiered", is_flag=True, help="Only merge small segments (what the server does).")
@click.pass_context
def compact(ctx: click.Context, tiered: bool) -> None:
    """Merge segments and drop deleted files; queries and ingest go on meanwhile."""
    services = _services(ctx)
    merges = services.content.compact(full=not tiered)
    info = services.content.status()
    click.echo(
        f"{merges} merges; {info['segments']} segments, index {info['index_bytes'] / 1e6:.1f} MB "
        f"({info['size_ratio'] * 100:.1f} % of {info['indexed_bytes'] / 1e6:.1f} MB)"
    )


@click.command("delete")
@click.argument("hashes", nargs=-1, required=True)
@click.pass_context
def delete(ctx: click.Context, hashes: tuple[str, ...]) -> None:
    """Delete files (md5, sha1 or sha256) with their report, bytes, index entries and the
    sub-files that nothing else holds."""
    deleted = _services(ctx).delete_files(list(hashes))
    for sha256 in deleted:
        click.echo(sha256)
    click.echo(f"deleted {len(deleted)} files", err=True)
