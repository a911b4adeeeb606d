"""The search use-case: parse → check → compile → execute, under a deadline and a row cap.

Shared by ``GET /api/v3/intelligence/search`` and ``kinfile search``. Results are ordered by one
of :data:`ORDERS` with ``sha256`` as the tie-break, and paged with a keyset cursor ``(sort key,
sha256)`` signed by :meth:`Services.encode_cursor`: a page starts strictly after the previous
page's last row, so rows never repeat or go missing between pages while new files arrive (a
file whose sort key itself changes, e.g. re-submitted under ``last_submission_date``, moves).
The cursor also pins the query's *now* (relative dates) and a hash of query and order; a cursor
used with another query, or altered, is an ``InvalidArgumentError``.

Per-``Services`` state (fuzzy-hash indexes, the per-key rate limiter) lives in a weak map, so it
is built once per process and dropped with the services.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import weakref
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import OperationalError

from kinfile import content_search
from kinfile.errors import DeadlineExceededError, InvalidArgumentError, TooManyRequestsError
from kinfile.query import compiler, parse
from kinfile.query.ast import Term
from kinfile.query.fields import Clause, IndexField
from kinfile.similarity import QueryDeadline
from kinfile.similarity.indexes import FuzzyIndexes
from kinfile.storage import avterms, schema
from kinfile.storage.store import FileRow

if TYPE_CHECKING:
    from kinfile.services import Services

logger = logging.getLogger(__name__)

ORDERS = {
    "first_submission_date": "first_submission_date",
    "last_submission_date": "last_submission_date",
    "positives": "positives",
    "times_submitted": "times_submitted",
    "size": "size",
}
DEFAULT_ORDER = "last_submission_date-"
DEFAULT_LIMIT = 10
MAX_LIMIT = 300
SMALL_IN = 500
DENSE = 2000  # side-table matches from which a filter probes per row instead of listing them
PROGRESS_STEPS = 10_000
DEFAULTS = {
    "search_timeout": 10.0,
    "search_max_rows": 100_000,
    "fuzzy_search_rate": 0,
    "similarity_refresh": 1.0,
}


def setting(services: Services, name: str) -> Any:
    return getattr(services.settings, name, DEFAULTS[name])


@dataclass
class Hit:
    sha256: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchPage:
    hits: list[Hit]
    cursor: str | None
    meta: dict[str, Any]
    files: dict[str, FileRow] = field(default_factory=dict)


class RateLimiter:
    """At most ``per_minute`` events per key in any 60-second window (0 = unlimited)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.events: dict[str, deque[float]] = defaultdict(deque)
        self.lock = threading.Lock()

    def take(self, key: str) -> None:
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        with self.lock:
            window = self.events[key]
            while window and now - window[0] >= 60:
                window.popleft()
            if len(window) >= self.per_minute:
                wait = 60 - (now - window[0])
                raise TooManyRequestsError(
                    f"fuzzy-hash searches are limited to {self.per_minute} per minute; retry in {wait:.0f} s"
                )
            window.append(now)


class _State:
    def __init__(self, services: Services) -> None:
        store = services.store
        self.fuzzy = FuzzyIndexes(store.iter_fuzzy, float(setting(services, "similarity_refresh")))
        self.limiter = RateLimiter(int(setting(services, "fuzzy_search_rate")))
        self.days_back: tuple[float, int] | None = None


_STATES: weakref.WeakKeyDictionary[Services, _State] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def state_of(services: Services) -> _State:
    with _STATES_LOCK:
        found = _STATES.get(services)
        if found is None:
            found = _STATES[services] = _State(services)
        return found


def fuzzy_indexes(services: Services) -> FuzzyIndexes:
    return state_of(services).fuzzy


