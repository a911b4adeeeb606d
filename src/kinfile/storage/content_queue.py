"""Store queries of the content index: its queue of new files and the parent/child walk.

``content_pending`` holds the stored files whose bytes the content index has not taken yet
(written in the file's own transaction by :meth:`Store.save`); the indexer removes a row once the
file's segment is committed. The relation walk maps a matching sub-file to the files that
contain it (``file_relations`` holds both directions of every parent/child pair).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, literal, select

from kinfile.models import RELATIONSHIP_PAIRS
from kinfile.storage import schema
from kinfile.storage.store import Store

PARENT_RELATIONS = tuple(RELATIONSHIP_PAIRS.values())
CHILD_RELATIONS = tuple(RELATIONSHIP_PAIRS)
CHUNK = 500


def pending(store: Store, limit: int, after: tuple[int, str] | None = None) -> list[tuple[int, str, int]]:
    """Queued ``(queued, sha256, size)`` in queue order, starting after ``(queued, sha256)``
    (the size from the file's row: a join on sha256, co-located on Citus)."""
    q, f = schema.content_pending, schema.files
    statement = (
        select(q.c.queued, q.c.sha256, f.c.size)
        .join(f, f.c.sha256 == q.c.sha256)
        .order_by(q.c.queued, q.c.sha256)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(
            (q.c.queued > after[0]) | ((q.c.queued == after[0]) & (q.c.sha256 > after[1]))
        )
    with store.engine.connect() as conn:
        return [(int(r[0]), str(r[1]), int(r[2] or 0)) for r in conn.execute(statement)]


def pending_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.content_pending)).scalar() or 0)


def pending_sha256s(store: Store, limit: int) -> list[str]:
    return [sha for _q, sha, _size in pending(store, limit)]


def mark_indexed(store: Store, sha256s: Sequence[str]) -> None:
    q = schema.content_pending
    with store.writing() as conn:
        for i in range(0, len(sha256s), CHUNK):
            conn.execute(delete(q).where(q.c.sha256.in_(list(sha256s[i : i + CHUNK]))))


def enqueue_all(store: Store) -> int:
    """Queue every stored file with bytes (a rebuild of the index). Returns the queue length."""
    f, q = schema.files, schema.content_pending
    with store.writing() as conn:
        conn.execute(delete(q))
        conn.execute(
            q.insert().from_select(
                ["sha256", "queued"], select(f.c.sha256, literal(int(time.time()))).where(f.c.downloadable)
            )
        )
    return pending_count(store)


def _walk(store: Store, sha256s: Iterable[str], relations: tuple[str, ...]) -> dict[str, set[str]]:
    r = schema.file_relations
    out: dict[str, set[str]] = {}
    keys = sorted(set(sha256s))
    with store.engine.connect() as conn:
        for i in range(0, len(keys), CHUNK):
            statement = select(r.c.sha256, r.c.target).where(
                r.c.sha256.in_(keys[i : i + CHUNK]), r.c.relationship.in_(relations)
            )
            for sha, target in conn.execute(statement):
                out.setdefault(sha, set()).add(target)
    return out


def parents(store: Store, sha256s: Iterable[str]) -> dict[str, set[str]]:
    """Direct containers of each file (archives, PE files, documents)."""
    return _walk(store, sha256s, PARENT_RELATIONS)


def children(store: Store, sha256s: Iterable[str]) -> dict[str, set[str]]:
    """Direct sub-files of each file."""
    return _walk(store, sha256s, CHILD_RELATIONS)


def ancestors(store: Store, sha256s: Iterable[str], depth: int) -> dict[str, set[str]]:
    """Every container of each file up to ``depth`` levels (cycles are harmless)."""
    result: dict[str, set[str]] = {s: set() for s in sha256s}
    frontier = {s: {s} for s in result}
    for _level in range(depth):
        level = parents(store, {x for xs in frontier.values() for x in xs})
        if not level:
            break
        nxt: dict[str, set[str]] = {}
        for origin, xs in frontier.items():
            found = {p for x in xs for p in level.get(x, ())} - result[origin] - {origin}
            if found:
                result[origin] |= found
                nxt[origin] = found
        frontier = nxt
        if not frontier:
            break
    return result


def descendants(store: Store, sha256: str, depth: int) -> set[str]:
    found: set[str] = set()
    frontier = {sha256}
    for _level in range(depth):
        level = children(store, frontier)
        frontier = {c for cs in level.values() for c in cs} - found - {sha256}
        if not frontier:
            break
        found |= frontier
    return found


def only_extracted(store: Store, sha256: str) -> bool:
    """True when every submission of the file is an extraction from a container."""
    s = schema.submissions
    with store.engine.connect() as conn:
        own = conn.execute(
            select(func.count()).where(s.c.sha256 == sha256, s.c.interface != "extracted")
        ).scalar()
    return not own
