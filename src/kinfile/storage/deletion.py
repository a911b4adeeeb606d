"""Deleting stored files: every row that names them, in one transaction.

Per-file tables are keyed or indexed by sha256 and lose their rows by it; the two tables
without a sha256 index (``file_name_trigrams``, the detection words of storage/avterms.py) lose
theirs by key, from the stored names and report. Relations go in both directions, the per-type summary is
decremented and the cached cluster days are dropped (they are recomputed on demand). The blobs
and the content index are the caller's (services) business, after the commit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import bindparam, delete, select

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
        found = [r.sha256 for r in rows]
        names = conn.execute(
            select(schema.file_names.c.sha256, schema.file_names.c.value).where(
                schema.file_names.c.sha256.in_(found)
            )
        ).all()
        avterms.delete_rows(
            conn,
            [
                w
                for r in rows
                for w in searchable.av_word_rows(json.loads(r.report) if r.report else {}, r.sha256)
            ],
        )
        trigram_keys = [
            {"b_sha256": sha, "b_value": gram}
            for sha, name in names
            for gram in searchable.name_trigrams(name)
        ]
        if trigram_keys:
            table = schema.file_name_trigrams
            conn.execute(
                delete(table).where(
                    table.c.sha256 == bindparam("b_sha256"), table.c.value == bindparam("b_value")
                ),
                sorted(trigram_keys, key=lambda k: (k["b_value"], k["b_sha256"])),
            )
        reports = {r.sha256: json.loads(r.report) if r.report else {} for r in rows}
        for name, table in schema.SIDE_TABLES.items():
            if table.name in ("file_av_words", "file_name_trigrams"):
                continue
            if name in schema.KEYED_SIDE_TABLES:
                extract = searchable.SIDE_VALUES[name]
                delete_side_rows(conn, name, {sha: extract(report) for sha, report in reports.items()})
            else:
                conn.execute(delete(table).where(table.c.sha256.in_(found)))
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