class _Env:
    """The compile environment the query fields see (:class:`kinfile.query.fields.Env`)."""

    def __init__(self, services: Services, now: int, deadline: QueryDeadline, max_rows: int) -> None:
        self.services = services
        self.dialect = services.store.dialect
        self.now = now
        self.deadline = deadline
        self.max_rows = max_rows
        self.files = schema.files
        self.side = schema.SIDE_TABLES
        self.similarity = state_of(services).fuzzy
        self.contexts: dict[str, dict[str, Any]] = {}

    def lookup(self, field: IndexField, term: Term) -> dict[str, dict[str, Any]]:
        self.deadline.check()
        hits = field.search(term, self)
        if len(hits) > self.max_rows:
            raise DeadlineExceededError(
                f"{term.modifier}: matched more than {self.max_rows} files (row cap); narrow the query"
            )
        for sha256, context in hits.items():
            self.contexts.setdefault(sha256, {}).update(context)
        return hits

    def side_filter(self, table: sa.FromClause, clause: Clause, indexed: bool) -> Clause:
        """``IN (SELECT sha256 ...)`` when the side matches are few (they drive the query), a
        correlated ``EXISTS`` probe when they are many (the query walks the order index and
        stops after a page). The density is probed through the ``(value, sha256)`` key."""
        listed = self.files.c.sha256.in_(sa.select(table.c.sha256).where(clause))
        if not indexed:
            return listed
        if self.count(table, clause, DENSE) < DENSE:
            return listed
        return sa.exists().where(table.c.sha256 == self.files.c.sha256, clause)

    def detections(self, value: str, engine: str | None, wildcard: bool) -> Clause | None:
        """SQLite: through the FTS5 index of storage/avterms.py (PostgreSQL: ``None``, rows)."""
        if not avterms.uses_terms(self.dialect):
            return None
        return self.side_filter(avterms.matching(value, engine, wildcard).subquery(), sa.true(), True)

    def count(self, table: sa.FromClause, clause: Clause, cap: int) -> int:
        """Rows of ``table`` matching ``clause``, counted up to ``cap``."""
        self.deadline.check()
        probe = sa.select(sa.func.count()).select_from(
            sa.select(sa.literal(1)).select_from(table).where(clause).limit(cap).subquery()
        )
        with self.services.store.engine.connect() as conn:
            return int(conn.execute(probe).scalar() or 0)

    def sha256_in(self, sha256s: Iterable[str]) -> Clause:
        values = sorted(set(sha256s))
        column = self.files.c.sha256
        if not values:
            return sa.false()
        if len(values) <= SMALL_IN:
            return column.in_(values)
        if self.dialect == "postgresql":
            return column == sa.any_(sa.bindparam(None, values, type_=ARRAY(sa.String)))
        listed = sa.func.json_each(sa.bindparam(None, json.dumps(values), type_=sa.Text)).table_valued(
            "value"
        )
        return column.in_(sa.select(listed.c.value))


def parse_order(order: str | None) -> tuple[str, bool]:
    """``(column, descending)``; a bare name is ascending, as on VirusTotal."""
    text = (order or DEFAULT_ORDER).strip()
    descending = text.endswith("-")
    name = text.rstrip("+-")
    if name not in ORDERS:
        raise InvalidArgumentError(
            f"unsupported order {text!r}; valid: " + ", ".join(f"{o}+/-" for o in ORDERS)
        )
    return ORDERS[name], descending


def parse_limit(limit: int | str | None) -> int:
    if limit is None or limit == "":
        return DEFAULT_LIMIT
    try:
        value = int(limit)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"limit must be an integer, got {limit!r}") from exc
    if value < 1:
        raise InvalidArgumentError("limit must be at least 1")
    return min(value, MAX_LIMIT)


def _query_hash(query: str, order: str) -> str:
    return hashlib.sha256(f"{query}\0{order}".encode()).hexdigest()[:16]


