"""SQL of the daily vhash clusters: one GROUP BY per day, member votes, the per-day cache.

Every query filters ``files.first_submission_date`` to ``[start, end)`` and ``vhash IS NOT
NULL``, so it is answered from the covering index ``ix_files_fs_vhash`` (first_submission_date,
vhash, positives, last_modification_date). Same statements on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.exc import IntegrityError

from kinfile.storage import schema
from kinfile.storage.store import Store

f = schema.files


@dataclass(frozen=True)
class DayState:
    """What the cache of a day is checked against: candidate count and newest modification."""

    candidates: int
    max_modified: int


@dataclass(frozen=True)
class Group:
    vhash: str
    size: int
    positives: int  # sum over the members


@dataclass
class Votes:
    """How the members of one cluster are labelled: family, category and file type counts."""

    family: Counter[str]
    category: Counter[str]
    type_tag: Counter[str]


def _in_day(start: int, end: int) -> Any:
    return and_(f.c.first_submission_date >= start, f.c.first_submission_date < end, f.c.vhash.is_not(None))


def day_state(store: Store, start: int, end: int) -> DayState:
    with store.engine.connect() as conn:
        count, newest = conn.execute(
            select(func.count(f.c.vhash), func.max(f.c.last_modification_date)).where(_in_day(start, end))
        ).one()
    return DayState(int(count or 0), int(newest or 0))


def day_groups(store: Store, start: int, end: int, top: int) -> tuple[int, list[Group]]:
    """The number of distinct vhashes of the day and its ``top`` largest groups.

    Order: size descending, then summed positives descending (= mean, sizes being equal), then
    vhash ascending, so the result is deterministic.
    """
    size = func.count().label("size")
    positives = func.coalesce(func.sum(f.c.positives), 0).label("positives")
    with store.engine.connect() as conn:
        distinct = conn.execute(
            select(func.count(func.distinct(f.c.vhash))).where(_in_day(start, end))
        ).scalar()
        rows = conn.execute(
            select(f.c.vhash, size, positives)
            .where(_in_day(start, end))
            .group_by(f.c.vhash)
            .order_by(size.desc(), positives.desc(), f.c.vhash)
            .limit(top)
        ).all()
    return int(distinct or 0), [Group(r.vhash, int(r.size), int(r.positives)) for r in rows]


def member_votes(store: Store, start: int, end: int, vhashes: Sequence[str]) -> dict[str, Votes]:
    """Family, category and type counts of the members of the given clusters."""
    votes = {v: Votes(Counter(), Counter(), Counter()) for v in vhashes}
    if not vhashes:
        return votes
    n = func.count().label("n")
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(f.c.vhash, f.c.threat_family, f.c.threat_category, f.c.type_tag, n)
            .where(_in_day(start, end), f.c.vhash.in_(list(vhashes)))
            .group_by(f.c.vhash, f.c.threat_family, f.c.threat_category, f.c.type_tag)
        ).all()
    for vhash, family, category, type_tag, count in rows:
        vote = votes[vhash]
        if family:
            vote.family[family] += count
        if category:
            vote.category[category] += count
        if type_tag:
            vote.type_tag[type_tag] += count
    return votes


def read_cache(store: Store, day: int, days: int, state: DayState) -> dict[str, Any] | None:
    """The cached result of a day if it is still valid for ``state``, else ``None``.

    Valid: same candidate count, same newest modification date, and computed after that
    second (dates have one-second resolution: a change in the very second the result was
    computed would otherwise go unnoticed).
    """
    c = schema.vhash_cluster_days
    with store.engine.connect() as conn:
        row = conn.execute(
            select(c.c.candidates, c.c.max_modified, c.c.computed, c.c.payload).where(
                c.c.day == day, c.c.days == days
            )
        ).first()
    if row is None or DayState(int(row.candidates), int(row.max_modified)) != state:
        return None
    if int(row.computed) <= state.max_modified:
        return None
    payload: dict[str, Any] = json.loads(row.payload)
    return payload


def write_cache(store: Store, day: int, days: int, state: DayState, payload: dict[str, Any]) -> None:
    """Replace the cached result of a day (a concurrent writer of the same day may win)."""
    c = schema.vhash_cluster_days
    try:
        with store.writing() as conn:
            conn.execute(delete(c).where(c.c.day == day, c.c.days == days))
            conn.execute(
                c.insert().values(
                    day=day,
                    days=days,
                    candidates=state.candidates,
                    max_modified=state.max_modified,
                    computed=int(time.time()),
                    payload=json.dumps(payload, separators=(",", ":")),
                )
            )
    except IntegrityError:  # another request cached the same day first; its result is as good
        pass
