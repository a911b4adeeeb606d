"""Deleting stored files: every row that names them, in one transaction.

Per-file tables are keyed or indexed by sha256 and lose their rows by it; the tables without a
sha256 index (``schema.KEYED_SIDE_TABLES``, the detection words of storage/avterms.py) lose
theirs by key, from the stored names and report. Relations go in both directions, the per-type
summary is decremented and the cached cluster days are dropped (they are recomputed on demand).
The blobs and the content index are the caller's (services) business, after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select

from kinfile import jsontext
from kinfile.storage import avterms, schema, searchable
from kinfile.storage.store import Store, delete_side_rows

_BY_SHA256 = ("analyses", "submissions", "content_pending")


def delete_files(store: Store, sha256s: Sequence[str]) -> list[str]:
    """Delete the given files (those stored); returns the sha256s deleted."""
    f = schema.files
    wanted = sorted(set(sha256s))
    if not wanted:
        return []
    with store.writing() as conn:
        rows = conn.execute(
            select(f.c.sha256, f.c.report, f.c.type_tag, f.c.size).where(f.c.sha256.in_(wanted))
        ).all()
        if not rows:
            return []
        found = sorted(r.sha256 for r in rows)
        names = conn.execute(
            select(schema.file_names.c.sha256, schema.file_names.c.value).where(
                schema.file_names.c.sha256.in_(found)
            )
        ).all()
        reports = {r.sha256: jsontext.loads_report(r.report) if r.report else {} for r in rows}
        avterms.delete_rows(
            conn, [w for sha, report in reports.items() for w in searchable.av_word_rows(report, sha)]
        )
        trigrams: dict[str, set[str]] = {}
        for sha, name in names:
            trigrams.setdefault(sha, set()).update(searchable.name_trigrams(name))
        for name in schema.SIDE_TABLES:
            if name == "av_words":  # above
                continue
            if name == "name_trigrams":
                previous: dict[str, Any] = trigrams
            elif name in schema.KEYED_SIDE_TABLES:
                previous = {sha: searchable.SIDE_VALUES[name](report) for sha, report in reports.items()}
            else:
                previous = dict.fromkeys(found, ())
            delete_side_rows(conn, name, previous)
        for name in _BY_SHA256:
            table = schema.metadata.tables[name]
            conn.execute(delete(table).where(table.c.sha256.in_(found)))
        rel = schema.file_relations
        conn.execute(delete(rel).where(rel.c.sha256.in_(found)))
        conn.execute(delete(rel).where(rel.c.target.in_(found)))
        per_type: dict[str, list[int]] = {}
        for r in rows:
            entry = per_type.setdefault(r.type_tag or "", [0, 0])
            entry[0] -= 1
            entry[1] -= int(r.size or 0)
        store._bump_type_stats(conn, per_type)
        conn.execute(delete(schema.vhash_cluster_days))
        conn.execute(delete(f).where(f.c.sha256.in_(found)))
    return found
