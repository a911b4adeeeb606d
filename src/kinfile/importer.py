"""``import-vt``: VirusTotal reports and AVClass label files into the store.

Accepted records, one JSON value per line (a file that is one JSON document, e.g. a saved
``GET /files/{id}`` response, works too):

* VT v3 file objects ``{"type": "file", "id", "attributes"}``, VT file-feed lines (the same
  object, with ``context_attributes``) and ``{"data": object | [objects]}`` documents;
* VT v2 reports (``scans``, ``positives``, ``scan_date``, ``additional_info``...), mapped to v3
  attributes; what has no v3 equivalent is kept under ``vt_v2``;
* AVClass' simple format ``{md5, sha1, sha256, av_labels: [[engine, label]...]}``.

A report creates a report-only file (``downloadable: false``) or enriches a stored one:
imported attributes never replace what kinfile computed, their source is recorded in the
``imported`` map, and imported engine results merge with the local engines' (engines/merge.py).
Malformed lines are reported with their line numbers and skipped; the rest still imports.
Writes go in batches of :data:`BULK_BATCH` reports per transaction while every report is for a
new file (a first or bulk import: storage/bulk.py expands a batch's rows in the database from
one JSON document per table; larger batches fill the B-trees in key order, and as a store grows
each transaction dirties pages all over its sha256-keyed indexes, so fewer transactions write
less), and of :data:`BATCH` once a batch holds a report for a stored file. A report for a
stored file is merged where it is parsed (a worker process with ``--jobs``), into a replacement
(storage/replacing.py) the writer writes while the stored report it was merged onto is
unchanged, and merges again otherwise. A batch is one transaction: after a crash each report is
either fully searchable or absent.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kinfile import import_avclass, jsontext
from kinfile.engines.merge import IMPORTED, SOURCES, compose, sources_of
from kinfile.engines.vtreports import ImportedReport, RecordError, parse_record
from kinfile.models import SCHEMA_VERSION, FileRecord
from kinfile.storage import avterms, replacing
from kinfile.storage.bulk import NewFile, new_file, write_new
from kinfile.storage.store import Store, StoredReport, file_columns, file_values

logger = logging.getLogger(__name__)

BATCH = 1000
BULK_BATCH = 10_000
MAX_ERRORS = 1000
IDENTITY = ("md5", "sha1", "sha256", "size")
# what a malformed record raises while it is parsed or merged (reported per line, never fatal)
RECORD_ERRORS = (RecordError, TypeError, ValueError, AttributeError, IndexError, KeyError)
KINFILE_KEPT = frozenset({"last_modification_date"})  # of a stored file: kinfile's own clock


@dataclass
class ImportSummary:
    lines: int = 0
    reports: int = 0
    created: int = 0
    enriched: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[tuple[str, int, str]] = field(default_factory=list)  # (input, line, message)

    def error(self, where: str, line: int, message: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((where, line, message))

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "reports": self.reports,
            "created": self.created,
            "enriched": self.enriched,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "errors": [{"input": w, "line": n, "message": m} for w, n, m in self.errors],
        }


def iter_values(lines: Iterable[str | bytes]) -> Iterator[tuple[int, Any | RecordError]]:
    """``(line number, JSON value or error)``; a file that is one JSON document is one value."""
    iterator = iter(lines)
    first_number, buffered = 0, []
    for number, raw in enumerate(iterator, 1):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        try:
            yield number, jsontext.loads_line(text)
        except ValueError as exc:
            if first_number == 0 and text.lstrip()[:1] in ("{", "["):
                first_number, buffered = number, [text]
                break
            yield number, RecordError(f"invalid JSON: {exc}")
        else:
            first_number = -1
    if not buffered:
        return
    # The first line alone is not JSON: maybe the whole input is one (pretty-printed) document.
    for raw in iterator:
        buffered.append(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
    try:
        yield first_number, jsontext.loads_line("".join(buffered))
    except ValueError as exc:
        yield first_number, RecordError(f"invalid JSON: {exc}")
        for offset, text in enumerate(buffered[1:], first_number + 1):
            if text.strip():
                try:
                    yield offset, jsontext.loads_line(text)
                except ValueError as line_exc:
                    yield offset, RecordError(f"invalid JSON: {line_exc}")


# -- merging and writing ---------------------------------------------------------------------
def merge_report(existing: StoredReport | None, rec: ImportedReport, source: str) -> FileRecord:
    """The report to store: a new report-only file, or ``existing`` enriched by ``rec``."""
    origin = f"{rec.fmt}:{source}"
    if existing is None:
        attrs = dict(rec.attributes)
        for key, value in (("md5", rec.md5), ("sha1", rec.sha1), ("sha256", rec.sha256), ("size", rec.size)):
            if value not in (None, ""):
                attrs[key] = value
        attrs[IMPORTED] = {k: origin for k in attrs if k not in IDENTITY}
        if rec.verdict:
            attrs[SOURCES] = {"imported": {**rec.verdict, "source": origin}}
            compose(attrs)
        return FileRecord(
            sha256=rec.sha256,
            md5=rec.md5,
            sha1=rec.sha1,
            size=rec.size or 0,
            attributes=attrs,
            schema_version=SCHEMA_VERSION,
            downloadable=False,
        )
    attrs = dict(existing.report)
    provenance = dict(attrs.get(IMPORTED) or {})
    for key, value in rec.attributes.items():
        if key in KINFILE_KEPT or (key in attrs and key not in provenance):
            continue  # computed or kept by kinfile: never overwritten by an import
        attrs[key] = value
        provenance[key] = origin
    if provenance:
        attrs[IMPORTED] = provenance
    if rec.verdict:
        sources = sources_of(attrs)
        previous = sources.get("imported") or {}
        if (rec.verdict.get("date") or 0) >= (previous.get("date") or 0):
            sources["imported"] = {**rec.verdict, "source": origin}
        attrs[SOURCES] = sources
        compose(attrs)
    return FileRecord(
        sha256=rec.sha256,
        md5=existing.md5 or rec.md5,
        sha1=existing.sha1 or rec.sha1,
        size=existing.size or rec.size or 0,
        attributes=attrs,
        schema_version=existing.schema_version,
        downloadable=existing.downloadable,
    )


@dataclass
class Prepared:
    """A parsed report and, computed off the writer's path, the rows it makes when new.

    ``value`` is the JSON value it came from (re-parsed by the writer only to enrich a stored
    file), so that little has to cross from a worker process. ``new`` is ``None`` for a file
    that was stored when the report was parsed (it will be enriched, not created); for such a
    file a worker also computes the ``replacement`` (written while its base is still stored).
    """

    sha256: str
    value: Any
    new: NewFile | None
    replacement: replacing.Replacement | None = None

    def report(self) -> ImportedReport:
        value = jsontext.loads_line(self.value) if isinstance(self.value, str | bytes) else self.value
        return next(r for r in parse_record(value) if r.sha256 == self.sha256)


def prepare_values(
    values: list[tuple[int, Any]],
    source: str,
    known: Callable[[list[str]], Collection[str]] | None = None,
    terms: bool = False,
    stored_reports: Callable[[list[str]], dict[str, StoredReport]] | None = None,
) -> list[tuple[int, list[Prepared] | str]]:
    """Parse and pre-merge JSON values: ``(line, prepared reports or error message)``.

    ``known`` tells which of the parsed sha256s are stored already: their new-file rows are not
    computed (they are enriched; the writer computes the rows if one is gone by then). Given
    ``stored_reports`` instead (the stored reports of sha256s, a worker process), the replacements of
    the stored ones are computed too. ``terms``: the store is SQLite (detection words as avterms
    documents, bulk.new_file).
    """
    with paused_gc():
        return _prepare_values(values, source, known, terms, stored_reports)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Python's cycle collector paused while a batch is prepared or written. A batch allocates
    ~100 containers per report (the parsed line, results, rows); each allocation burst set off
    collections that scanned them again and again (and the memo tables behind them): ~25 % of
    preparing an AVClass line (measured). Reports hold no reference cycles, so reference
    counting frees them as before; the collector runs again once the batch is done."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _prepare_values(
    values: list[tuple[int, Any]],
    source: str,
    known: Callable[[list[str]], Collection[str]] | None,
    terms: bool,
    stored_reports: Callable[[list[str]], dict[str, StoredReport]] | None,
) -> list[tuple[int, list[Prepared] | str]]:
    now = int(time.time())
    # per value: its reports, an error message, or (AVClass line) the JSON object and its sha256
    parsed: list[tuple[int, Any, list[ImportedReport] | tuple[Any, str] | str]] = []
    for number, raw in values:
        value = raw
        if isinstance(raw, str | bytes):
            try:
                value = jsontext.loads_line(raw)
            except ValueError as exc:
                parsed.append((number, raw, f"invalid JSON: {exc}"))
                continue
        if isinstance(value, RecordError):
            parsed.append((number, raw, str(value)))
            continue
        sha256 = import_avclass.sha256_of(value) if terms else None  # an AVClass line: fast lane
        parsed.append((number, raw, _parse(value) if sha256 is None else (value, sha256)))
    shas: list[str] = []
    for _n, _raw, reports in parsed:
        if isinstance(reports, tuple):
            shas.append(reports[1])
        elif not isinstance(reports, str):
            shas.extend(r.sha256 for r in reports)
    stored: set[str] = set()
    found: dict[str, StoredReport] = {}
    for start in range(0, len(shas), BATCH):  # bounded IN lists
        if stored_reports is not None:
            found.update(stored_reports(shas[start : start + BATCH]))
        elif known is not None:
            stored.update(known(shas[start : start + BATCH]))
    stored.update(found)
    out: list[tuple[int, list[Prepared] | str]] = []
    for number, raw, reports in parsed:
        if isinstance(reports, tuple):
            value, sha256 = reports
            try:  # a value the fast lane trips on goes the general way, which reports it
                fast = None if sha256 in stored else import_avclass.new_file(value, source, now)
            except RECORD_ERRORS:
                fast = None
            if fast is not None:
                out.append((number, [Prepared(sha256, raw, fast)]))
                continue
            reports = _parse(value)  # stored (to enrich), or a line the fast lane leaves
        if isinstance(reports, str):
            out.append((number, reports))
            continue
        keep = raw if len(reports) == 1 else None  # a {"data": [...]} document: per report
        try:
            prepared = [
                Prepared(
                    r.sha256,
                    keep or _v3_value(r),
                    None if r.sha256 in stored else _new(merge_report(None, r, source), now, terms),
                    _replacement(found[r.sha256], r, source, now, terms) if r.sha256 in found else None,
                )
                for r in reports
            ]
        except RECORD_ERRORS as exc:
            out.append((number, str(exc) or type(exc).__name__))
            continue
        out.append((number, prepared))
    return out


def _replacement(
    existing: StoredReport, rec: ImportedReport, source: str, now: int, terms: bool
) -> replacing.Replacement:
    merged = merge_report(existing, rec, source)  # never mutates existing.report
    values = file_values(merged, merged.attributes, now, pack=terms)  # terms: a SQLite store
    return replacing.replacement(values, merged.attributes, existing.report, existing.text, terms)


def _parse(value: Any) -> list[ImportedReport] | str:
    """The reports of a JSON value, or why it cannot be imported."""
    try:
        return parse_record(value)
    except RECORD_ERRORS as exc:
        return str(exc) or type(exc).__name__


def _new(rec: FileRecord, now: int, terms: bool) -> NewFile:
    return new_file(rec, file_columns(rec, now, pack=terms), terms)  # terms: a SQLite store


def _v3_value(rec: ImportedReport) -> dict[str, Any]:
    """A v3 object equivalent to an imported report (for one taken out of a multi-report value)."""
    attrs = {**rec.attributes, "sha256": rec.sha256}
    verdict = rec.verdict
    for key, name in (
        ("results", "last_analysis_results"),
        ("stats", "last_analysis_stats"),
        ("date", "last_analysis_date"),
        ("crowdsourced_yara_results", "crowdsourced_yara_results"),
        ("popular_threat_classification", "popular_threat_classification"),
    ):
        if key in verdict:
            attrs[name] = verdict[key]
    for key, value in (("md5", rec.md5), ("sha1", rec.sha1), ("size", rec.size)):
        if value:
            attrs[key] = value
    return {"type": "file", "id": rec.sha256, "attributes": attrs}


_STORES: dict[str, Store] = {}  # a worker process's read connections, per database


def _prepare_chunk(args: tuple[list[tuple[int, Any]], str, str]) -> list[tuple[int, list[Prepared] | str]]:
    chunk, source, url = args
    store = _STORES.get(url)
    if store is None:
        store = _STORES[url] = Store(url)
    return prepare_values(chunk, source, None, avterms.uses_terms(store.dialect), store.get_reports)


def _chunks(lines: Iterable[str | bytes], size: int) -> Iterator[list[tuple[int, Any]]]:
    """Non-empty raw lines with their numbers, ``size`` at a time."""
    chunk: list[tuple[int, Any]] = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        chunk.append((number, raw))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Importer:
    """Imports JSON lines into a store, :data:`BATCH` (up to :data:`BULK_BATCH`) reports per transaction.

    With ``jobs > 1`` worker processes parse the lines and compute the new reports (AVClass
    included); this process only merges with stored reports and writes.
    """

    def __init__(self, store: Store, source: str = "import", jobs: int = 1) -> None:
        self.store = store
        self.source = source
        self.jobs = jobs
        self.batch = BULK_BATCH  # new files only; BATCH once a write found stored ones
        self.terms = avterms.uses_terms(store.dialect)  # detection words as avterms documents

    def import_lines(
        self, lines: Iterable[str | bytes], where: str = "<input>", summary: ImportSummary | None = None
    ) -> ImportSummary:
        summary = summary or ImportSummary()
        started = time.perf_counter()
        iterator = iter(lines)
        head: list[str | bytes] = []
        for raw in iterator:  # peek at the first non-empty line: JSON lines or one document?
            head.append(raw)
            if raw.strip():
                break
        document = bool(head) and not _is_json(head[-1]) and head[-1].lstrip()[:1] in ("{", "[", b"{", b"[")
        stream = itertools.chain(head, iterator)
        if document:
            parsed: Iterable[tuple[int, list[Prepared] | str]] = prepare_values(
                list(iter_values(stream)), self.source, None, self.terms, self.store.get_reports
            )
        else:
            parsed = self._prepared(_chunks(stream, BATCH))
        batch: dict[str, Prepared] = {}
        enriching = False  # the batch holds a report for a stored file: written at BATCH
        last_line = 0
        try:
            for number, outcome in parsed:
                last_line = max(last_line, number)
                if isinstance(outcome, str):
                    summary.error(where, number, outcome)
                    continue
                for prepared in outcome:
                    if prepared.sha256 in batch:  # the same file twice in one batch: write the first now
                        self._flush(batch, summary)
                        enriching = False
                    batch[prepared.sha256] = prepared
                    enriching = enriching or prepared.new is None
                if len(batch) >= (BATCH if enriching else self.batch):
                    self._flush(batch, summary)
                    enriching = False
            self._flush(batch, summary)
        finally:  # a failed write: stop the workers here, not when (and where) the GC runs
            if isinstance(parsed, Generator):
                parsed.close()
        summary.lines += last_line
        summary.seconds += time.perf_counter() - started
        return summary

    def _prepared(
        self, chunks: Iterator[list[tuple[int, Any]]]
    ) -> Iterator[tuple[int, list[Prepared] | str]]:
        first = next(chunks, None)
        second = next(chunks, None)
        if self.jobs <= 1 or second is None:  # small inputs are not worth starting processes
            for chunk in itertools.chain([first] if first else [], [second] if second else [], chunks):
                yield from prepare_values(chunk, self.source, None, self.terms, self.store.get_reports)
            return
        pool = ProcessPoolExecutor(max_workers=self.jobs)
        try:
            inflight: deque[Future[list[tuple[int, list[Prepared] | str]]]] = deque()
            for chunk in itertools.chain([first or [], second], chunks):
                inflight.append(pool.submit(_prepare_chunk, (chunk, self.source, self.store.url)))
                # enough chunks ahead that the workers go on while a bulk batch is written
                if len(inflight) >= self.jobs * 2 + BULK_BATCH // BATCH:
                    yield from inflight.popleft().result()
            while inflight:
                yield from inflight.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _flush(self, batch: dict[str, Prepared], summary: ImportSummary) -> None:
        if not batch:
            return
        with paused_gc():
            self._write(batch, summary)

    def _write(self, batch: dict[str, Prepared], summary: ImportSummary) -> None:
        total = len(batch)
        # stored files whose replacement a worker computed: written while their base is current
        ready = [p.replacement for p in batch.values() if p.replacement is not None]
        stale = {r.sha256 for r in self.store.apply_replacements(ready)} if ready else set()
        replaced = [r.sha256 for r in ready if r.sha256 not in stale]
        for sha in replaced:
            del batch[sha]
        existing = self.store.get_reports(list(batch))
        fresh = [p for sha, p in batch.items() if sha not in existing]
        now = int(time.time())
        rows = [p.new or _new(merge_report(None, p.report(), self.source), now, self.terms) for p in fresh]
        inserted = write_new(self.store, rows)
        if len(inserted) < len(fresh):  # stored meanwhile by another writer: enrich those instead
            existing.update(self.store.get_reports([p.sha256 for p in fresh if p.sha256 not in inserted]))
        enriched = [sha for sha in batch if sha in existing]
        items = [merge_report(existing[sha], batch[sha].report(), self.source) for sha in enriched]
        # one statement per table for the whole batch; no second merge while the stored reports
        # are still those merged onto
        self.store.replace_reports(items, [existing[sha] for sha in enriched])
        # all new: a bulk import, where larger transactions write faster; else back to BATCH
        bulk = len(inserted) == total
        self.batch = BULK_BATCH if bulk else BATCH
        summary.reports += total
        summary.created += len(inserted)
        summary.enriched += len(items) + len(replaced)
        batch.clear()


def _is_json(raw: str | bytes) -> bool:
    try:
        jsontext.loads_line(raw)
    except ValueError:
        return False
    return True
