"""``kinfile ingest PATH...``: parallel ingest with a progress bar and a summary."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import click
from tqdm import tqdm

from kinfile.cli import settings_from
from kinfile.errors import InvalidArgumentError
from kinfile.ingest import Outcome, iter_paths, run_ingest

MAX_LISTED_FAILURES = 20


def parse_date(text: str) -> int:
    """``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM:SS`` (UTC) or epoch seconds."""
    if text.isdigit():
        return int(text)
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return int(datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp())
        except ValueError:
            continue
    raise InvalidArgumentError(f"invalid date {text!r}: use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS or epoch seconds")


def _stdin_paths() -> Iterator[str]:
    for line in sys.stdin:
        line = line.rstrip("\n")
        if line:
            yield line


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "-j", "--jobs", type=click.IntRange(1, 1024), default=None, help="Worker processes (default: all cores)."
)
@click.option("--source", default="cli", show_default=True, help="Source key recorded with each submission.")
@click.option(
    "--date", "date_text", default=None, help="Submission date for backfills (YYYY-MM-DD[THH:MM:SS])."
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a TTY).")
@click.pass_context
def ingest(
    ctx: click.Context,
    paths: tuple[str, ...],
    jobs: int | None,
    source: str,
    date_text: str | None,
    progress: bool | None,
) -> None:
    """Ingest files and directories (recursively); '-' reads paths from stdin, one per line."""
    settings = settings_from(ctx)
    date = parse_date(date_text) if date_text else None
    if "-" in paths:
        sources: list[str] | Iterator[str] = [p for p in paths if p != "-"]
        listed = list(iter_paths(sources)) + list(_stdin_paths())
    else:
        listed = list(iter_paths(paths))
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(listed), unit="file", disable=not show, dynamic_ncols=True, smoothing=0.1)
    mb = 0.0

    def tick(o: Outcome) -> None:
        nonlocal mb
        mb += o.size / 1e6
        bar.update(1)
        elapsed = bar.format_dict.get("elapsed") or 0
        if elapsed:
            bar.set_postfix_str(f"{mb / elapsed:.1f} MB/s", refresh=False)

    summary = run_ingest(settings, listed, source=source, date=date, jobs=jobs, on_outcome=tick)
    bar.close()
    rate = summary.total / summary.seconds if summary.seconds else 0.0
    click.echo(
        f"{summary.total} files in {summary.seconds:.1f} s ({rate:.0f} files/s, "
        f"{summary.bytes / 1e6 / max(summary.seconds, 1e-9):.1f} MB/s): "
        f"{summary.new} new, {summary.duplicate} duplicate, {summary.failed} failed"
    )
    if summary.new:  # make the new files' bytes searchable with content: right away
        from kinfile.content import ContentService
        from kinfile.storage.blobs import BlobStore
        from kinfile.storage.store import Store

        content = ContentService(settings, Store(settings.db), BlobStore(settings.blobs))
        indexed = content.update()
        mb = indexed.bytes / 1e6
        click.echo(f"content index: {indexed.documents} files, {mb:.1f} MB in {indexed.seconds:.1f} s")
    for path, reason in summary.failures[:MAX_LISTED_FAILURES]:
        click.echo(f"  failed: {path}: {reason}", err=True)
    if len(summary.failures) > MAX_LISTED_FAILURES:
        click.echo(f"  ... and {len(summary.failures) - MAX_LISTED_FAILURES} more failures", err=True)
    if summary.failed:
        sys.exit(1)
