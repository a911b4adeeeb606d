"""The clue tables on the store: reading a month's codes, rules, and a rule's files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from kinfile.storage import schema
from kinfile.storage.store import Store

CHUNK = 20_000


@dataclass
class MonthData:
    sha256s: list[str]
    positives: np.ndarray
    offsets: np.ndarray
    codes: np.ndarray


@dataclass
class RuleRow:
    id: str
    label: str
    month: str
    features: list[str]
    anchor: str
    support: int
    in_label: int
    positive_rate: float
    mined_at: int


def load_month(store: Store, start: int, end: int) -> MonthData:
    """Every file first submitted in ``[start, end)`` that has clue features: codes in CSR form."""
    f, c = schema.files, schema.file_clue_codes
    q = (
        sa.select(f.c.sha256, f.c.positives, c.c.value)
        .select_from(f.join(c, c.c.sha256 == f.c.sha256))
        .where(f.c.first_submission_date >= start, f.c.first_submission_date < end)
    )
    sha256s: list[str] = []
    positives: list[int] = []
    sizes: list[int] = []
    parts: list[np.ndarray] = []
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(q)
        for part in result.partitions(CHUNK):
            blobs = []
            for sha256, pos, blob in part:
                sha256s.append(sha256)
                positives.append(pos or 0)
                blobs.append(bytes(blob))
                sizes.append(len(blob) // 8)
            parts.append(np.frombuffer(b"".join(blobs), dtype="<i8").astype(np.int64))
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    codes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return MonthData(sha256s, np.asarray(positives, dtype=np.int64), offsets, codes)


def _rule(row: Any) -> RuleRow:
    values = dict(row)
    values["features"] = json.loads(values["features"])
    return RuleRow(**values)


def replace_month(store: Store, month: str, rules: Sequence[RuleRow]) -> None:
    """The rules of ``month`` become exactly ``rules`` (a rule mined again moves to this month)."""
    r = schema.clue_rules
    with store.writing() as conn:
        conn.execute(sa.delete(r).where(r.c.month == month))
        ids = [rule.id for rule in rules]
        for start in range(0, len(ids), 500):
            conn.execute(sa.delete(r).where(r.c.id.in_(ids[start : start + 500])))
        rows = [{**rule.__dict__, "features": json.dumps(rule.features)} for rule in rules]
        for start in range(0, len(rows), 1000):
            conn.execute(r.insert(), rows[start : start + 1000])


def get_rule(store: Store, ident: str) -> RuleRow | None:
    r = schema.clue_rules
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(r).where(r.c.id == ident)).mappings().first()
    return _rule(row) if row is not None else None


def get_rules(store: Store, idents: Sequence[str]) -> list[RuleRow]:
    if not idents:
        return []
    r = schema.clue_rules
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(r).where(r.c.id.in_(list(idents)))).mappings().all()
    found = {row["id"]: _rule(row) for row in rows}
    return [found[i] for i in idents if i in found]


def list_rules(
    store: Store, month: str | None = None, label: str | None = None, after: str = "", limit: int = 100
) -> list[RuleRow]:
    r = schema.clue_rules
    q = sa.select(r).where(r.c.id > after).order_by(r.c.id).limit(limit)
    if month:
        q = q.where(r.c.month == month)
    if label:
        q = q.where(r.c.label == label)
    with store.engine.connect() as conn:
        return [_rule(row) for row in conn.execute(q).mappings()]


def all_rule_features(store: Store) -> list[tuple[str, list[str]]]:
    r = schema.clue_rules
    with store.engine.connect() as conn:
        return [(i, json.loads(f)) for i, f in conn.execute(sa.select(r.c.id, r.c.features).order_by(r.c.id))]


def rules_version(store: Store) -> tuple[int, int]:
    r = schema.clue_rules
    with store.engine.connect() as conn:
        count, newest = conn.execute(sa.select(sa.func.count(), sa.func.max(r.c.mined_at))).one()
    return int(count or 0), int(newest or 0)


def _matching(rule: RuleRow) -> sa.Select[Any]:
    """sha256 of the files with every feature of ``rule``: walk the anchor's rows, probe the rest."""
    cf = schema.file_clue_features
    q = sa.select(cf.c.sha256).where(cf.c.value == rule.anchor)
    for number, feature in enumerate(f for f in rule.features if f != rule.anchor):
        other = cf.alias(f"clue_feature_{number}")
        q = q.where(sa.exists().where(other.c.sha256 == cf.c.sha256, other.c.value == feature))
    return q


def rule_files(store: Store, rule: RuleRow, after: str, limit: int) -> list[str]:
    q = _matching(rule)
    cf = schema.file_clue_features
    with store.engine.connect() as conn:
        return list(conn.execute(q.where(cf.c.sha256 > after).order_by(cf.c.sha256).limit(limit)).scalars())


def count_rule_files(store: Store, rule: RuleRow) -> int:
    q = sa.select(sa.func.count()).select_from(_matching(rule).subquery())
    with store.engine.connect() as conn:
        return int(conn.execute(q).scalar() or 0)


def file_features(store: Store, sha256: str) -> list[str]:
    cf = schema.file_clue_features
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(cf.c.value).where(cf.c.sha256 == sha256)).scalars())
