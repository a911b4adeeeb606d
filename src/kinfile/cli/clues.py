"""``kinfile clues mine|list|show|files``: clue rules on the command line."""

from __future__ import annotations

import json

import click

from kinfile.cli import settings_from
from kinfile.clues import service, sql
from kinfile.storage.store import Store


def _store(ctx: click.Context) -> Store:
    store = Store(settings_from(ctx).db)
    store.migrate()
    return store


@click.group("clues")
def clues_command() -> None:
    """Clue rules: indicators mined from a month of files, ≥ 98% precise for one detection band."""


@clues_command.command("mine")
@click.option("--month", required=True, help="Month to mine, YYYY-MM (files first submitted then).")
@click.option(
    "--min-support", type=int, default=None, help="Fewest files per rule (setting clue_min_support)."
)
@click.pass_context
def mine(ctx: click.Context, month: str, min_support: int | None) -> None:
    """Mine MONTH's clue rules (replacing that month's previous rules)."""
    settings = settings_from(ctx)
    store = _store(ctx)
    try:
        result = service.mine_month(store, month, min_support or settings.clue_min_support)
    finally:
        store.close()
    click.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True))


@clues_command.command("list")
@click.option("--month", default=None, help="Only rules mined from this month (YYYY-MM).")
@click.option("--label", type=click.Choice(["P0", "P1_TO_P19", "P20_PLUS"]), default=None)
@click.option("--limit", type=int, default=100, show_default=True)
@click.pass_context
def list_rules(ctx: click.Context, month: str | None, label: str | None, limit: int) -> None:
    """List clue rules: id, label, month, files, rate, features."""
    store = _store(ctx)
    try:
        rules = sql.list_rules(store, month=month, label=label, limit=limit)
    finally:
        store.close()
    for r in rules:
        click.echo(
            f"{r.id} {r.label:<9} {r.month} {r.support:>7} {r.positive_rate:.4f}  {' & '.join(r.features)}"
        )


@clues_command.command("show")
@click.argument("clue_id")
@click.pass_context
def show(ctx: click.Context, clue_id: str) -> None:
    """The clue_rule object of CLUE_ID (as the API returns it)."""
    store = _store(ctx)
    try:
        rule = service.get_rule(store, clue_id)
        count = sql.count_rule_files(store, rule)
    finally:
        store.close()
    body = {"type": "clue_rule", "id": rule.id, "attributes": service.rule_attributes(rule)}
    body["meta"] = {"count": count, "support_in_month": rule.support}
    click.echo(json.dumps(body, indent=2))


@clues_command.command("files")
@click.argument("clue_id")
@click.option("--limit", type=int, default=1000, show_default=True)
@click.pass_context
def files(ctx: click.Context, clue_id: str, limit: int) -> None:
    """sha256 of the stored files matching CLUE_ID (also files stored after mining)."""
    store = _store(ctx)
    try:
        rule = service.get_rule(store, clue_id)
        for sha256 in sql.rule_files(store, rule, "", limit):
            click.echo(sha256)
    finally:
        store.close()
