"""Clue-rule use-cases shared by the API, the CLI and the server's monthly job.

* :func:`mine_month`: load the month's codes, mine (``mining``), name the features from one
  example report per rule, store the rules (ids = sha256 of the canonical feature list).
* :func:`rule_attributes`: the VirusTotal ``clue_rule`` object attributes (API_NOTES §5).
* :func:`file_clues`: the rules a stored file matches (in-memory :class:`Matcher`, rebuilt
  when the rule set changes). A file stored after mining has its features in the side tables
  from its write, so it is matched at once: by ``/files/{id}/clues``, ``/clue_rules/{id}/files``
  and ``clue_rule:`` searches alike (live matching).

Importing this module registers the ``clues`` relationship and the ``clue:``/``clue_rule:``
search modifiers.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from kinfile import relationships
from kinfile.clues import features as feat
from kinfile.clues import mining, sql
from kinfile.clues.matching import Matcher
from kinfile.clues.sql import RuleRow
from kinfile.errors import InvalidArgumentError, NotFoundError
from kinfile.query import fields
from kinfile.query.ast import Term
from kinfile.query.fields import Clause, Env, Field, side_in
from kinfile.query.values import bad_value
from kinfile.storage.store import Store

if TYPE_CHECKING:
    from kinfile.services import Services

logger = logging.getLogger(__name__)

MONTH = re.compile(r"(\d{4})-(\d{2})")
CLUE_ID = re.compile(r"[0-9a-f]{64}")
REPORT_BATCH = 200


def month_bounds(month: str) -> tuple[int, int]:
    """UTC epoch seconds of the first second of ``YYYY-MM`` and of the next month."""
    found = MONTH.fullmatch(month or "")
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise InvalidArgumentError(f"month must be YYYY-MM, got {month!r}")
    year, number = int(found.group(1)), int(found.group(2))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()), int(end.timestamp())


def previous_month(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    year, number = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return f"{year:04d}-{number:02d}"


def clue_id(features: list[str]) -> str:
    """Stable id: sha256 of the canonical (sorted, newline-joined) feature texts."""
    return hashlib.sha256("\n".join(sorted(features)).encode()).hexdigest()


@dataclass
class MiningResult:
    month: str
    files: int
    rules: int
    by_label: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def mine_month(store: Store, month: str, min_support: int = 10, now: int | None = None) -> MiningResult:
    """Mine the month's clue rules and store them (replacing that month's previous rules)."""
    start, end = month_bounds(month)
    if min_support < 1:
        raise InvalidArgumentError("min_support must be at least 1")
    clock = time.perf_counter()
    data = sql.load_month(store, start, end)
    loaded = time.perf_counter()
    found = mining.mine(data.offsets, data.codes, mining.band_of(data.positives), min_support)
    mined = time.perf_counter()
    texts = _name_codes(store, data.sha256s, found)
    mined_at = int(time.time()) if now is None else now
    rules: list[RuleRow] = []
    for candidate in found:
        names = [texts.get(c) for c in candidate.codes]
        if any(n is None for n in names):
            logger.warning("clue candidate with an unnamed feature skipped (report changed?)")
            continue
        ordered = sorted(str(n) for n in names)
        anchor = min(zip(candidate.supports, names, strict=True), key=lambda sn: (sn[0], str(sn[1])))[1]
        rules.append(
            RuleRow(
                id=clue_id(ordered),
                label=mining.LABELS[candidate.label],
                month=month,
                features=ordered,
                anchor=str(anchor),
                support=candidate.support,
                in_label=candidate.in_label,
                positive_rate=round(candidate.rate, 6),
                mined_at=mined_at,
            )
        )
    unique = list({r.id: r for r in rules}.values())
    sql.replace_month(store, month, unique)
    done = time.perf_counter()
    by_label: dict[str, int] = defaultdict(int)
    for rule in unique:
        by_label[rule.label] += 1
    result = MiningResult(
        month=month,
        files=len(data.sha256s),
        rules=len(unique),
        by_label=dict(by_label),
        seconds={
            "load": round(loaded - clock, 3),
            "mine": round(mined - loaded, 3),
            "name_and_store": round(done - mined, 3),
            "total": round(done - clock, 3),
        },
    )
    logger.info("mined clue rules of %s: %s", month, result.as_dict())
    return result


def _name_codes(store: Store, sha256s: list[str], found: list[mining.Mined]) -> dict[int, str]:
    """Feature texts of the mined codes, re-extracted from one example report per rule."""
    wanted: set[int] = set()
    examples: dict[str, set[int]] = defaultdict(set)
    for candidate in found:
        wanted.update(candidate.codes)
        examples[sha256s[candidate.example]].update(candidate.codes)
    out: dict[int, str] = {}
    pending = [s for s in examples]
    for start in range(0, len(pending), REPORT_BATCH):
        batch = pending[start : start + REPORT_BATCH]
        for report in store.get_reports(batch).values():
            for text in feat.feature_texts(report.report):
                value = feat.code(text)
                if value in wanted:
                    out[value] = text
    return out


# -- objects ---------------------------------------------------------------------------------------
def rule_attributes(rule: RuleRow) -> dict[str, Any]:
    grouped: dict[str, list[str]] = {}
    for text in rule.features:
        kind, value = feat.decode(text)
        grouped.setdefault(kind, []).append(value)
    return {
        "features": [{"feature_type": k, "objects": v} for k, v in grouped.items()],
        "label": rule.label,
        "last_month": int(rule.month[5:7]),
        "last_month_positive_rate": rule.positive_rate,
        "last_month_total_log10_count": int(math.floor(math.log10(max(rule.support, 1)))),
    }


def get_rule(store: Store, ident: str) -> RuleRow:
    rule = sql.get_rule(store, ident.lower()) if CLUE_ID.fullmatch(ident.lower()) else None
    if rule is None:
        raise NotFoundError(f'Clue rule "{ident}" not found')
    return rule


# -- matching (live) -------------------------------------------------------------------------------
_MATCHERS: dict[str, tuple[tuple[int, int], Matcher]] = {}
_LOCK = threading.Lock()


def matcher(store: Store) -> Matcher:
    """The store's rules as a :class:`Matcher`, rebuilt when the rule set changes."""
    version = sql.rules_version(store)
    with _LOCK:
        cached = _MATCHERS.get(store.url)
        if cached is not None and cached[0] == version:
            return cached[1]
    built = Matcher(sql.all_rule_features(store))
    with _LOCK:
        _MATCHERS[store.url] = (version, built)
    return built


