"""Replacing stored reports (imports enriching stored files), in two steps.

:func:`replacement` computes everything a new report changes: the ``files`` row and, per side
table whose values differ, the previous values and the new rows. It needs only the stored report
it was merged onto and that report's stored text, so an import computes it in its worker
processes. :func:`apply` then writes a batch of them in the writer's transaction, and only those
whose ``base`` text is still the stored one: a report changed meanwhile (by another writer, or
by an earlier batch of the same import) is left to the caller, which merges it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, exists, select, update

from kinfile.storage import avterms, bulk, schema, searchable

RESULTS = "last_analysis_results"


@dataclass
class Replacement:
    """A stored file's new report, and what it changes, computed from the stored text ``base``."""

    sha256: str
    base: str
    values: dict[str, Any]  # the new ``files`` row (sha256 included)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # changed tables' new rows
    previous: dict[str, Any] = field(default_factory=dict)  # changed tables' previous values
    # detection words, if the engine results changed: rows (PostgreSQL) or, with ``terms``
    # (SQLite), the old and new avterms documents
    old_words: list[dict[str, str]] = field(default_factory=list)
    words: list[dict[str, str]] = field(default_factory=list)
    documents: tuple[str, str] | None = None
    # the submission columns, written only while kinfile has no submission of the file
    submissions: dict[str, Any] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)  # imported names the stored report lacked


def replacement(
    values: dict[str, Any], attrs: dict[str, Any], before: dict[str, Any], base: str, terms: bool
) -> Replacement:
    """What writing ``attrs`` (``files`` row ``values``) over the stored report ``before`` (stored
    text ``base``) changes; side tables whose values are the same are not rewritten. ``terms``:
    the store keeps detection words as avterms documents (SQLite)."""
    sha256 = values["sha256"]
    out = Replacement(sha256, base, values)
    counters = searchable.imported_submissions(attrs)
    if counters != searchable.imported_submissions(before):  # else the row holds them already
        out.submissions = counters
    out.names = searchable.imported_names(attrs) - searchable.imported_names(before)
    # the same labels (engine and result) make the same detection words: nothing to rewrite,
    # nor to compute (a rescan that changed only engine versions or dates). Compared sorted: a
    # stored report's engines come back in key order, a merged one's in input order
    words = _labels(before) != _labels(attrs)
    rows = searchable.side_rows(attrs, sha256, words and not terms)
    if words and terms:  # the documents' terms, from the memo per (engine, label)
        out.documents = (bulk.av_document(before), bulk.av_document(attrs))
    elif words:
        out.old_words = searchable.av_word_rows(before, sha256)
        out.words = rows.pop("av_words")
    old = searchable.side_values(before)
    for name, found in rows.items():
        if {r["value"] for r in found} != old.get(name):
            out.previous[name] = old.get(name) or ()
            out.rows[name] = found
    return out


def _labels(attrs: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """``(engine, has a label, label)`` of every result, sorted."""
    results = attrs.get(RESULTS)
    if not isinstance(results, dict):
        return []
    out = []
    for engine, result in results.items():
        label = result.get("result") if isinstance(result, dict) else None
        out.append((str(engine), isinstance(label, str), label if isinstance(label, str) else ""))
    return sorted(out)


def current(conn: Connection, sha256s: Sequence[str]) -> Sequence[Any]:
    """``(sha256, report, type_tag)`` of the stored files among ``sha256s``."""
    f = schema.files
    return conn.execute(select(f.c.sha256, f.c.report, f.c.type_tag).where(f.c.sha256.in_(sha256s))).all()


def apply(store: Any, conn: Connection, items: Sequence[Replacement]) -> list[Replacement]:
    """Write the replacements whose base is still stored (inside the caller's write transaction);
    returns the others (the file changed or is gone), not written. ``store`` is the
    :class:`kinfile.storage.store.Store`."""
    if not items:
        return []
    rows = current(conn, [r.sha256 for r in items])
    stored = {r.sha256: r.report for r in rows}
    fresh = [r for r in items if stored.get(r.sha256) == r.base]
    write(store, conn, fresh, {r.sha256: r.type_tag for r in rows})
    written = {r.sha256 for r in fresh}
    return [r for r in items if r.sha256 not in written]


def write(
    store: Any, conn: Connection, items: Sequence[Replacement], types: Mapping[str, str | None]
) -> None:
    """Write replacements whose base is the stored report (``types``: the stored type tags)."""
    from kinfile.storage.store import delete_side_rows, insert_many

    if not items:
        return
    f = schema.files
    updates: list[dict[str, Any]] = []
    old_words: list[dict[str, str]] = []
    words: list[dict[str, str]] = []
    documents: dict[str, tuple[str, str]] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    previous: dict[str, dict[str, Any]] = {}  # side table -> {sha256: previous values}
    for r in items:
        values = dict(r.values)
        store._type_changed(conn, types.get(r.sha256), values.get("type_tag"), values["size"])
        updates.append({"b_sha256": values.pop("sha256"), **values})
        old_words.extend(r.old_words)
        words.extend(r.words)
        if r.documents is not None:
            documents[r.sha256] = r.documents
        for name, found in r.rows.items():
            rows.setdefault(name, []).extend(found)
            previous.setdefault(name, {})[r.sha256] = r.previous[name]
    conn.execute(update(f).where(f.c.sha256 == bindparam("b_sha256")), updates)
    # report-only files (no submission of kinfile's) take the imported submission counters
    s = schema.submissions
    own = exists().where(s.c.sha256 == f.c.sha256)
    counters = [{"b_sha256": r.sha256, **r.submissions} for r in items if r.submissions]
    if counters:
        conn.execute(update(f).where(f.c.sha256 == bindparam("b_sha256"), ~own), counters)
    names: list[dict[str, str]] = []
    grams: list[dict[str, str]] = []
    for r in items:
        if r.names:
            found, trigrams = searchable.imported_name_rows(r.names, r.sha256)
            names.extend(found)
            grams.extend(trigrams)
    insert_many(conn, schema.file_names, names, ignore=True)  # also a name of a local submission
    insert_many(conn, schema.file_name_trigrams, grams, ignore=True)
    avterms.replace_rows(conn, old_words, words)
    avterms.replace_documents(conn, documents)
    for name, old in previous.items():
        delete_side_rows(conn, name, old)
        # keyed tables lose rows by the values the stored report gives; should a row written
        # from an earlier in-memory report differ, the insert must not fail the whole batch
        insert_many(conn, schema.SIDE_TABLES[name], rows[name], ignore=name in schema.KEYED_SIDE_TABLES)