def _after(column: Any, sha256: Any, key: Any, last: str, descending: bool) -> Clause:
    """Rows strictly after ``(key, last)`` in the page order (NULL keys sort as the smallest)."""
    if descending:  # ORDER BY key DESC NULLS LAST, sha256 DESC
        if key is None:
            return sa.and_(column.is_(None), sha256 < last)
        return sa.or_(column < key, sa.and_(column == key, sha256 < last), column.is_(None))
    if key is None:  # ORDER BY key ASC NULLS FIRST, sha256 ASC
        return sa.or_(sa.and_(column.is_(None), sha256 > last), column.is_not(None))
    return sa.or_(column > key, sa.and_(column == key, sha256 > last))


def _execute(services: Services, statement: Any, deadline: QueryDeadline) -> list[Any]:
    deadline.check()
    store = services.store
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection if store.dialect == "sqlite" else None
        if raw is not None:
            raw.set_progress_handler(lambda: int(time.monotonic() > deadline.expires), PROGRESS_STEPS)
        try:
            with conn.begin():
                if store.dialect == "postgresql":
                    ms = max(1, int(deadline.remaining() * 1000))
                    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
                return list(conn.execute(statement).all())
        except OperationalError as exc:
            text = str(exc.orig).lower()
            if "interrupt" in text or "statement timeout" in text or "canceling statement" in text:
                raise DeadlineExceededError("the search took longer than its deadline") from exc
            raise
        finally:
            if raw is not None:
                raw.set_progress_handler(None, 0)


