"""The detection-word index behind ``engines:`` and ``<engine>:`` (one module, both backends).

What is indexed per file is :func:`searchable.extract_av_words`: every distinct label and label
word over all engines, with the engines that gave it. How it is stored depends on the backend:

* **PostgreSQL**: one ``file_av_words`` row ``(value, sha256, engines)`` per value (distributed
  by sha256 on Citus; PostgreSQL's B-trees take random inserts well).
* **SQLite**: an FTS5 inverted index. One B-tree row per (value, file) was the import's
  bottleneck and it grew with the store: each batch's rows spread over every page of the
  ``(value, sha256)`` key, so a commit rewrote most of the table (measured: 0.3 ms per report
  in an empty store, 0.9 ms at 70,000 files). FTS5 writes each transaction's postings as one new
  compressed segment and merges segments in the background, so the cost per report stays flat.

  Every file with detection words is one FTS5 document (``av_terms``, contentless,
  ``detail=none``, ``ascii`` tokenizer) whose rowid is the file's ``fid`` in ``av_docs``
  (``fid INTEGER PRIMARY KEY``, stable across VACUUM, and ``sha256 UNIQUE``). Its terms are
  ``w<value>`` for each value and ``e<engine>\\ue000<value>`` for each engine that gave it. A
  value is encoded so that a term is one token: ``[0-9a-z]`` and non-ASCII characters stay,
  every other ASCII character becomes one private-use character (U+E000 + code). Encoding is
  per character, so a prefix or a substring of a value is a prefix or a substring of its term:
  ``engines:troj*`` is a prefix query and other wildcards are a LIKE over the index vocabulary
  (``av_vocab``). A label that itself holds a private-use character U+E000–U+E07F is indexed
  as if it held the ASCII character of that code (a documented aliasing; no real label does).

  A contentless document is deleted by repeating its terms, so replacements and deletions
  recompute the old terms from the stored report, as they did for ``file_av_words`` rows. A
  change to :func:`searchable.extract_av_words` or to the encoding therefore ships with a
  migration that calls ``migrations.rebuild_detection_terms`` (as 0009 does).
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from kinfile.errors import ConfigurationError
from kinfile.storage import schema

DOCS = sa.Table(  # not in schema.metadata: SQLite only, created by migration 0009
    "av_docs",
    sa.MetaData(),
    sa.Column("fid", sa.Integer, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
)
TERMS = sa.table("av_terms", sa.column("rowid", sa.Integer), sa.column("av_terms", sa.Text))
VOCAB = sa.table("av_vocab", sa.column("term", sa.Text))
SEPARATOR = "\ue000"  # between an engine and a value in a pair term (the code of "\x00")

_ENCODE = {c: chr(0xE000 + c) for c in range(128) if not chr(c).isalnum() or chr(c).isupper()}

DDL = (  # after DOCS
    "CREATE VIRTUAL TABLE IF NOT EXISTS av_terms USING fts5("
    "terms, content='', detail=none, columnsize=0, tokenize='ascii')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS av_vocab USING fts5vocab(av_terms, 'row')",
    # FTS5 buffers a transaction's postings in memory and writes a segment whenever they pass
    # 'hashsize' (default 1 MiB, ~200 files' terms): 16 MiB makes a bulk batch a few large
    # segments instead of ~50 small ones to merge (0.30 -> 0.11 ms per file, measured)
    f"INSERT INTO av_terms (av_terms, rank) VALUES ('hashsize', {16 << 20})",
)

Words = Mapping[str, str]  # {value: ",engine,engine,"} of one file (searchable.extract_av_words)


def uses_terms(dialect: str) -> bool:
    """Whether a database dialect keeps detection words here (SQLite) or in rows (PostgreSQL)."""
    return dialect == "sqlite"


def encode(value: str) -> str:
    """One FTS5 token per value (module docstring); prefixes and substrings are preserved."""
    return value.translate(_ENCODE)


@functools.lru_cache(maxsize=200_000)
def value_term(value: str) -> str:
    return "w" + encode(value)


@functools.lru_cache(maxsize=4096)
def engine_prefix(engine: str) -> str:
    return "e" + encode(engine) + SEPARATOR


def document(words: Words) -> str:
    """The FTS5 text of a file's detection words: its terms separated by spaces."""
    terms: list[str] = []
    for value, engines in words.items():
        term = value_term(value)
        terms.append(term)
        rest = term[1:]
        terms.extend(engine_prefix(engine) + rest for engine in engines[1:-1].split(","))
    return " ".join(terms)


