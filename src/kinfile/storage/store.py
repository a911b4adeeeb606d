"""The store: one SQLAlchemy Core implementation for SQLite (default) and PostgreSQL.

Only ``services`` and the ingest driver hold a :class:`Store`. Dialect differences are limited
to engine set-up (:func:`create_engine_for`) and the insert-or-ignore statement.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, event, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.sql import Insert

from kinfile.engines.merge import carry_over
from kinfile.errors import ConfigurationError, TransientError
from kinfile.hashing.digests import is_hash
from kinfile.jsontext import dumps_report, loads_report, pack_report
from kinfile.models import RELATIONSHIP_PAIRS, FileRecord, IngestItem, Submission
from kinfile.storage import avterms, migrations, replacing, schema, searchable
from kinfile.tokens import analysis_id

logger = logging.getLogger(__name__)

HASHY_NAME_LENGTHS = {32, 40, 64}


@dataclass
class FileRow:
    """A stored file: its columns, its report and its names."""

    sha256: str
    columns: dict[str, Any]
    report: dict[str, Any]
    names: list[str]


@dataclass
class StoredReport:
    report: dict[str, Any]
    downloadable: bool
    schema_version: int
    md5: str
    sha1: str
    size: int
    text: str = ""  # the stored JSON text ``report`` was read from


@dataclass
class AnalysisRow:
    """One analysis run (``/analyses/{id}``): the results of the engines that ran."""

    sha256: str
    date: int
    status: str
    stats: dict[str, int]
    results: dict[str, Any]
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = analysis_id(self.sha256, self.date)


def unicode_lower(value: Any) -> Any:
    """SQLite's ``lower()`` on a kinfile connection: Python's Unicode lower-casing of a text (NULL
    and numbers as the built-in treats them, a BLOB read as UTF-8)."""
    if value.__class__ is str:
        return value.lower()
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").lower()
    return str(value).lower()


def create_engine_for(url: str) -> Engine:
    """Engine for a ``sqlite:///`` or ``postgresql://`` URL with kinfile's connection settings."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_begin)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.close()
            # Unicode case folding, as Python's (the query side) and PostgreSQL's in a UTF-8
            # locale: the built-in lower() folds ASCII only (name:/magic: missed "Счёт.PDF")
            dbapi_conn.create_function("lower", 1, unicode_lower, deterministic=True)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # Writers take the lock up front: a deferred transaction that upgrades to a write
            # after another writer committed fails at once with SQLITE_BUSY_SNAPSHOT.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

        return engine
    if url.startswith(("postgresql", "postgres")):
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        try:
            return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        except ImportError as exc:  # pragma: no cover - psycopg is a declared dependency
            raise ConfigurationError(f"PostgreSQL driver missing: {exc}") from exc
    raise ConfigurationError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")


