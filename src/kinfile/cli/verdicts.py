"""``kinfile rescan``, ``kinfile import-vt`` and ``kinfile engines``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import click
from tqdm import tqdm

from kinfile.cli import settings_from
from kinfile.cli.admin import chosen_files
from kinfile.errors import KinfileError, NotFoundError
from kinfile.importer import Importer, ImportSummary
from kinfile.services import Services

MAX_LISTED_ERRORS = 50


@click.command()
@click.argument("hashes", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every stored file that has its bytes.")
@click.option("--query", default=None, help="Every file a search QUERY matches (VT query language).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a TTY).")
@click.pass_context
def rescan(
    ctx: click.Context, hashes: tuple[str, ...], everything: bool, query: str | None, progress: bool | None
) -> None:
    """Run the detection engines again on stored files (given hashes, a --query, or --all).

    Each rescan is an analysis (/api/v3/analyses/{id}); last_analysis_results, _stats, _date,
    positives and popular_threat_classification follow it. Report-only files are skipped.
    """
    if not hashes and not everything and not query:
        raise click.UsageError("give file hashes, --query or --all")
    services = Services(settings_from(ctx))
    engines = [info for info in services.verdicts.infos() if info.available]
    if not engines:
        click.echo("warning: no detection engine available (see `kinfile engines`)", err=True)
    chosen = hashes or query
    targets = chosen_files(services, hashes, query) if chosen else list(services.store.iter_sha256())
    show = sys.stderr.isatty() if progress is None else progress
    done = skipped = failed = 0
    bar = tqdm(targets, unit="file", disable=not show, dynamic_ncols=True)
    for sha256 in bar:
        try:
            services.rescan(sha256)
            done += 1
        except NotFoundError:
            skipped += 1  # report only: no bytes to scan
        except (KinfileError, OSError) as exc:  # report and go on
            failed += 1
            bar.write(f"failed: {sha256}: {exc}", file=sys.stderr)
    bar.close()
    click.echo(f"rescanned {done} file(s) with {len(engines)} engine(s), {skipped} report-only skipped")
    if failed:
        click.echo(f"{failed} failed", err=True)
        sys.exit(1)


@click.command("import-vt")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--source", default=None, help="Provenance recorded for imported attributes (default: file name)."
)
@click.option("-j", "--jobs", type=int, default=None, help="Parsing processes (default: setting jobs).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a TTY).")
@click.pass_context
def import_vt(
    ctx: click.Context, files: tuple[str, ...], source: str | None, jobs: int | None, progress: bool | None
) -> None:
    """Import VirusTotal v3/v2 reports and AVClass label lines (JSON lines; '-' = stdin).

    Unknown files become report-only files (downloadable: false); known ones are enriched without
    overwriting what kinfile computed. Exits 1 when any line failed.
    """
    settings = settings_from(ctx)
    services = Services(settings)
    summary = ImportSummary()
    show = sys.stderr.isatty() if progress is None else progress
    for name in files:
        label = source or ("stdin" if name == "-" else Path(name).name)
        importer = Importer(services.store, label, jobs or settings.effective_jobs)
        if name == "-":
            importer.import_lines(_read(sys.stdin.buffer, "<stdin>", None, show), "<stdin>", summary)
            continue
        try:
            with open(name, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                importer.import_lines(_read(fh, Path(name).name, size, show), name, summary)
        except OSError as exc:
            summary.error(name, 0, f"cannot read: {exc.strerror or exc}")
    rate = summary.reports / summary.seconds if summary.seconds else 0.0
    click.echo(
        f"{summary.reports} report(s) from {summary.lines} line(s) in {summary.seconds:.1f} s "
        f"({rate:.0f} reports/s): {summary.created} new, {summary.enriched} enriched, {summary.failed} failed"
    )
    for where, line, message in summary.errors[:MAX_LISTED_ERRORS]:
        click.echo(f"  {where}:{line}: {message}", err=True)
    if summary.failed > MAX_LISTED_ERRORS:
        click.echo(f"  ... and {summary.failed - MAX_LISTED_ERRORS} more", err=True)
    if summary.failed:
        sys.exit(1)


def _read(lines: Iterable[bytes], name: str, size: int | None, show: bool) -> Iterator[bytes]:
    """The lines of one input, with a progress bar of the bytes read (``size``: the file's)."""
    if not show:
        yield from lines
        return
    with tqdm(total=size, desc=name, unit="B", unit_scale=True, dynamic_ncols=True, file=sys.stderr) as bar:
        for line in lines:
            bar.update(len(line))
            yield line


@click.command()
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.pass_context
def engines(ctx: click.Context, as_json: bool) -> None:
    """List the configured detection engines and whether they are available."""
    services = Services(settings_from(ctx))
    infos = services.verdicts.infos()
    if as_json:
        click.echo(json.dumps([i.as_dict() for i in infos], indent=2))
        return
    if not infos:
        click.echo("no engines configured (settings: engines, yara_rules, clamav)")
    for info in infos:
        state = "available" if info.available else "unavailable"
        click.echo(f"{info.name}\t{info.version or '-'}\t{info.update}\t{state}\t{info.detail}")