def file_clues(store: Store, sha256: str) -> list[RuleRow]:
    ids = matcher(store).match(sql.file_features(store, sha256))
    return sql.get_rules(store, ids)


def _clues_relationship(services: Services, sha256: str, offset: int, limit: int) -> list[dict[str, Any]]:
    rules = file_clues(services.store, sha256)[offset : offset + limit]
    return [{"type": "clue_rule", "id": r.id, "attributes": rule_attributes(r)} for r in rules]


# -- search modifiers --------------------------------------------------------------------------
class ClueRuleField(Field):
    help = "files matching a clue rule: clue_rule:<64-hex clue id> (also clue:)"

    def compile(self, term: Term, env: Env) -> Clause:
        ident = term.value.strip().lower()
        if not CLUE_ID.fullmatch(ident):
            raise bad_value(term, "a clue rule id (64 hex characters)")
        services = getattr(env, "services", None)
        rule = sql.get_rule(services.store, ident) if services is not None else None
        if rule is None:
            return sa.false()
        table = env.side["clue_features"]
        return sa.and_(*(side_in(env, "clue_features", table.c.value == f) for f in rule.features))


# -- the server's monthly job ------------------------------------------------------------------
class MonthlyMiner:
    """Background thread: on ``day`` of each month (or later), mine the previous month once."""

    def __init__(self, store: Store, day: int, min_support: int, interval: float = 3600.0) -> None:
        self.store, self.day, self.min_support, self.interval = store, day, min_support, interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="kinfile-clue-mining", daemon=True)
        self.done: set[str] = set()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    def due(self, now: datetime) -> str | None:
        month = previous_month(now)
        if now.day < self.day or month in self.done:
            return None
        if sql.list_rules(self.store, month=month, limit=1):
            self.done.add(month)
            return None
        return month

    def run_once(self, now: datetime) -> MiningResult | None:
        month = self.due(now)
        if month is None:
            return None
        result = mine_month(self.store, month, self.min_support)
        self.done.add(month)
        return result

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.run_once(datetime.now(UTC))
            except Exception:  # the job must survive a failed run; it retries next interval
                logger.exception("monthly clue mining failed")
            self.stop_event.wait(self.interval)


def register() -> None:
    relationships.register(
        relationships.Relationship(
            "clues", "Clue rules (mined indicators) that the file matches", _clues_relationship, "clue_rule"
        )
    )
    clue_field = ClueRuleField()
    fields.register("clue_rule", clue_field)
    fields.register("clue", clue_field)


register()