class Store:
    """Files, submissions, analyses, relations and API keys in one relational database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine_for(url)
        self.dialect = self.engine.dialect.name
        self.pack_reports = schema.packs_reports(self.dialect)  # schema.stored_report

    # -- lifecycle -------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        try:
            return migrations.migrate(self.engine)
        except IntegrityError:  # another process applied the same migration concurrently
            return migrations.migrate(self.engine)
        except OperationalError as exc:
            raise TransientError(f"database unavailable: {exc.orig}") from exc

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        with self.engine.connect() as conn:
            conn.info["write"] = True
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info["write"] = False

    def _insert_ignore(self, table: Any) -> Insert:
        if self.dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()  # type: ignore[return-value]
        return sqlite.insert(table).on_conflict_do_nothing()  # type: ignore[return-value]

    # -- lookups ---------------------------------------------------------------------------
    def resolve(self, file_hash: str) -> str | None:
        """The sha256 of a stored file given its md5, sha1 or sha256 (any case)."""
        kind = is_hash(file_hash)
        if kind is None:
            return None
        column = getattr(schema.files.c, kind)
        with self.engine.connect() as conn:
            return conn.execute(
                select(schema.files.c.sha256).where(column == file_hash.lower()).limit(1)
            ).scalar()

    def known(self, sha256s: Sequence[str]) -> dict[str, int]:
        """``{sha256: schema_version}`` for the given hashes that are stored."""
        if not sha256s:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(schema.files.c.sha256, schema.files.c.schema_version).where(
                    schema.files.c.sha256.in_(list(sha256s))
                )
            )
            return {r.sha256: r.schema_version for r in rows}

    def with_bytes(self, sha256s: Sequence[str]) -> set[str]:
        """The given hashes whose file is stored with its bytes (``downloadable``): the files
        whose blobs are in use."""
        if not sha256s:
            return set()
        f = schema.files
        with self.engine.connect() as conn:
            query = select(f.c.sha256).where(f.c.sha256.in_(list(sha256s)), f.c.downloadable.is_(True))
            return set(conn.execute(query).scalars())

    def get_file(self, sha256: str) -> FileRow | None:
        f = schema.files
        with self.engine.connect() as conn:
            row = conn.execute(select(f).where(f.c.sha256 == sha256)).mappings().first()
            if row is None:
                return None
            names = list(
                conn.execute(
                    select(schema.submissions.c.name)
                    .where(schema.submissions.c.sha256 == sha256, schema.submissions.c.name.is_not(None))
                    .group_by(schema.submissions.c.name)
                    .order_by(func.min(schema.submissions.c.date))
                ).scalars()
            )
        columns = dict(row)
        report = loads_report(columns.pop("report"))
        return FileRow(sha256=sha256, columns=columns, report=report, names=names)

    def get_files(self, sha256s: Sequence[str]) -> dict[str, FileRow]:
        """Several stored files at once (search pages): ``{sha256: FileRow}``, two queries."""
        if not sha256s:
            return {}
        f, s = schema.files, schema.submissions
        wanted = list(dict.fromkeys(sha256s))
        with self.engine.connect() as conn:
            rows = conn.execute(select(f).where(f.c.sha256.in_(wanted))).mappings().all()
            names = conn.execute(
                select(s.c.sha256, s.c.name, func.min(s.c.date).label("first"))
                .where(s.c.sha256.in_(wanted), s.c.name.is_not(None))
                .group_by(s.c.sha256, s.c.name)
                .order_by(s.c.sha256, func.min(s.c.date))
            ).all()
        by_file: dict[str, list[str]] = {}
        for sha256, name, _first in names:
            by_file.setdefault(sha256, []).append(name)
        out = {}
        for row in rows:
            columns = dict(row)
            report = loads_report(columns.pop("report"))
            out[row["sha256"]] = FileRow(row["sha256"], columns, report, by_file.get(row["sha256"], []))
        return out

    def iter_fuzzy(
        self, since: int | None = None, batch: int = 20000
    ) -> Iterator[tuple[str, str | None, str | None]]:
        """``(sha256, ssdeep, tlsh)`` of every file (or of those written at or after ``since``)."""
        f = schema.files
        if since is not None:  # recent rows only: few, read at once through the date index
            with self.engine.connect() as conn:
                recent = conn.execute(
                    select(f.c.sha256, f.c.ssdeep, f.c.tlsh).where(f.c.stored_at >= since)
                ).all()
            yield from ((r[0], r[1], r[2]) for r in recent)
            return
        last = ""
        while True:
            q = select(f.c.sha256, f.c.ssdeep, f.c.tlsh).where(f.c.sha256 > last)
            with self.engine.connect() as conn:
                chunk = conn.execute(q.order_by(f.c.sha256).limit(batch)).all()
            if not chunk:
                return
            yield from ((r[0], r[1], r[2]) for r in chunk)
            last = chunk[-1][0]

    def count_files(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.files)).scalar() or 0)

    def iter_sha256(self, max_schema_version: int | None = None, batch: int = 1000) -> Iterator[str]:
        """Every stored sha256 (optionally only reports older than a schema version), in order."""
        f = schema.files
        last = ""
        while True:
            q = select(f.c.sha256).where(f.c.sha256 > last).order_by(f.c.sha256).limit(batch)
            if max_schema_version is not None:
                q = q.where(f.c.schema_version < max_schema_version)
            with self.engine.connect() as conn:
                chunk = list(conn.execute(q).scalars())
            if not chunk:
                return
            yield from chunk
            last = chunk[-1]

    # -- writes ----------------------------------------------------------------------------
    def save(self, items: Iterable[IngestItem], analyses: Iterable[AnalysisRow] = ()) -> list[bool]:
        """Write items (each with its children) and analysis runs in ONE transaction.

        Batched: new files, their side-table rows, submissions, names and relations go in one
        multi-row statement per table; only replaced reports and files submitted again need
        statements of their own. Returns "was new" per item.
        """
        top = list(items)
        flat = [i for item in top for i in _flatten(item)]
        now = int(time.time())
        with self.writing() as conn:
            inserted = self._insert_new(conn, flat, now)
            first_seen: set[str] = set()
            new_items: set[int] = set()
            for item in flat:
                if item.record is None:
                    continue
                if item.sha256 in inserted and item.sha256 not in first_seen:
                    new_items.add(id(item))
                elif item.replace_report:
                    self._replace_file(conn, item.record)
                first_seen.add(item.sha256)
            self._queue_content(conn, flat, inserted, now)
            self._insert_submissions(conn, flat, new_items)
            self._insert_relations(conn, flat, now)
            for run in analyses:
                self._insert_analysis(conn, run)
        return [id(item) in new_items for item in top]

    def _queue_content(self, conn: Connection, flat: list[IngestItem], inserted: set[str], now: int) -> None:
        """Queue new files whose bytes are stored for the content index (same transaction)."""
        rows = [
            {"sha256": sha256, "queued": now}
            for sha256 in sorted(
                {
                    i.sha256
                    for i in flat
                    if i.sha256 in inserted and i.record is not None and i.record.downloadable
                }
            )
        ]
        if rows:
            conn.execute(self._insert_ignore(schema.content_pending), rows)

    def _insert_new(self, conn: Connection, flat: list[IngestItem], now: int) -> set[str]:
        """Insert-or-ignore the files of a batch (first occurrence of each sha256)."""
        rows: list[FileRow_] = []
        seen: set[str] = set()
        for item in flat:
            rec = item.record
            if rec is None or item.sha256 in seen:
                continue
            seen.add(item.sha256)
            row, side = rec.rows or file_row(rec, now, self.pack_reports)
            sub = item.submission
            if sub is not None:
                row = {
                    **row,
                    "times_submitted": 1,
                    "unique_sources": 1,
                    "first_submission_date": sub.date,
                    "last_submission_date": sub.date,
                    "meaningful_name": sub.name,
                }
            rows.append((row, side))
        if not rows:
            return set()
        return self._insert_file_rows(conn, rows)

    def _insert_submissions(self, conn: Connection, flat: list[IngestItem], new_items: set[int]) -> None:
        """Every submission of the batch; counters recomputed where the insert did not set them."""
        subs = [(item, item.submission) for item in flat if item.submission is not None]
        if not subs:
            return
        rows, names, trigrams = [], [], []
        per_sha: dict[str, int] = {}
        for item, sub in subs:
            assert sub is not None
            per_sha[item.sha256] = per_sha.get(item.sha256, 0) + 1
            ident = hashlib.sha256(
                f"{item.sha256}|{sub.date}|{sub.source_key}|{sub.interface}|{sub.name}|"
                f"{secrets.token_hex(8)}".encode()
            ).hexdigest()
            rows.append(
                {
                    "sha256": item.sha256,
                    "id": ident,
                    "date": sub.date,
                    "name": sub.name,
                    "source_key": sub.source_key,
                    "interface": sub.interface,
                }
            )
            if sub.name:
                names.append({"value": sub.name[:512], "sha256": item.sha256})
                trigrams.extend(searchable.name_trigram_rows(sub.name, item.sha256))
        insert_many(conn, schema.submissions, rows)
        insert_many(conn, schema.file_names, _distinct(names), ignore=True)
        insert_many(conn, schema.file_name_trigrams, _distinct(trigrams), ignore=True)
        counted = {item.sha256 for item, _ in subs if id(item) in new_items}
        for sha256 in sorted(per_sha):
            if sha256 not in counted or per_sha[sha256] > 1:
                self._refresh_counters(conn, sha256)

    def _insert_relations(self, conn: Connection, flat: list[IngestItem], now: int) -> None:
        rows: list[dict[str, Any]] = []
        for item in flat:
            rel = item.relation
            if rel is None:
                continue
            reverse = RELATIONSHIP_PAIRS.get(rel.relationship, rel.relationship + "_parents")
            date = item.submission.date if item.submission else now
            rows.append(
                {
                    "sha256": rel.parent,
                    "relationship": rel.relationship,
                    "target": rel.child,
                    "name": rel.name,
                    "date": date,
                }
            )
            rows.append(
                {
                    "sha256": rel.child,
                    "relationship": reverse,
                    "target": rel.parent,
                    "name": rel.name,
                    "date": date,
                }
            )
        insert_many(conn, schema.file_relations, _distinct(rows), ignore=True)

    def insert_files(self, records: Sequence[FileRecord]) -> set[str]:
        """Bulk-insert files without submissions (imports) in ONE transaction, skipping stored ones.

        One multi-row statement per table instead of one per file. Returns the inserted sha256s;
        the caller merges the others into the stored reports (:meth:`save`).
        """
        now = int(time.time())
        return self.insert_rows([file_row(rec, now, self.pack_reports) for rec in records])

    def insert_rows(self, rows: Sequence[FileRow_]) -> set[str]:
        """:meth:`insert_files` with the rows already built by :func:`file_row` (e.g. in workers)."""
        if not rows:
            return set()
        with self.writing() as conn:
            return self._insert_file_rows(conn, rows)

    def _insert_file_rows(self, conn: Connection, rows: Sequence[FileRow_]) -> set[str]:
        """Insert-or-ignore ``files`` rows; side-table rows and type statistics of the new ones."""
        f = schema.files
        statement = self._insert_ignore(f).returning(f.c.sha256, sort_by_parameter_order=True)
        files = [{**row, "report": schema.stored_report(row["report"], self.dialect)} for row, _side in rows]
        inserted = {r[0] for r in conn.execute(statement, files)}
        side: dict[str, list[dict[str, Any]]] = {}
        per_type: dict[str, list[int]] = {}
        done: set[str] = set()
        for row, values in rows:
            sha256 = row["sha256"]
            if sha256 not in inserted or sha256 in done:
                continue
            done.add(sha256)
            for name, found in values.items():
                side.setdefault(name, []).extend(found)
            counts = per_type.setdefault(row.get("type_tag") or "", [0, 0])
            counts[0] += 1
            counts[1] += int(row["size"])
        avterms.insert_rows(conn, side.pop("av_words", []))
        for name, entries in side.items():
            insert_many(conn, schema.SIDE_TABLES[name], entries)
        self._bump_type_stats(conn, per_type)
        return inserted

    def _bump_type_stats(self, conn: Connection, deltas: dict[str, list[int]]) -> None:
        """Add ``[files, bytes]`` per type tag to the maintained ``type_stats`` summary."""
        rows = [{"type_tag": k, "files": v[0], "bytes": v[1]} for k, v in sorted(deltas.items()) if any(v)]
        if not rows:
            return
        t = schema.type_stats
        insert = postgresql.insert(t) if self.dialect == "postgresql" else sqlite.insert(t)
        statement = insert.on_conflict_do_update(
            index_elements=[t.c.type_tag],
            set_={"files": t.c.files + insert.excluded.files, "bytes": t.c.bytes + insert.excluded.bytes},
        )
        conn.execute(statement, rows)

    def _type_changed(self, conn: Connection, old: str | None, new: str | None, size: int) -> None:
        if (old or "") != (new or ""):
            self._bump_type_stats(conn, {old or "": [-1, -size], new or "": [1, size]})

    def type_stats(self) -> dict[str, dict[str, float]]:
        """Files, bytes and mean size per type tag, from the summary kept on every write."""
        t = schema.type_stats
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.type_tag, t.c.files, t.c.bytes).where(t.c.files > 0)).all()
        return {
            r.type_tag: {"files": r.files, "bytes": r.bytes, "mean_size": r.bytes / r.files} for r in rows
        }

    def get_reports(self, sha256s: Sequence[str]) -> dict[str, StoredReport]:
        """Report, ``downloadable`` and schema version of the given stored files (one query)."""
        if not sha256s:
            return {}
        f = schema.files
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    f.c.sha256, f.c.report, f.c.downloadable, f.c.schema_version, f.c.md5, f.c.sha1, f.c.size
                ).where(f.c.sha256.in_(list(sha256s)))
            )
            return {
                r.sha256: StoredReport(
                    report=loads_report(r.report),
                    downloadable=bool(r.downloadable),
                    schema_version=r.schema_version,
                    md5=r.md5,
                    sha1=r.sha1,
                    size=r.size,
                    text=r.report,
                )
                for r in rows
            }

    def _replace_file(self, conn: Connection, rec: FileRecord) -> None:
        """Replace the report of a stored file (reanalysis, a richer import) and its side rows.

        The new report keeps what kinfile did not compute this time (imported attributes, engine
        results of other runs): engines/merge.py decides.
        """
        f = schema.files
        now = int(time.time())
        before = conn.execute(
            select(f.c.report, f.c.type_tag, f.c.downloadable).where(f.c.sha256 == rec.sha256)
        ).first()
        if before is None:
            return
        if rec.downloadable and not before.downloadable:  # the bytes of a report-only file arrived
            conn.execute(self._insert_ignore(schema.content_pending), [{"sha256": rec.sha256, "queued": now}])
        previous = loads_report(before.report)
        attrs = carry_over(previous, rec.attributes)
        values = file_values(rec, attrs, now, self.pack_reports)
        self._type_changed(conn, before.type_tag, attrs.get("type_tag"), rec.size)
        values.pop("sha256")
        conn.execute(update(f).where(f.c.sha256 == rec.sha256).values(**values))
        rows = searchable.side_rows(attrs, rec.sha256)
        avterms.replace_rows(conn, searchable.av_word_rows(previous, rec.sha256), rows.pop("av_words"))
        for name, found in rows.items():
            keyed = name in schema.KEYED_SIDE_TABLES  # deleted by key: the stored report's values
            old = searchable.SIDE_VALUES[name](previous) if keyed else ()
            delete_side_rows(conn, name, {rec.sha256: old})
            if found:
                conn.execute(schema.SIDE_TABLES[name].insert(), found)

    def replace_reports(
        self, records: Sequence[FileRecord], bases: Sequence[StoredReport | None] | None = None
    ) -> None:
        """Replace the reports of stored files (imports enriching them) in ONE transaction.

        What :meth:`save` does per item with ``replace_report`` and no submission, batched: one
        statement (or executemany) per table for the whole batch; side tables whose values did
        not change are not rewritten. ``bases[i]``, when given, is the stored report that
        ``records[i]`` was merged onto (the importer; merging never mutates it): while its text
        is still the stored one, the record is written as it is, without a second
        :func:`carry_over` or a second parse of the stored text. Records of files that
        are not stored are written through :meth:`save`.
        """
        if not records:
            return
        now = int(time.time())
        missing: list[FileRecord] = []
        with self.writing() as conn:
            current = replacing.current(conn, [rec.sha256 for rec in records])
            stored = {r.sha256: r.report for r in current}
            terms = avterms.uses_terms(self.dialect)
            items: list[replacing.Replacement] = []
            for i, rec in enumerate(records):
                previous = stored.get(rec.sha256)
                if previous is None:
                    missing.append(rec)
                    continue
                base = bases[i] if bases else None
                merged = base is not None and base.text == previous
                before = base.report if merged and base is not None else loads_report(previous)
                attrs = rec.attributes if merged else carry_over(before, rec.attributes)
                items.append(
                    replacing.replacement(
                        file_values(rec, attrs, now, self.pack_reports), attrs, before, previous, terms
                    )
                )
            # in this transaction: every base is the stored report
            replacing.write(self, conn, items, {r.sha256: r.type_tag for r in current})
        if missing:
            self.save([IngestItem(r.sha256, None, r, replace_report=True) for r in missing])

    def apply_replacements(self, items: Sequence[replacing.Replacement]) -> list[replacing.Replacement]:
        """Write replacements computed elsewhere (an import's workers) in ONE transaction, those
        whose base is still the stored report; returns the others, not written."""
        with self.writing() as conn:
            return replacing.apply(self, conn, items)

    # -- bulk path (benchmarks, first import into an empty store) ------------------------------
    def bulk_load(
        self,
        records: Iterable[tuple[FileRecord, Submission | None]],
        side_tables: Iterable[str] | None = None,
        batch: int = 5000,
    ) -> int:
        """Write many NEW files fast: multi-row INSERTs, ``batch`` files per transaction.

        Columns and side-table rows come from ``searchable`` exactly as in :meth:`save`; files
        already stored are skipped. Simplifications (why it is only for bulk loads): the first
        submission sets the counters, dates and name, but no ``submissions`` row is written,
        and only ``side_tables`` (schema.SIDE_TABLES names; default all) are filled.
        Returns the number of records processed.
        """
        wanted = None if side_tables is None else set(side_tables)
        count = 0
        chunk: list[tuple[FileRecord, Submission | None]] = []
        for record in records:
            chunk.append(record)
            if len(chunk) >= batch:
                count += self._bulk_chunk(chunk, wanted)
                chunk = []
        if chunk:
            count += self._bulk_chunk(chunk, wanted)
        return count

    def _bulk_chunk(self, chunk: list[tuple[FileRecord, Submission | None]], wanted: set[str] | None) -> int:
        now = int(time.time())
        files: list[dict[str, Any]] = []
        sides: dict[str, list[dict[str, str]]] = {}
        for rec, sub in chunk:
            attrs = rec.attributes
            files.append(
                {
                    "sha256": rec.sha256,
                    "md5": rec.md5,
                    "sha1": rec.sha1,
                    "size": rec.size,
                    **searchable.file_columns(attrs),
                    "schema_version": rec.schema_version,
                    "downloadable": rec.downloadable,
                    "report": schema.stored_report(dumps_report(attrs), self.dialect),
                    "last_analysis_date": now,
                    "last_modification_date": now,
                    "times_submitted": 1 if sub else 0,
                    "unique_sources": 1 if sub else 0,
                    "first_submission_date": sub.date if sub else None,
                    "last_submission_date": sub.date if sub else None,
                    "meaningful_name": sub.name if sub else None,
                }
            )
            for name, rows in searchable.side_rows(attrs, rec.sha256).items():
                if wanted is None or name in wanted:
                    sides.setdefault(name, []).extend(rows)
            if sub and sub.name and (wanted is None or "names" in wanted):
                sides.setdefault("names", []).append({"value": sub.name[:512], "sha256": rec.sha256})
                trigrams = searchable.name_trigram_rows(sub.name, rec.sha256)
                sides.setdefault("name_trigrams", []).extend(trigrams)
        with self.writing() as conn:
            conn.execute(self._insert_ignore(schema.files), files)
            avterms.insert_rows(conn, sides.pop("av_words", []))
            for name, rows in sides.items():
                insert_many(conn, schema.SIDE_TABLES[name], rows, ignore=True)
        return len(files)

    def _refresh_counters(self, conn: Connection, sha256: str) -> None:
        s = schema.submissions
        # Serialise concurrent submissions of one file (PostgreSQL; SQLite writers are serial):
        # the counts below then see every committed submission.
        conn.execute(select(schema.files.c.sha256).where(schema.files.c.sha256 == sha256).with_for_update())
        agg = conn.execute(
            select(
                func.count(),
                func.count(func.distinct(s.c.source_key)),
                func.min(s.c.date),
                func.max(s.c.date),
            ).where(s.c.sha256 == sha256)
        ).one()
        names = conn.execute(
            select(s.c.name, func.count(), func.min(s.c.date))
            .where(s.c.sha256 == sha256, s.c.name.is_not(None))
            .group_by(s.c.name)
        ).all()
        conn.execute(
            update(schema.files)
            .where(schema.files.c.sha256 == sha256)
            .values(
                times_submitted=agg[0],
                unique_sources=agg[1],
                first_submission_date=agg[2],
                last_submission_date=agg[3],
                last_modification_date=int(time.time()),
                meaningful_name=meaningful_name([(n, c, d) for n, c, d in names]),
            )
        )

    # -- submissions, relations, analyses ------------------------------------------------------
    def submissions(self, sha256: str, offset: int, limit: int) -> list[dict[str, Any]]:
        s = schema.submissions
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(s)
                .where(s.c.sha256 == sha256)
                .order_by(s.c.date.desc(), s.c.id)
                .offset(offset)
                .limit(limit)
            ).mappings()
            return [dict(r) for r in rows]

    def relations(self, sha256: str, relationship: str, offset: int, limit: int) -> list[dict[str, Any]]:
        r = schema.file_relations
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(r)
                .where(r.c.sha256 == sha256, r.c.relationship == relationship)
                .order_by(r.c.date, r.c.target)
                .offset(offset)
                .limit(limit)
            ).mappings()
            return [dict(x) for x in rows]

    def add_analysis(
        self, sha256: str, date: int, status: str, stats: dict[str, int], results: dict[str, Any]
    ) -> str:
        run = AnalysisRow(sha256=sha256, date=date, status=status, stats=stats, results=results)
        with self.writing() as conn:
            self._insert_analysis(conn, run)
        return run.id

    def _insert_analysis(self, conn: Connection, run: AnalysisRow) -> None:
        conn.execute(
            schema.analyses.insert().values(
                sha256=run.sha256,
                id=run.id,
                date=run.date,
                status=run.status,
                stats=json.dumps(run.stats),
                results=json.dumps(run.results),
            )
        )
        conn.execute(
            update(schema.files)
            .where(schema.files.c.sha256 == run.sha256)
            .values(last_analysis_date=run.date)
        )

    def get_analysis(self, sha256: str, ident: str) -> dict[str, Any] | None:
        a = schema.analyses
        with self.engine.connect() as conn:
            row = conn.execute(select(a).where(a.c.sha256 == sha256, a.c.id == ident)).mappings().first()
        if row is None:
            return None
        out = dict(row)
        out["stats"] = json.loads(out["stats"])
        out["results"] = json.loads(out["results"])
        return out

    # -- API keys ----------------------------------------------------------------------------
    def create_api_key(self, name: str) -> str:
        key = secrets.token_hex(32)
        with self.writing() as conn:
            conn.execute(
                schema.api_keys.insert().values(key_hash=hash_key(key), name=name, created=int(time.time()))
            )
        return key

    def api_key_name(self, key: str) -> str | None:
        k = schema.api_keys
        with self.engine.connect() as conn:
            return conn.execute(select(k.c.name).where(k.c.key_hash == hash_key(key))).scalar()

    def list_api_keys(self) -> list[dict[str, Any]]:
        k = schema.api_keys
        with self.engine.connect() as conn:
            return [
                dict(r) for r in conn.execute(select(k.c.name, k.c.created).order_by(k.c.created)).mappings()
            ]

    def revoke_api_keys(self, name: str) -> int:
        with self.writing() as conn:
            return int(conn.execute(delete(schema.api_keys).where(schema.api_keys.c.name == name)).rowcount)


FileRow_ = tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]


def file_row(rec: FileRecord, now: int, pack: bool = False) -> FileRow_:
    """The ``files`` row (no submissions) and side-table values of a new report-only file."""
    return file_columns(rec, now, pack), searchable.side_rows(rec.attributes, rec.sha256)


def file_columns(rec: FileRecord, now: int, pack: bool = False) -> dict[str, Any]:
    """The ``files`` row of a new report-only file: no submissions of kinfile's, so its
    submission columns are the imported report's (``searchable.imported_submissions``)."""
    return {**file_values(rec, rec.attributes, now, pack), **searchable.imported_submissions(rec.attributes)}


def delete_side_rows(conn: Connection, name: str, previous: Mapping[str, Iterable[Any]]) -> None:
    """Delete the ``name`` side rows of files ``{sha256: values they had}``: by sha256, or by key
    for the tables without a sha256 index (``schema.KEYED_SIDE_TABLES``; the values are those
    of the stored report, ``searchable.side_values``)."""
    table = schema.SIDE_TABLES[name]
    if name not in schema.KEYED_SIDE_TABLES:
        conn.execute(delete(table).where(table.c.sha256.in_(sorted(previous))))
        return
    keys = sorted((value, sha256) for sha256, values in previous.items() for value in values)
    delete_keys(conn, table, keys)


def delete_keys(conn: Connection, table: Any, keys: Sequence[tuple[Any, str]]) -> None:
    """Delete the rows of a ``(value, sha256)``-keyed text table by key. PostgreSQL: one
    statement over a JSON list of the keys (executemany cost ~30 µs of driver time a key: an
    update of 3,000 label reports spent most of its 6 ms a report deleting its ~30 old detection
    words); SQLite: the driver's executemany (each row a B-tree probe of its own)."""
    if not keys:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                f"DELETE FROM {table.name} WHERE (value, sha256) IN "
                "(SELECT k->>0, k->>1 FROM json_array_elements(CAST(:keys AS json)) AS k)"
            ),
            {"keys": json.dumps(keys, separators=(",", ":"))},
        )
        return
    conn.exec_driver_sql(f"DELETE FROM {table.name} WHERE value = ? AND sha256 = ?", list(keys))


