"""Named, ordered migrations recorded in ``schema_migrations``; the same set runs on both dialects.

A migration is a function of a SQLAlchemy connection. Add new ones at the end of
:data:`MIGRATIONS`; never edit one that has shipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Table,
    bindparam,
    exists,
    func,
    inspect,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Insert

from kinfile import jsontext
from kinfile.models import INTERNAL_KEYS
from kinfile.storage import avterms, schema, searchable

logger = logging.getLogger(__name__)

Migration = tuple[str, Callable[[Connection], None]]


def _initial(conn: Connection) -> None:
    schema.metadata.create_all(conn, checkfirst=True)


def _add_columns(conn: Connection, columns: Sequence[Column[Any]]) -> list[Column[Any]]:
    """ALTER TABLE files ADD COLUMN for each column the table lacks; returns the added ones."""
    existing = {c["name"] for c in inspect(conn).get_columns("files")}
    added = [c for c in columns if c.name not in existing]
    for column in added:
        ddl_type = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE files ADD COLUMN {column.name} {ddl_type}")
    return added


def _create_indexes(conn: Connection, wanted: Sequence[Index]) -> None:
    indexes = {i["name"] for i in inspect(conn).get_indexes("files")}
    for index in wanted:
        if index.name not in indexes:
            index.create(conn)


def _stored_reports(
    conn: Connection, mentioning: str | None = None, batch: int = 500
) -> Iterator[list[tuple[str, Any]]]:
    """Stored reports ``(sha256, attributes)`` in sha256 order, a batch at a time (backfills);
    with ``mentioning``, only those whose JSON text holds it (a compressed report is read and
    checked here: SQL sees its bytes, not its text)."""
    f = schema.files
    where: list[Any] = []
    if mentioning is not None:
        found = f.c.report.contains(mentioning, autoescape=True)
        packed = func.typeof(f.c.report) == "blob"
        where.append(or_(found, packed) if schema.packs_reports(conn.dialect.name) else found)
    last = ""
    while True:
        rows = conn.execute(
            select(f.c.sha256, f.c.report).where(f.c.sha256 > last, *where).order_by(f.c.sha256).limit(batch)
        ).all()
        if not rows:
            return
        texts = [(sha256, jsontext.unpack_report(report)) for sha256, report in rows]
        yield [(sha, jsontext.loads(text)) for sha, text in texts if mentioning is None or mentioning in text]
        last = rows[-1][0]


def _search(conn: Connection) -> None:
    """Issue 4: search columns on ``files``, search side tables, order indexes; backfill them.

    On a database created by this version's 0001 everything already exists (0001 creates the
    current schema), so each step checks first. Reports already stored are re-read so that the
    new columns and side tables describe them too (the report JSON is the truth).
    """
    added = _add_columns(conn, schema.SEARCH_COLUMNS)
    schema.metadata.create_all(conn, checkfirst=True)
    _create_indexes(conn, schema.SEARCH_INDEXES)
    if added:
        _backfill(conn)


def _backfill(conn: Connection) -> None:
    f = schema.files
    names = [c.name for c in schema.SEARCH_COLUMNS]
    side = schema.SEARCH_SIDE_TABLES
    for rows in _stored_reports(conn):
        for sha256, attrs in rows:
            columns = searchable.file_columns(attrs)
            conn.execute(update(f).where(f.c.sha256 == sha256).values({n: columns.get(n) for n in names}))
            for name, values in searchable.side_values(attrs).items():
                if name in side and values:
                    conn.execute(
                        side[name].insert(), [{"value": v, "sha256": sha256} for v in sorted(values)]
                    )


def _clusters(conn: Connection) -> None:
    """Issue 7: threat family/category columns, the day index and the cluster cache; backfill."""
    added = _add_columns(conn, schema.CLUSTER_COLUMNS)
    schema.metadata.create_all(conn, tables=[schema.vhash_cluster_days], checkfirst=True)
    _create_indexes(conn, schema.CLUSTER_INDEXES)
    if added:
        _backfill_clusters(conn)


def _backfill_clusters(conn: Connection) -> None:
    f = schema.files
    names = [c.name for c in schema.CLUSTER_COLUMNS]
    for rows in _stored_reports(conn, "popular_threat_"):
        for sha256, attrs in rows:
            columns = searchable.file_columns(attrs)
            conn.execute(update(f).where(f.c.sha256 == sha256).values({n: columns.get(n) for n in names}))


def _clues(conn: Connection) -> None:
    """Issue 8: clue feature side tables and the clue rules table; backfill the features."""
    tables = [*schema.CLUE_SIDE_TABLES.values(), schema.clue_rules]
    missing = [t for t in tables if not inspect(conn).has_table(t.name)]
    schema.metadata.create_all(conn, tables=tables, checkfirst=True)
    if schema.file_clue_codes in missing:
        _backfill_clues(conn)


def _backfill_clues(conn: Connection) -> None:
    for rows in _stored_reports(conn):
        for sha256, attrs in rows:
            values = searchable.side_values(attrs)
            for name, table in schema.CLUE_SIDE_TABLES.items():
                found = values.get(name)
                if found:
                    conn.execute(table.insert(), [{"value": v, "sha256": sha256} for v in sorted(found)])


def _search_perf(conn: Connection) -> None:
    """Search/import performance: the ``(type_tag, size)`` covering index, name trigrams and the
    compact ``file_av_words`` (replacing 0002's ``file_av_labels``); both backfilled."""
    _create_indexes(conn, schema.PERF_INDEXES)
    tables = [schema.file_name_trigrams, schema.file_av_words]
    schema.metadata.create_all(conn, tables=tables, checkfirst=True)
    _backfill_name_trigrams(conn)
    _backfill_av_words(conn)
    conn.exec_driver_sql("DROP TABLE IF EXISTS file_av_labels")


def _insert_ignore(conn: Connection, table: Table) -> Insert:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()  # type: ignore[no-any-return]


def _backfill_name_trigrams(conn: Connection, batch: int = 20_000) -> None:
    n = schema.file_names
    statement = _insert_ignore(conn, schema.file_name_trigrams)
    last: tuple[str, str] | None = None
    while True:
        query = select(n.c.value, n.c.sha256).order_by(n.c.value, n.c.sha256).limit(batch)
        if last is not None:
            query = query.where(tuple_(n.c.value, n.c.sha256) > tuple_(*last))
        rows = conn.execute(query).all()
        if not rows:
            return
        grams = [g for value, sha256 in rows for g in searchable.name_trigram_rows(value, sha256)]
        if grams:
            conn.execute(statement, grams)
        last = (rows[-1][0], rows[-1][1])


def _backfill_av_words(conn: Connection) -> None:
    statement = _insert_ignore(conn, schema.file_av_words)
    for rows in _stored_reports(conn, '"last_analysis_results"'):
        words = [w for sha256, attrs in rows for w in searchable.av_word_rows(attrs, sha256)]
        if words:
            conn.execute(statement, words)


def _type_stats(conn: Connection) -> None:
    """0007: the per-type summary, backfilled from the stored files."""
    schema.type_stats.create(conn, checkfirst=True)
    conn.execute(schema.type_stats.delete())
    f = schema.files
    tag = func.coalesce(f.c.type_tag, "")
    conn.execute(
        schema.type_stats.insert().from_select(
            ["type_tag", "files", "bytes"],
            select(tag, func.count(), func.coalesce(func.sum(f.c.size), 0)).group_by(tag),
        )
    )


def _content_pending(conn: Connection) -> None:
    """0008: the queue of the content index, holding every stored file with bytes (backfill)."""
    schema.content_pending.create(conn, checkfirst=True)
    f = schema.files
    statement = _insert_ignore(conn, schema.content_pending).from_select(
        ["sha256", "queued"], select(f.c.sha256, literal(int(time.time()))).where(f.c.downloadable.is_(True))
    )
    conn.execute(statement)


def _detection_terms(conn: Connection) -> None:
    """0009: on SQLite, ``file_av_words`` rows become the FTS5 index of storage/avterms.py
    (rebuilt from the stored reports); PostgreSQL keeps its rows."""
    if not avterms.uses_terms(conn.dialect.name):
        return
    avterms.create(conn)
    rebuild_detection_terms(conn)
    conn.exec_driver_sql("DROP TABLE IF EXISTS file_av_words")


def rebuild_detection_terms(conn: Connection) -> None:
    """SQLite: the detection-word index again from every stored report (``last_analysis_results``)."""
    avterms.clear(conn)
    for rows in _stored_reports(conn, '"last_analysis_results"'):
        words = [w for sha256, attrs in rows for w in searchable.av_word_rows(attrs, sha256)]
        avterms.insert_rows(conn, words)


def _have_by_key(conn: Connection) -> None:
    """0010: ``file_have`` keyed (value, sha256) only: no sha256 index, no rowid on SQLite
    (schema.file_have). Its rows are rebuilt from the stored reports, since replacements and
    deletions now remove them by key, from the values of the stored report."""
    table = schema.file_have
    if "ix_file_have_sha256" in {i["name"] for i in inspect(conn).get_indexes(table.name)}:
        conn.exec_driver_sql("DROP INDEX ix_file_have_sha256")
    if conn.dialect.name == "sqlite":
        ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'file_have'").scalar()
        if "WITHOUT ROWID" not in str(ddl).upper():
            conn.exec_driver_sql("DROP TABLE file_have")
            table.create(conn)
    rebuild_have(conn)


def rebuild_have(conn: Connection) -> None:
    """The ``file_have`` rows again from every stored report (``kinfile reindex``, 0010)."""
    conn.execute(schema.file_have.delete())
    for rows in _stored_reports(conn):
        _insert_have(conn, rows)


def _insert_have(conn: Connection, rows: Sequence[tuple[str, Any]]) -> None:
    """The ``file_have`` rows of stored reports ``(sha256, attributes)``."""
    values = [
        {"value": value, "sha256": sha256}
        for sha256, attrs in rows
        for value in sorted(searchable.extract_have(attrs))
    ]
    if values:
        conn.execute(schema.file_have.insert(), values)


def _drop_redundant_indexes(conn: Connection) -> None:
    """0011: drop the single-column ``files`` indexes that a composite index leads with
    (``schema.REDUNDANT_INDEXES``)."""
    for name in schema.REDUNDANT_INDEXES:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


def _words_in_key_order(conn: Connection) -> None:
    """0012: the detection words of a report reaching the side-value cap are now those of its
    engines in key order (searchable._av_words_walk); before, the order the report was built in
    decided, so what such a file indexed could differ from what its stored report gives. When
    the store holds such a report, the detection index is rebuilt (both backends)."""
    batches = _stored_reports(conn, '"last_analysis_results"')
    if not any(searchable.reaches_av_cap(attrs) for rows in batches for _sha, attrs in rows):
        return
    rebuild_detection_index(conn)


def rebuild_detection_index(conn: Connection) -> None:
    """The detection-word index again from every stored report, on either backend (FTS5 on
    SQLite, ``file_av_words`` rows on PostgreSQL): ``kinfile reindex``, 0012."""
    if avterms.uses_terms(conn.dialect.name):
        rebuild_detection_terms(conn)
        return
    conn.execute(schema.file_av_words.delete())
    _backfill_av_words(conn)


def _storable_values(conn: Connection) -> None:
    """0013: index values are now NUL-free (jsontext.storable: PostgreSQL text cannot hold NUL,
    so such a value failed its whole batch there). On SQLite a stored report may hold a label
    or an attribute name with NUL, indexed as it was; the detection index (rebuilt) and the
    ``have:`` rows of those files (removed by key, so they must be what the report gives now)
    are made again. Nothing to do on a store without NUL (the JSON escape ``\\u0000``)."""
    batches = _stored_reports(conn, "\\u0000")
    affected = [(sha256, attrs) for rows in batches for sha256, attrs in rows]
    if not affected:
        return
    if avterms.uses_terms(conn.dialect.name):
        rebuild_detection_terms(conn)
    have = schema.file_have
    for start in range(0, len(affected), 500):
        part = affected[start : start + 500]
        conn.execute(have.delete().where(have.c.sha256.in_([sha256 for sha256, _attrs in part])))
        _insert_have(conn, part)


def _imported_submissions(conn: Connection) -> None:
    """0014: imported reports' submission data is searchable (``fs:``, ``ls:``, ``s:``,
    ``sources:``, ``name:``): the submission columns of files kinfile has no submission of take
    the report's (searchable.imported_submissions), and imported ``names`` join the names index
    (searchable.imported_names). Backfilled from the stored reports with imported attributes."""
    f, s = schema.files, schema.submissions
    own = exists().where(s.c.sha256 == f.c.sha256)
    statement = update(f).where(f.c.sha256 == bindparam("b_sha256"), ~own)
    names, grams = _insert_ignore(conn, schema.file_names), _insert_ignore(conn, schema.file_name_trigrams)
    for rows in _stored_reports(conn, '"imported"'):
        conn.execute(statement, [{"b_sha256": sha, **searchable.imported_submissions(a)} for sha, a in rows])
        for sha256, attrs in rows:
            found, trigrams = searchable.imported_name_rows(searchable.imported_names(attrs), sha256)
            if found:
                conn.execute(names, found)
                conn.execute(grams, trigrams)


def _have_served_keys_only(conn: Connection) -> None:
    """0015: ``have:`` values are served attributes only: the rows of kinfile's internal report
    keys (``verdict_sources``, one per file with verdicts) go (searchable.extract_have)."""
    have = schema.file_have
    conn.execute(have.delete().where(have.c.value.in_(sorted(INTERNAL_KEYS))))


MIGRATIONS: list[Migration] = [
    ("0001_initial", _initial),
    ("0002_search", _search),
    ("0004_clusters", _clusters),
    ("0005_clues", _clues),
    ("0006_search_perf", _search_perf),
    ("0007_type_stats", _type_stats),
    ("0008_content_pending", _content_pending),
    ("0009_detection_terms", _detection_terms),
    ("0010_have_by_key", _have_by_key),
    ("0011_drop_redundant_indexes", _drop_redundant_indexes),
    ("0012_words_in_key_order", _words_in_key_order),
    ("0013_storable_values", _storable_values),
    ("0014_imported_submissions", _imported_submissions),
    ("0015_have_served_keys_only", _have_served_keys_only),
]


def applied(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, "schema_migrations"):
            return set()
        return set(conn.execute(select(schema.schema_migrations.c.name)).scalars())


def migrate(engine: Engine) -> list[str]:
    """Apply pending migrations in order, each in its own transaction. Returns their names."""
    done = applied(engine)
    ran: list[str] = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        with engine.begin() as conn:
            if name == "0001_initial" or engine.dialect.has_table(conn, "schema_migrations"):
                step(conn)
            conn.execute(schema.schema_migrations.insert().values(name=name, applied=int(time.time())))
        logger.info("applied migration %s", name)
        ran.append(name)
    return ran


class Compacted(NamedTuple):
    """One batch of :func:`compact_reports`: the last sha256 examined (``None``: no more), the
    text reports examined and those rewritten compressed, with their bytes before and after."""

    last: str | None
    examined: int
    rewritten: int
    before: int
    after: int


def compact_reports(conn: Connection, after: str = "", batch: int = 500) -> Compacted:
    """SQLite: one batch of reports kept as JSON text (written before kinfile compressed them)
    stored compressed (``schema.stored_report``), in sha256 order from ``after``; short ones
    stay text. Only the ``report`` column changes: an import that computed a replacement
    from the text sees its base changed and merges again (replacing.apply)."""
    f = schema.files
    if not schema.packs_reports(conn.dialect.name):
        return Compacted(None, 0, 0, 0, 0)
    rows = conn.execute(
        select(f.c.sha256, f.c.report)
        .where(f.c.sha256 > after, func.typeof(f.c.report) == "text")
        .order_by(f.c.sha256)
        .limit(batch)
    ).all()
    if not rows:
        return Compacted(None, 0, 0, 0, 0)
    long = [(sha256, text) for sha256, text in rows if len(text) >= jsontext.PACK_FROM]
    updates = [{"b_sha256": sha256, "report": jsontext.pack_report(text)} for sha256, text in long]
    if updates:
        conn.execute(update(f).where(f.c.sha256 == bindparam("b_sha256")), updates)
    before = sum(len(text.encode("utf-8", "surrogatepass")) for _sha, text in long)
    return Compacted(rows[-1][0], len(rows), len(updates), before, sum(len(u["report"]) for u in updates))


def text_reports(conn: Connection) -> int:
    """SQLite: how many stored reports are kept as JSON text (short ones stay text)."""
    f = schema.files
    if not schema.packs_reports(conn.dialect.name):
        return 0
    return int(conn.execute(select(func.count()).where(func.typeof(f.c.report) == "text")).scalar() or 0)
