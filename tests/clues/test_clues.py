"""Mining a labelled month of real files, stable ids, live matching and held-out precision."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np
import pytest
import sqlalchemy as sa

from kinfile import jsontext
from kinfile.clues import features, service, sql
from kinfile.clues.mining import band_of
from kinfile.storage import schema
from kinfile.storage.store import Store
from tests.clues.month import (
    DROPPED,
    HELD,
    HELD_OUT,
    LATE,
    MIN_SUPPORT,
    MONTH,
    build_month,
    epoch,
    store_files,
)

logger = logging.getLogger(__name__)
LABEL_OF_BAND = {0: "P0", 1: "P1_TO_P19", 2: "P20_PLUS"}


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store(db_url)
    s.migrate()
    build_month(s)
    return s


def month_files(store: Store, month: str) -> dict[str, tuple[set[str], str]]:
    """Brute force from the stored reports: ``{sha256: (feature texts, label)}`` of a month."""
    start, end = service.month_bounds(month)
    f = schema.files
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(f.c.sha256, f.c.positives, f.c.report).where(
                f.c.first_submission_date >= start, f.c.first_submission_date < end
            )
        ).all()
    out = {}
    for sha256, positives, report in rows:
        band = int(band_of(np.array([positives]))[0])
        out[sha256] = (features.feature_texts(jsontext.loads_report(report)), LABEL_OF_BAND[band])
    return out


def test_every_mined_rule_meets_its_band_rate_and_support(store: Store) -> None:
    result = service.mine_month(store, MONTH, MIN_SUPPORT)
    rules = sql.list_rules(store, month=MONTH)
    assert result.rules == len(rules) > 0 and result.files == 22
    month = month_files(store, MONTH)
    for rule in rules:
        matching = [label for texts, label in month.values() if set(rule.features) <= texts]
        assert len(matching) == rule.support >= MIN_SUPPORT
        assert matching.count(rule.label) == rule.in_label
        assert rule.in_label / rule.support >= 0.98
        assert rule.id == service.clue_id(rule.features) and rule.anchor in rule.features
    found = {(r.label, tuple(r.features)) for r in rules}
    assert ("P20_PLUS", ("PE_SECTION_NAME_AT_INDEX:0:upx0",)) in found
    assert ("P20_PLUS", ("PACKER:upx",)) in found
    assert ("P20_PLUS", (f"FILE_DROPPED_PATH:{DROPPED}",)) in found
    assert ("P20_PLUS", ("MUTEX:global\\kinfile-test-mutex",)) in found
    assert any(label == "P0" for label, _ in found)


def test_ids_are_stable_across_runs(store: Store) -> None:
    service.mine_month(store, MONTH, MIN_SUPPORT, now=1)
    first = {r.id: r.features for r in sql.list_rules(store)}
    service.mine_month(store, MONTH, MIN_SUPPORT, now=2)
    second = {r.id: r.features for r in sql.list_rules(store)}
    assert first == second
    upx = service.clue_id(["PE_SECTION_NAME_AT_INDEX:0:upx0"])
    assert (
        upx == "da23e0c5e5df2266c854235c90c9a9e584197e4004c451e98a66c5cd0317afd2"
    )  # same on every run/backend
    assert upx in first


def test_live_matching_and_search(store: Store) -> None:
    service.mine_month(store, MONTH, MIN_SUPPORT)
    upx = sql.get_rule(store, service.clue_id(["PE_SECTION_NAME_AT_INDEX:0:upx0"]))
    assert upx is not None and sql.count_rule_files(store, upx) == 3
    late = store_files(store, {LATE: 30}, HELD_OUT)[LATE]
    assert sql.count_rule_files(store, upx) == 4
    assert late in sql.rule_files(store, upx, "", 10)
    assert upx.id in {r.id for r in service.file_clues(store, late)}
    # paging by sha256
    first = sql.rule_files(store, upx, "", 2)
    rest = sql.rule_files(store, upx, first[-1], 10)
    assert len(first) == 2 and len(rest) == 2 and not set(first) & set(rest)


def test_held_out_month_precision(store: Store) -> None:
    service.mine_month(store, MONTH, MIN_SUPPORT)
    store_files(store, {**HELD, LATE: 30}, HELD_OUT)
    held = month_files(store, HELD_OUT)
    matched = correct = 0
    for rule in sql.list_rules(store, month=MONTH):
        labels = [label for texts, label in held.values() if set(rule.features) <= texts]
        matched += len(labels)
        correct += labels.count(rule.label)
    precision = correct / matched if matched else float("nan")
    logger.warning("held-out month %s: %d rule matches, precision %.3f", HELD_OUT, matched, precision)
    assert matched >= 4 and precision >= 0.75


def test_month_bounds_and_errors(store: Store) -> None:
    assert service.month_bounds("2024-12") == (
        epoch("2024-12", 1) - 12 * 3600,
        epoch("2025-01", 1) - 12 * 3600,
    )
    with pytest.raises(Exception, match="YYYY-MM"):
        service.month_bounds("2024-13")
    empty = service.mine_month(store, "2023-01", MIN_SUPPORT)
    assert (empty.files, empty.rules) == (0, 0)


def test_monthly_job_mines_the_previous_month_once(store: Store) -> None:
    miner = service.MonthlyMiner(store, day=2, min_support=MIN_SUPPORT, interval=0.01)
    assert service.previous_month(datetime(2024, 1, 5, tzinfo=UTC)) == "2023-12"
    assert miner.due(datetime(2024, 6, 1, tzinfo=UTC)) is None  # before the mining day
    result = miner.run_once(datetime(2024, 6, 3, tzinfo=UTC))
    assert result is not None and result.month == MONTH and result.rules > 0
    assert miner.run_once(datetime(2024, 6, 4, tzinfo=UTC)) is None  # once per month
    fresh = service.MonthlyMiner(store, day=1, min_support=MIN_SUPPORT)
    assert fresh.due(datetime(2024, 6, 3, tzinfo=UTC)) is None  # rules of May are stored
    fresh.start()
    fresh.stop()
    fresh.thread.join(5)
    assert not fresh.thread.is_alive()
