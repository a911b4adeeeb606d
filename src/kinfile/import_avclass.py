"""AVClass label lines straight to new-file rows: the import's fast lane (the same output).

An AVClass line ``{md5, sha1, sha256, av_labels: [[engine, label]...]}`` is the commonest bulk
import (label dumps of whole collections), and a new report-only file made from one has a fixed
shape. The general path (parse to an ``ImportedReport``, merge, compose, run every side
extractor, build the detection document) walks its ~40 engine results five times and builds
each result dict anew; here ONE walk over the pairs, with a memo per (engine, label,
engine_update), gives the results (shared, never mutated dicts), the stats and the detection
document's terms. AVClass (``avclass.classify``), the ``files`` columns (``store.file_columns``)
and the ``have:`` values (``searchable.extract_have``) are the general functions; the other side
extractors read nothing such a report holds. SQLite stores only: on PostgreSQL the detection
words are rows (storage/avterms.py), made by the general path (measured: no gain there).

The output equals the general path's, field for field (tests/engines/test_import_avclass.py, on
the 500 real label sets and hostile variants). A line this does not take returns ``None`` and
goes the general way, which also reports its error: a hash or a pair the parser would reject, no
labels, an engine named twice, two engines with one modifier key, a label set large enough to
reach the side-value cap.
"""

from __future__ import annotations

from typing import Any

from kinfile.engines import avclass
from kinfile.engines.base import empty_stats
from kinfile.engines.merge import IMPORTED, SOURCES
from kinfile.engines.vtreports import (
    FORMAT_AVCLASS,
    RecordError,
    _hash,
    _update,
    avclass_result,
    epoch,
    record_format,
)
from kinfile.models import SCHEMA_VERSION, FileRecord
from kinfile.storage import bulk, searchable
from kinfile.storage.store import file_columns

MEMO_SIZE = 200_000

Entry = tuple[dict[str, Any], bulk.LabelTerms]  # the result, the label's detection-index terms
_ENTRIES: dict[tuple[str, str, str | None], Entry] = {}


def _entry(engine: str, label: str, update: str | None) -> Entry:
    if len(_ENTRIES) >= MEMO_SIZE:
        _ENTRIES.clear()
    found = _ENTRIES[(engine, label, update)] = (
        avclass_result(engine, label, update),
        bulk._label_terms(engine, label),
    )
    return found


def sha256_of(obj: Any) -> str | None:
    """The sha256 of an AVClass line (lower-cased, checked as the parser does), ``None`` for
    any other value or an invalid hash (left to the general path)."""
    if obj.__class__ is not dict or "data" in obj or record_format(obj) != FORMAT_AVCLASS:
        return None
    try:
        return _hash(obj.get("sha256"), 64, "sha256", required=True)
    except RecordError:
        return None


def new_file(obj: Any, source: str, now: int) -> bulk.NewFile | None:
    """The :class:`bulk.NewFile` the general path makes of an AVClass line for a new file in a
    SQLite store (detection words as an avterms document), or ``None`` for a line it leaves to
    the general path (module docstring)."""
    sha256 = sha256_of(obj)
    if sha256 is None:
        return None
    labels = obj["av_labels"]
    if labels.__class__ is not list or not labels:
        return None
    try:
        md5 = _hash(obj.get("md5"), 32, "md5")
        sha1 = _hash(obj.get("sha1"), 40, "sha1")
    except RecordError:
        return None
    scan_date = epoch(obj.get("scan_date"))
    update = None if scan_date is None else _update(scan_date)
    results: dict[str, Any] = {}
    terms: list[bulk.LabelTerms] = []
    entries = _ENTRIES
    for pair in labels:
        if pair.__class__ is not list or len(pair) != 2:
            return None
        engine, label = pair
        if engine.__class__ is not str or label.__class__ is not str or engine in results:
            return None
        entry = entries.get((engine, label, update)) or _entry(engine, label, update)
        results[engine] = entry[0]
        terms.append(entry[1])
    document = bulk.document_of(terms)
    if document is None:
        return None
    return _new_file(obj, sha256, md5, sha1, scan_date, results, source, now, document)


def _new_file(
    obj: dict[str, Any],
    sha256: str,
    md5: str,
    sha1: str,
    scan_date: int | None,
    results: dict[str, Any],
    source: str,
    now: int,
    document: str,
) -> bulk.NewFile:
    """The report ``merge_report(None, parse_avclass(obj))`` composes, and its rows."""
    origin = f"{FORMAT_AVCLASS}:{source}"
    attrs: dict[str, Any] = {}
    first_seen = epoch(obj["first_seen"]) if obj.get("first_seen") is not None else None
    if first_seen is not None:
        attrs["first_submission_date"] = first_seen
    attrs[IMPORTED] = {key: origin for key in attrs}
    for key, value in (("md5", md5), ("sha1", sha1), ("sha256", sha256)):
        if value:
            attrs[key] = value
    stats = empty_stats()
    stats["malicious"] = len(results)
    attrs["last_analysis_results"] = results
    attrs["last_analysis_stats"] = stats
    if scan_date is not None:
        attrs["last_analysis_date"] = scan_date
    classification = avclass.classify(md5, sha1, sha256, results)
    if classification:
        attrs["popular_threat_classification"] = classification
    attrs[SOURCES] = {"imported": {"source": origin, "served": True}}
    rec = FileRecord(
        sha256=sha256,
        md5=md5,
        sha1=sha1,
        size=0,
        attributes=attrs,
        schema_version=SCHEMA_VERSION,
        downloadable=False,
    )
    side = {"have": bulk.json_list(searchable.extract_have(attrs))}  # its only side values
    return bulk.NewFile(sha256, file_columns(rec, now, pack=True), side, {}, document)  # SQLite