_JSON_PLAIN = (str, int)  # values a JSON document carries exactly to a text or integer column


def insert_many(conn: Connection, table: Any, rows: Sequence[dict[str, Any]], ignore: bool = False) -> None:
    """Insert many rows of one shape. On SQLite straight through the driver's ``executemany``
    (SQLAlchemy's per-row parameter processing cost as much as the inserts). On PostgreSQL rows
    of texts and integers go as ONE JSON document expanded by ``json_populate_recordset`` (the
    driver's executemany cost ~15 µs a row: ~0.5 ms per label report an update rewrites); other
    rows (bytes, booleans) through Core's executemany."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        columns = list(rows[0])
        if all(v is None or v.__class__ in _JSON_PLAIN for row in rows for v in row.values()):
            listed = ", ".join(columns)
            conflict = " ON CONFLICT DO NOTHING" if ignore else ""
            conn.execute(
                text(
                    f"INSERT INTO {table.name} ({listed}) SELECT {listed} FROM "
                    f"json_populate_recordset(NULL::{table.name}, CAST(:rows AS json)){conflict}"
                ),
                {"rows": json.dumps(list(rows), separators=(",", ":"))},
            )
            return
        statement = table.insert()
        if ignore:
            statement = postgresql.insert(table).on_conflict_do_nothing()
        conn.execute(statement, list(rows))
        return
    columns = list(rows[0])
    conflict = " ON CONFLICT DO NOTHING" if ignore else ""
    marks = ", ".join("?" * len(columns))
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks}){conflict}"
    params = [tuple(row[c] for c in columns) for row in rows]
    if columns[:2] == ["value", "sha256"]:
        params.sort()  # (value, sha256) key order: B-tree pages are filled in turn, not at random
    conn.exec_driver_sql(sql, params)


def file_values(rec: FileRecord, attrs: dict[str, Any], now: int, pack: bool = False) -> dict[str, Any]:
    """The ``files`` row of a report. Dates an imported report brings are kept. ``pack``: the
    report as a SQLite store keeps it (``schema.stored_report``)."""
    report = dumps_report(attrs)
    return {
        "sha256": rec.sha256,
        "md5": rec.md5,
        "sha1": rec.sha1,
        "size": rec.size,
        **searchable.file_columns(attrs),
        "schema_version": rec.schema_version,
        "downloadable": rec.downloadable,
        "report": pack_report(report) if pack else report,
        "last_analysis_date": _int_or(attrs.get("last_analysis_date"), now),
        "last_modification_date": _int_or(attrs.get("last_modification_date"), now),
    }


def _int_or(value: Any, default: int) -> int:
    """A date column's value: the report's, when it fits the column, else ``default``."""
    found = searchable.fit("last_analysis_date", searchable.as_int(value))
    return default if found is None else int(found)


def _flatten(item: IngestItem) -> Iterator[IngestItem]:
    """An item and its descendants, parents first."""
    yield item
    for child in item.children:
        yield from _flatten(child)


def _distinct(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without repeats (one multi-row insert-or-ignore must not name a key twice)."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for row in rows:
        key = tuple(row.values())
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def meaningful_name(names: list[tuple[str, int, int]]) -> str | None:
    """VirusTotal-style pick: the most submitted name that is not just a hash, earliest first."""
    if not names:
        return None

    def hashy(name: str) -> bool:
        stem = name.rsplit(".", 1)[0]
        return len(stem) in HASHY_NAME_LENGTHS and is_hash(stem) is not None

    ranked = sorted(names, key=lambda t: (hashy(t[0]), -t[1], t[2], t[0]))
    return ranked[0][0]