def days_back(services: Services) -> int:
    """Days between now and the oldest first submission (kinfile has no look-back limit)."""
    state = state_of(services)
    if state.days_back and time.monotonic() - state.days_back[0] < 60:
        return state.days_back[1]
    with services.store.engine.connect() as conn:
        oldest = conn.execute(sa.select(sa.func.min(schema.files.c.first_submission_date))).scalar()
    days = 0 if oldest is None else max(0, int((time.time() - oldest) // 86400) + 1)
    state.days_back = (time.monotonic(), days)
    return days


def search(
    services: Services,
    query: str,
    order: str | None = None,
    limit: int | str | None = None,
    cursor: str | None = None,
    owner: str | None = None,
    with_files: bool = False,
) -> SearchPage:
    """One page of files matching ``query``. Raises InvalidArgumentError, DeadlineExceededError,
    TooManyRequestsError."""
    if not query or not query.strip():
        raise InvalidArgumentError("query is required")
    node = parse(query)
    fields = compiler.check(node)
    if content_search.is_content_query(node):  # VTGrep: its own plan, order and cursor
        deadline = QueryDeadline(float(setting(services, "search_timeout")), DeadlineExceededError)
        max_rows = int(setting(services, "search_max_rows"))
        found, next_cursor, meta = content_search.search(
            services,
            query,
            node,
            parse_limit(limit),
            cursor,
            deadline,
            lambda now: _Env(services, now, deadline, max_rows),
        )
        return content_search.page_of(services, found, next_cursor, meta, with_files)
    column_name, descending = parse_order(order)
    size = parse_limit(limit)
    qhash = _query_hash(query, order or DEFAULT_ORDER)
    state = state_of(services)
    if any(f.fuzzy for _t, f in fields):
        state.limiter.take(owner or "local")
    page = services.decode_cursor(cursor)
    if cursor and (page.get("q") != qhash or not isinstance(page.get("s"), str) or "n" not in page):
        raise InvalidArgumentError("invalid cursor: it belongs to another query or order")
    now = int(page.get("n") or time.time())
    deadline = QueryDeadline(float(setting(services, "search_timeout")), DeadlineExceededError)
    env = _Env(services, now, deadline, int(setting(services, "search_max_rows")))
    where = compiler.compile_query(node, env)
    f = schema.files
    column = f.c[column_name]
    statement = sa.select(f.c.sha256, column).where(where)
    if cursor:
        statement = statement.where(_after(column, f.c.sha256, page.get("k"), page["s"], descending))
    if descending:
        statement = statement.order_by(column.desc().nulls_last(), f.c.sha256.desc())
    else:
        statement = statement.order_by(column.asc().nulls_first(), f.c.sha256.asc())
    rows = _execute(services, statement.limit(size + 1), deadline)
    more = len(rows) > size
    rows = rows[:size]
    hits = [Hit(r[0], dict(env.contexts.get(r[0], {}))) for r in rows]
    next_cursor = None
    if more and rows:
        next_cursor = services.encode_cursor({"q": qhash, "k": rows[-1][1], "s": rows[-1][0], "n": now})
    result = SearchPage(hits, next_cursor, {"days_back": days_back(services)})
    if with_files:
        result.files = services.store.get_files([h.sha256 for h in hits])
    return result


def iter_hits(
    services: Services, query: str, order: str | None = None, maximum: int | None = None
) -> Iterator[Hit]:
    """Every hit of a query, page after page (CLI, ``reanalyse --query``)."""
    cursor: str | None = None
    seen = 0
    while True:
        page = search(services, query, order, MAX_LIMIT, cursor)
        for hit in page.hits:
            yield hit
            seen += 1
            if maximum is not None and seen >= maximum:
                return
        if not page.cursor:
            return
        cursor = page.cursor


# -- the similar_files relationship ----------------------------------------------------------
SIMILAR_TLSH_DISTANCE = 100
SIMILAR_EXACT_LIMIT = 1000
# exact-match vectors and the similarity_score they carry (an imphash match alone ranks below
# ssdeep >= 50 and TLSH <= 100; vhash is the stronger structural hash)
SIMILAR_EXACT = (("vhash", 0.75), ("imphash", 0.5))


def similar_files(services: Services, sha256: str, offset: int = 0, limit: int = 10) -> list[dict[str, Any]]:
    """Neighbours of a stored file by ssdeep (score ≥ 1), TLSH (distance ≤ 100), vhash and imphash,
    ranked by ``similarity_score`` (then sha256); each carries the best vector and all vectors."""
    row = services.store.get_file(sha256)
    if row is None:
        return []
    columns = row.columns
    deadline = QueryDeadline(float(setting(services, "search_timeout")), DeadlineExceededError)
    found: dict[str, dict[str, Any]] = {}

    def offer(other: str, score: float, vector: str, **extra: Any) -> None:
        if other == sha256:
            return
        entry = found.setdefault(other, {"similarity_score": -1.0, "vectors": []})
        entry["vectors"].append(vector)
        if score > entry["similarity_score"]:
            entry.update(similarity_score=score, vector=vector, **extra)

    indexes = fuzzy_indexes(services)
    if columns.get("ssdeep"):
        for other, score in indexes.ssdeep(columns["ssdeep"], 1, deadline).items():
            offer(other, score / 100.0, "ssdeep")
    if columns.get("tlsh"):
        from kinfile.similarity.tlsh_index import similarity_score

        for other, distance in indexes.tlsh(columns["tlsh"], SIMILAR_TLSH_DISTANCE, deadline).items():
            offer(other, similarity_score(distance), "tlsh", tlsh_distance=distance)
    f = schema.files
    for column, exact_score in SIMILAR_EXACT:
        value = columns.get(column)
        if not value:
            continue
        statement = (
            sa.select(f.c.sha256).where(f.c[column] == value).order_by(f.c.sha256).limit(SIMILAR_EXACT_LIMIT)
        )
        for (other,) in _execute(services, statement, deadline):
            offer(other, exact_score, column)
    ranked = sorted(found.items(), key=lambda kv: (-kv[1]["similarity_score"], kv[0]))
    out = []
    for other, context in ranked[offset : offset + limit]:
        context["vectors"] = sorted(set(context["vectors"]))
        out.append({"type": "file", "id": other, "context_attributes": context})
    return out


def _similar_files_resolver(services: Services, sha256: str, offset: int, limit: int) -> list[dict[str, Any]]:
    return similar_files(services, sha256, offset, limit)


def register_relationships() -> None:
    from kinfile import relationships

    relationships.register(
        relationships.Relationship(
            "similar_files",
            "Files similar to the file (ssdeep, TLSH, vhash, imphash), ranked by similarity_score",
            _similar_files_resolver,
        )
    )
