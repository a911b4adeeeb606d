"""Bulk ingest: worker processes analyse files and write blobs; this process writes the store.

Per file the order is: hash → (skip analysis when the stored report is current) → analyse →
blobs (atomic, write-once) → one database transaction with the report, the submission and the
children. A crash (even ``kill -9``) between the blob and the database leaves only an
unreferenced blob; running the same command again completes the job.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from kinfile.analysis.pipeline import Analysed, Limits, analyse_bytes
from kinfile.errors import ConfigurationError
from kinfile.formats.registry import BUILTIN_FORMATS
from kinfile.hashing.digests import digest_bytes
from kinfile.models import SCHEMA_VERSION, IngestItem, Relation, Submission
from kinfile.settings import Settings
from kinfile.storage.blobs import BlobStore
from kinfile.storage.store import AnalysisRow, Store, file_row
from kinfile.verdicts import Verdicts

logger = logging.getLogger(__name__)

BATCH_FILES = 100
BATCH_SECONDS = 0.5


@dataclass
class Outcome:
    path: str
    size: int = 0
    sha256: str | None = None
    status: str = "failed"  # new | duplicate | failed
    reason: str | None = None
    item: IngestItem | None = None
    seconds: float = 0.0
    analysis: AnalysisRow | None = None  # the engines' run on the file (None: engines not run)


@dataclass
class Summary:
    new: int = 0
    duplicate: int = 0
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.new + self.duplicate + self.failed


def iter_paths(paths: Iterable[str]) -> Iterator[str]:
    """Files named directly, and every file below named directories (sorted, recursive)."""
    for raw in paths:
        p = Path(raw)
        try:
            is_dir = p.is_dir()
        except (OSError, ValueError):  # a name too long, a NUL: process_path reports the path
            is_dir = False
        if not is_dir:
            yield str(p)
            continue
        unreadable: list[OSError] = []  # directories os.walk could not list: reported, not skipped
        for root, dirs, names in os.walk(p, onerror=unreadable.append):
            dirs.sort()
            for name in sorted(names):
                yield str(Path(root) / name)
            while unreadable:
                yield str(unreadable.pop(0).filename or root)
        for error in unreadable:
            yield str(error.filename or p)


def limits_from(settings: Settings) -> Limits:
    return Limits(
        timeout=settings.analysis_timeout,
        submission_timeout=settings.submission_timeout,
        max_depth=settings.max_child_depth,
        max_children=settings.max_children,
        max_child_bytes=settings.max_child_bytes,
        formats=parse_analysers(settings.analysers),
        exiftool=settings.exiftool,
        magika=settings.magika,
    )


def parse_analysers(value: str) -> frozenset[str] | None:
    """``all`` → None (every analyser), ``none`` → empty set, else the named formats."""
    words = {w.strip().lower() for w in value.split(",") if w.strip()}
    if not words or words == {"all"}:
        return None
    if words == {"none"}:
        return frozenset()
    unknown = words - set(BUILTIN_FORMATS)
    if unknown:
        raise ConfigurationError(
            f"unknown analysers {sorted(unknown)}; valid: all, none, {', '.join(BUILTIN_FORMATS)}"
        )
    return frozenset(words)


def build_items(
    node: Analysed,
    submission: Submission | None,
    blobs: BlobStore,
    known_version: int | None,
    parent: str | None = None,
    relationship: str | None = None,
    child_name: str | None = None,
) -> IngestItem:
    """Put the blobs of an analysed tree and turn it into store items (children included)."""
    rec = node.record
    blobs.put_bytes(rec.sha256, node.data)
    if known_version is None:  # build the rows here, in the worker: the writer only executes them
        rec.rows = file_row(rec, int(time.time()))
    item = IngestItem(
        sha256=rec.sha256,
        submission=submission,
        record=rec,
        replace_report=known_version is not None,
    )
    if parent and relationship:
        item.relation = Relation(parent=parent, child=rec.sha256, relationship=relationship, name=child_name)
    date = submission.date if submission else int(time.time())
    for child, analysed in node.children:
        name = child.get("name")
        sub = Submission(
            date=date, name=name or None, source_key=f"extracted:{rec.sha256[:16]}", interface="extracted"
        )
        item.children.append(build_items(analysed, sub, blobs, None, rec.sha256, child["relationship"], name))
    return item


# -- worker side --------------------------------------------------------------------------
_WORKER: dict[str, object] = {}


def _worker_init(settings: Settings) -> None:
    _WORKER["settings"] = settings
    _WORKER["store"] = Store(settings.db)
    _WORKER["blobs"] = BlobStore(settings.blobs)
    _WORKER["verdicts"] = Verdicts(settings)  # one set of engines (compiled rules) per worker


def process_path(path: str, source: str, date: int, name_mode: str = "basename") -> Outcome:
    """Worker entry point: everything for one path except the database write."""
    settings: Settings = _WORKER["settings"]  # type: ignore[assignment]
    store: Store = _WORKER["store"]  # type: ignore[assignment]
    blobs: BlobStore = _WORKER["blobs"]  # type: ignore[assignment]
    started = time.perf_counter()
    out = Outcome(path=path)
    try:
        info = Path(path).stat()
        if stat.S_ISDIR(info.st_mode):  # only one walk could not list: say why
            next(Path(path).iterdir(), None)
            out.reason = "is a directory"
            return out
        size = info.st_size
        out.size = size
        if size == 0:
            out.reason = "empty file (0 bytes)"
            return out
        if size > settings.max_upload_size:
            out.reason = f"file too large ({size} bytes > max_upload_size {settings.max_upload_size})"
            return out
        with open(path, "rb") as fh:
            data = fh.read()
    except (OSError, ValueError) as exc:  # ValueError: a path holding NUL
        out.reason = f"cannot read: {getattr(exc, 'strerror', None) or exc}"
        return out
    digests = digest_bytes(data)
    out.sha256 = digests.sha256
    name = Path(path).name if name_mode == "basename" else path
    submission = Submission(date=date, name=name, source_key=source, interface="cli")
    version = store.known([digests.sha256]).get(digests.sha256)
    if version is not None and version >= SCHEMA_VERSION and blobs.exists(digests.sha256):
        out.status = "duplicate"
        out.item = IngestItem(sha256=digests.sha256, submission=submission)
    else:
        node = analyse_bytes(data, name, limits_from(settings), digests=digests)
        verdicts: Verdicts = _WORKER["verdicts"]  # type: ignore[assignment]
        runs = verdicts.scan_tree(node)
        out.analysis = runs[0].analysis() if runs else None
        out.item = build_items(node, submission, blobs, version)
        out.status = "new" if version is None else "duplicate"
    out.seconds = time.perf_counter() - started
    return out


def _call(args: tuple[str, str, int]) -> Outcome:
    try:
        return process_path(*args)
    except Exception as exc:  # a bug on one file must not stop the ingest
        logger.exception("ingest of %s failed", args[0])
        return Outcome(path=args[0], reason=f"internal error: {type(exc).__name__}: {exc}"[:300])


def _ordered_map(
    pool: ProcessPoolExecutor, tasks: Iterable[tuple[str, str, int]], window: int
) -> Iterator[Outcome]:
    """Like ``pool.map`` but with at most ``window`` tasks in flight (bounded memory)."""
    from collections import deque

    inflight: deque[Future[Outcome]] = deque()
    for task in tasks:
        inflight.append(pool.submit(_call, task))
        if len(inflight) >= window:
            yield inflight.popleft().result()
    while inflight:
        yield inflight.popleft().result()


# -- driver side --------------------------------------------------------------------------
def run_ingest(
    settings: Settings,
    paths: Iterable[str],
    source: str = "cli",
    date: int | None = None,
    jobs: int | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Summary:
    """Ingest every path; ``on_outcome`` is called once per file (progress bars)."""
    store = Store(settings.db)
    store.migrate()
    jobs = jobs or settings.effective_jobs
    when = int(date if date is not None else time.time())
    summary = Summary()
    started = time.perf_counter()
    pending: list[Outcome] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        items = [o for o in pending if o.item is not None]
        try:
            _save(store, items)
        except STORE_ERRORS:  # one file's rows fail the batch: store the others one by one
            logger.warning("a batch of %d files failed to store; storing them one by one", len(items))
            for o in items:
                try:
                    _save(store, [o])
                except STORE_ERRORS as exc:
                    logger.debug("storing %s failed", o.path, exc_info=True)
                    o.status, o.reason = "failed", f"cannot store: {type(exc).__name__}: {exc}"[:300]
        for o in pending:
            _count(summary, o)
            if on_outcome:
                on_outcome(o)
        pending.clear()
        last_flush = time.monotonic()

    tasks = ((p, source, when) for p in iter_paths(paths))
    with ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init, initargs=(settings,)) as pool:
        for outcome in _ordered_map(pool, tasks, window=jobs * 16):
            pending.append(outcome)
            if len(pending) >= BATCH_FILES or time.monotonic() - last_flush > BATCH_SECONDS:
                flush()
        flush()
    summary.seconds = time.perf_counter() - started
    store.close()
    return summary


# what storing a batch may raise for the data of one file (never an analysis bug: those are
# caught in the workers); anything else (the database gone) still stops the run
STORE_ERRORS = (SQLAlchemyError, ValueError, TypeError, UnicodeError)


def _save(store: Store, items: list[Outcome]) -> None:
    """Store the analysed files of ``items`` (one transaction); a file stored meanwhile by
    another process becomes a duplicate."""
    if not items:
        return
    runs = [o.analysis for o in items if o.analysis is not None]
    created = store.save([o.item for o in items if o.item is not None], runs)
    for o, was_new in zip(items, created, strict=True):
        if o.status == "new" and not was_new:
            o.status = "duplicate"  # another process stored it meanwhile


def _count(summary: Summary, o: Outcome) -> None:
    if o.status == "failed":
        summary.failed += 1
        summary.failures.append((o.path, o.reason or "unknown error"))
        return
    summary.bytes += o.size
    summary.latencies.append(o.seconds)
    if o.status == "new":
        summary.new += 1
    else:
        summary.duplicate += 1
