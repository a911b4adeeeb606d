"""``kinfile search QUERY`` and ``kinfile similar HASH``: the search use-case on the command line."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import click

from kinfile import search as use_case
from kinfile.cli import settings_from
from kinfile.services import Services
from kinfile.storage.store import FileRow

COLUMNS = ("sha256", "type_tag", "size", "positives", "last_submission_date", "name", "similarity_score")


def _summary(sha256: str, row: FileRow | None, context: dict[str, Any]) -> dict[str, Any]:
    columns = row.columns if row else {}
    out: dict[str, Any] = {
        "sha256": sha256,
        "type_tag": columns.get("type_tag"),
        "size": columns.get("size"),
        "positives": columns.get("positives"),
        "first_submission_date": columns.get("first_submission_date"),
        "last_submission_date": columns.get("last_submission_date"),
        "name": columns.get("meaningful_name"),
    }
    if context:
        out["context_attributes"] = context
    return out


def _emit(records: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(records, indent=2, sort_keys=True))
        return
    contexts = [r.get("context_attributes") or {} for r in records]
    last = "match_in_subfile" if any("match_in_subfile" in c for c in contexts) else COLUMNS[-1]
    columns = (*COLUMNS[:-1], last)  # content: hits show where they matched instead of a score
    rows = [
        [*(r.get(c) for c in COLUMNS[:-1]), ctx.get(last)] for r, ctx in zip(records, contexts, strict=True)
    ]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
        click.echo(buffer.getvalue(), nl=False)
        return
    text = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in text]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in text:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["json", "table", "csv"]), default="json", show_default=True
)


@click.command("search")
@click.argument("query")
@click.option(
    "--order",
    default=None,
    help="first_submission_date, last_submission_date, positives, "
    "times_submitted or size, with + or - (default last_submission_date-).",
)
@click.option(
    "--limit", default=10, show_default=True, type=click.IntRange(min=1), help="Most files to print."
)
@FORMAT
@click.pass_context
def search(ctx: click.Context, query: str, order: str | None, limit: int, fmt: str) -> None:
    """Search stored files with the VirusTotal Intelligence query language."""
    services = Services(settings_from(ctx))
    hits = list(use_case.iter_hits(services, query, order, limit))
    rows = services.store.get_files([h.sha256 for h in hits])
    _emit([_summary(h.sha256, rows.get(h.sha256), h.context) for h in hits], fmt)


@click.command("similar")
@click.argument("file_hash")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@FORMAT
@click.pass_context
def similar(ctx: click.Context, file_hash: str, limit: int, fmt: str) -> None:
    """Files similar to a stored file (ssdeep, TLSH, vhash, imphash), most similar first."""
    services = Services(settings_from(ctx))
    sha256 = services.resolve(file_hash)
    items = use_case.similar_files(services, sha256, 0, limit)
    rows = services.store.get_files([i["id"] for i in items])
    _emit([_summary(i["id"], rows.get(i["id"]), i["context_attributes"]) for i in items], fmt)
