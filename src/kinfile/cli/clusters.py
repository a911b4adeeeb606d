"""``kinfile clusters``: the day's vhash clusters (same result as the v2/v3 API)."""

from __future__ import annotations

import json

import click

from kinfile import clusters
from kinfile.cli import settings_from
from kinfile.storage.store import Store


@click.command("clusters")
@click.option("--date", "date", default=None, help="UTC day YYYY-MM-DD (default: today).")
@click.option("--days", type=int, default=1, show_default=True, help="Window length in days.")
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="table", show_default=True)
@click.pass_context
def clusters_command(ctx: click.Context, date: str | None, days: int, fmt: str) -> None:
    """Group the day's files by vhash: counts and the 200 largest clusters with labels."""
    store = Store(settings_from(ctx).db)
    store.migrate()
    try:
        day = clusters.day_clusters(store, date, days)
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(day.as_dict(), indent=2))
        return
    click.echo(
        f"{day.date} ({day.days} day{'s' if day.days > 1 else ''}): {day.num_candidates} candidates, "
        f"{day.num_clusters} clusters, top {len(day.clusters)} hold {day.size_top200}"
    )
    if day.clusters:
        click.echo(f"{'size':>7} {'avg+':>5}  {'label':<28} id")
    for c in day.clusters:
        click.echo(f"{c.size:>7} {c.avg_positives:>5}  {c.label:<28} {c.cluster_id(day.date)}")