def words_by_file(rows: Iterable[Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """``file_av_words``-shaped rows grouped per file: ``{sha256: {value: engines}}``."""
    out: dict[str, dict[str, str]] = {}
    for row in rows:
        out.setdefault(row["sha256"], {})[row["value"]] = row["engines"]
    return out


# -- writing --------------------------------------------------------------------------------------
def insert_rows(conn: Connection, rows: Sequence[Mapping[str, str]]) -> None:
    """Index the detection words of files that have none indexed yet (new files)."""
    if not rows:
        return
    if not uses_terms(conn.dialect.name):
        from kinfile.storage.store import insert_many

        insert_many(conn, schema.file_av_words, [dict(r) for r in rows])
        return
    insert_documents(conn, {sha: document(words) for sha, words in words_by_file(rows).items()})


def insert_documents(conn: Connection, documents: Mapping[str, str]) -> None:
    """SQLite: new ``av_docs`` rows (fids allocated in the write transaction) and their terms;
    files indexed already are skipped."""
    if not documents:
        return
    indexed = _fids(conn, list(documents))
    shas = sorted(sha for sha in documents if sha not in indexed)
    if not shas:
        return
    start = conn.exec_driver_sql("SELECT coalesce(max(fid), 0) FROM av_docs").scalar() or 0
    fids = range(start + 1, start + 1 + len(shas))
    conn.exec_driver_sql(
        "INSERT INTO av_docs (fid, sha256) VALUES (?, ?)", list(zip(fids, shas, strict=True))
    )
    conn.exec_driver_sql(
        "INSERT INTO av_terms (rowid, terms) VALUES (?, ?)",
        [(fid, documents[sha]) for fid, sha in zip(fids, shas, strict=True)],
    )


def replace_rows(
    conn: Connection, old: Sequence[Mapping[str, str]], new: Sequence[Mapping[str, str]]
) -> None:
    """Rewrite what changed between files' previous and new detection words."""
    if not uses_terms(conn.dialect.name):
        _replace_word_rows(conn, old, new)
        return
    before, after = words_by_file(old), words_by_file(new)
    changed = (sha for sha in before.keys() | after.keys() if before.get(sha) != after.get(sha))
    replace_documents(
        conn, {sha: (document(before.get(sha) or {}), document(after.get(sha) or {})) for sha in changed}
    )


def replace_documents(conn: Connection, documents: Mapping[str, tuple[str, str]]) -> None:
    """SQLite: replace files' documents ``{sha256: (old document, new document)}`` (an empty
    document: none); the old one is the document of the stored report, as it was indexed."""
    if not documents:
        return
    shas = sorted(documents)
    fids = _fids(conn, [sha for sha in shas if documents[sha][0]])
    if fids:
        _delete_documents(conn, {fids[sha]: documents[sha][0] for sha in fids})
        conn.exec_driver_sql("DELETE FROM av_docs WHERE fid = ?", [(fid,) for fid in sorted(fids.values())])
    insert_documents(conn, {sha: documents[sha][1] for sha in shas if documents[sha][1]})


def delete_rows(conn: Connection, rows: Sequence[Mapping[str, str]]) -> None:
    """Remove deleted files' detection words (``rows`` from their stored reports)."""
    replace_rows(conn, rows, [])


def _fids(conn: Connection, sha256s: Sequence[str]) -> dict[str, int]:
    if not sha256s:
        return {}
    rows = conn.exec_driver_sql(
        "SELECT sha256, fid FROM av_docs WHERE sha256 IN (SELECT value FROM json_each(?))",
        (json.dumps(list(sha256s)),),
    )
    return {sha: fid for sha, fid in rows}


def _delete_documents(conn: Connection, documents: Mapping[int, str]) -> None:
    if documents:
        conn.exec_driver_sql(
            "INSERT INTO av_terms (av_terms, rowid, terms) VALUES ('delete', ?, ?)",
            sorted(documents.items()),
        )


def _replace_word_rows(
    conn: Connection, old: Sequence[Mapping[str, str]], new: Sequence[Mapping[str, str]]
) -> None:
    """PostgreSQL: rows that changed, deleted by primary key (no sha256 index)."""
    from kinfile.storage.store import delete_keys, insert_many

    keep = {(r["sha256"], r["value"], r["engines"]) for r in old}
    fresh = {(r["sha256"], r["value"], r["engines"]) for r in new}
    table = schema.file_av_words
    delete_keys(conn, table, sorted((v, s) for s, v, _e in keep - fresh))
    insert_many(conn, table, [dict(r) for r in new if (r["sha256"], r["value"], r["engines"]) not in keep])


def create(conn: Connection) -> None:
    """SQLite: the index tables (migration 0009). An SQLite built without FTS5 is refused with
    a clear message (Debian's, Ubuntu's and the python.org builds have it)."""
    DOCS.create(conn, checkfirst=True)
    try:
        for statement in DDL:
            conn.exec_driver_sql(statement)
    except sa.exc.OperationalError as exc:
        if "fts5" not in str(exc).lower():
            raise
        raise ConfigurationError(
            f"this Python's SQLite ({sqlite3.sqlite_version}) has no FTS5 module, which the "
            "detection-word index needs: use a Python linked with a standard libsqlite3, or PostgreSQL"
        ) from exc


def clear(conn: Connection) -> None:
    """SQLite: empty the index (before a rebuild)."""
    conn.exec_driver_sql("INSERT INTO av_terms (av_terms) VALUES ('delete-all')")
    conn.exec_driver_sql("DELETE FROM av_docs")


# -- searching ------------------------------------------------------------------------------------
def _successor(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def matching(value: str, engine: str | None, wildcard: bool) -> sa.Select[Any]:
    """SQLite: ``SELECT sha256`` of the files whose detection words match, as the
    ``file_av_words`` clauses of query/fields.py ``EngineField`` do on PostgreSQL.

    ``value`` is lower-cased; with ``wildcard`` its ``*`` match any run of characters. Without an
    engine a wildcard pattern also matches the rest of a value after one of its colons (as
    ``"*:<value>"`` did in 0002's labels).
    """
    base = "w" if engine is None else engine_prefix(engine)
    if not wildcard:
        fids = _match(sa.literal(f'"{base}{encode(value)}"'))
    else:
        head, _star, _rest = value.partition("*")
        pattern = base + "%".join(encode(part) for part in value.split("*"))
        if engine is not None and value == head + "*" and head:
            fids = _match(sa.literal(f'"{base}{encode(head)}" *'))  # a prefix query
        else:
            term = VOCAB.c.term
            tests: list[Any] = [term.like(pattern)]
            if engine is None:
                tests.append(term.like(f"{base}%{encode(':')}{pattern[len(base) :]}"))
            lower = base + encode(head) if engine is not None else base
            vocabulary = sa.and_(term >= lower, term < _successor(lower), sa.or_(*tests))
            quoted = sa.literal('"').concat(term).concat(sa.literal('"'))
            fids = (
                sa.select(TERMS.c.rowid)
                .select_from(VOCAB)
                .join(TERMS, sa.true())
                .where(vocabulary, TERMS.c.av_terms.match(quoted))
            )
    return sa.select(DOCS.c.sha256).where(DOCS.c.fid.in_(fids))


def _match(query: Any) -> sa.Select[Any]:
    return sa.select(TERMS.c.rowid).where(TERMS.c.av_terms.match(query))


# -- inspecting (tests, status) -------------------------------------------------------------------
def vocabulary(conn: Connection) -> dict[str, int]:
    """SQLite: every indexed term with the number of files holding it."""
    return {term: docs for term, docs in conn.exec_driver_sql("SELECT term, doc FROM av_vocab")}


def vocabulary_of(rows: Iterable[Mapping[str, str]]) -> dict[str, int]:
    """The :func:`vocabulary` that indexing ``file_av_words``-shaped rows gives."""
    counts: dict[str, int] = {}
    for words in words_by_file(rows).values():
        for term in set(document(words).split(" ")):
            counts[term] = counts.get(term, 0) + 1
    return counts


def check(conn: Connection) -> None:
    """SQLite: FTS5's own integrity check (raises on a damaged index)."""
    conn.exec_driver_sql("INSERT INTO av_terms (av_terms) VALUES ('integrity-check')")
