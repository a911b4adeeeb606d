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
Writes go in batches of :data:`BATCH` reports per transaction.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import logging
import re
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kinfile.engines.base import stats_of
from kinfile.engines.merge import IMPORTED, SOURCES, VERDICT_KEYS, compose, sources_of
from kinfile.models import SCHEMA_VERSION, FileRecord, IngestItem
from kinfile.storage.store import FileRow_, Store, StoredReport, file_row

logger = logging.getLogger(__name__)

BATCH = 1000
MAX_ERRORS = 1000
FORMAT_V3, FORMAT_V2, FORMAT_AVCLASS = "virustotal-v3", "virustotal-v2", "avclass"
HEX = re.compile(r"^[0-9a-f]+$")
RESERVED = frozenset({"type", "id", "error", "relationships", "context_attributes", "links"})
IDENTITY = ("md5", "sha1", "sha256", "size")
KINFILE_KEPT = frozenset({"last_modification_date"})  # of a stored file: kinfile's own clock
V2_DATES = {
    "scan_date": "last_analysis_date",
    "first_seen": "first_submission_date",
    "last_seen": "last_submission_date",
}
V2_SAME = (
    "md5",
    "sha1",
    "sha256",
    "size",
    "ssdeep",
    "tlsh",
    "vhash",
    "authentihash",
    "tags",
    "times_submitted",
    "unique_sources",
)
V2_RENAMED = {"submission_names": "names", "type": "type_description", "community_reputation": "reputation"}
V2_DERIVED = frozenset(
    {"scans", "positives", "total", "harmless_votes", "malicious_votes", "additional_info"}
)
V2_PE = {
    "pe-imphash": "imphash",
    "pe-timestamp": "timestamp",
    "pe-entry-point": "entry_point",
    "pe-machine-type": "machine_type",
    "exports": "exports",
    "pe-resource-langs": "resource_langs",
    "pe-resource-types": "resource_types",
}


class RecordError(ValueError):
    """A line that is not an importable report (message shown with its line number)."""


@dataclass
class ImportedReport:
    sha256: str
    md5: str
    sha1: str
    size: int | None
    attributes: dict[str, Any]
    verdict: dict[str, Any]
    fmt: str


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


# -- parsing ---------------------------------------------------------------------------------
def epoch(value: Any) -> int | None:
    """An epoch int from an int/float, digits, or a ``YYYY-MM-DD[ HH:MM:SS]`` UTC text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:  # "2015-09-28 01:01:14", ISO 8601 (fast path)
        parsed = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=_dt.UTC)).timestamp())
    except ValueError:
        pass
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return int(_dt.datetime.strptime(text, fmt).replace(tzinfo=_dt.UTC).timestamp())
        except ValueError:
            continue
    return None


def _hash(value: Any, length: int, what: str, required: bool = False) -> str:
    text = str(value or "").strip().lower()
    if not text and not required:
        return ""
    if len(text) != length or not HEX.match(text):
        raise RecordError(f"invalid {what} {str(value)[:80]!r}")
    return text


def _dates(attrs: dict[str, Any]) -> dict[str, Any]:
    """Top-level ``*_date`` attributes as ints (unusable values dropped)."""
    for key in [k for k in attrs if k.endswith("_date")]:
        value = epoch(attrs[key])
        if value is None:
            del attrs[key]
        else:
            attrs[key] = value
    return attrs


def parse_v3(obj: dict[str, Any]) -> ImportedReport:
    if obj.get("type") not in (None, "file"):
        raise RecordError(f"not a file object (type {obj.get('type')!r})")
    attrs = obj.get("attributes")
    if not isinstance(attrs, dict):
        raise RecordError("file object without attributes")
    sha256 = _hash(obj.get("id") or attrs.get("sha256"), 64, "sha256", required=True)
    results = attrs.get("last_analysis_results") or {}
    if not isinstance(results, dict):
        raise RecordError("last_analysis_results is not an object")
    verdict = {
        "results": results,
        "stats": attrs.get("last_analysis_stats"),
        "date": epoch(attrs.get("last_analysis_date")),
        "crowdsourced_yara_results": attrs.get("crowdsourced_yara_results"),
        "popular_threat_classification": attrs.get("popular_threat_classification"),
    }
    kept = {k: v for k, v in attrs.items() if k not in VERDICT_KEYS and k not in RESERVED}
    return ImportedReport(
        sha256=sha256,
        md5=_hash(attrs.get("md5"), 32, "md5"),
        sha1=_hash(attrs.get("sha1"), 40, "sha1"),
        size=attrs.get("size") if isinstance(attrs.get("size"), int) else None,
        attributes=_dates(kept),
        verdict={k: v for k, v in verdict.items() if v not in (None, {}, [])},
        fmt=FORMAT_V3,
    )


def _v2_result(engine: str, scan: dict[str, Any]) -> dict[str, Any]:
    return {
        "category": "malicious" if scan.get("detected") else "undetected",
        "engine_name": engine,
        "engine_version": scan.get("version"),
        "engine_update": scan.get("update"),
        "method": "blacklist",
        "result": scan.get("result"),
    }


def _v2_trid(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        found = re.match(r"^(.*) \((\d+(?:\.\d+)?)%\)$", line.strip())
        if found:
            out.append({"file_type": found.group(1), "probability": float(found.group(2))})
    return out


def _v2_additional(info: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
    """Map ``additional_info`` into v3 attributes; returns what has no v3 equivalent."""
    left = dict(info)
    for key in ("magic", "exiftool"):
        if key in left:
            attrs[key] = left.pop(key)
    if isinstance(left.get("trid"), str):
        attrs["trid"] = _v2_trid(left.pop("trid"))
    pe: dict[str, Any] = {}
    for old, new in V2_PE.items():
        if old in left:
            pe[new] = left.pop(old)
    if isinstance(left.get("imports"), dict):
        imports = left.pop("imports")
        pe["import_list"] = [
            {"library_name": lib.replace("_!_", "."), "imported_functions": funcs}
            for lib, funcs in imports.items()
        ]
    if isinstance(left.get("sections"), list):
        pe["sections"] = [
            {
                "name": s[0],
                "virtual_address": s[1],
                "virtual_size": s[2],
                "raw_size": s[3],
                "entropy": float(s[4]),
                "md5": s[5],
            }
            for s in left.pop("sections")
            if isinstance(s, list) and len(s) >= 6
        ]
    if pe:
        attrs["pe_info"] = pe
    return left


def parse_v2(obj: dict[str, Any]) -> ImportedReport:
    if obj.get("response_code") == 0:
        raise RecordError("VT v2 report with response_code 0 (file not known to VirusTotal)")
    sha256 = _hash(obj.get("sha256"), 64, "sha256", required=True)
    scans = obj.get("scans") or {}
    if not isinstance(scans, dict):
        raise RecordError("scans is not an object")
    results = {engine: _v2_result(engine, scan) for engine, scan in scans.items() if isinstance(scan, dict)}
    attrs: dict[str, Any] = {k: obj[k] for k in V2_SAME if k in obj}
    attrs.update({new: obj[old] for old, new in V2_RENAMED.items() if old in obj})
    for old, new in V2_DATES.items():
        if old in obj and old != "scan_date":
            attrs[new] = epoch(obj[old])
    if "harmless_votes" in obj or "malicious_votes" in obj:
        attrs["total_votes"] = {
            "harmless": int(obj.get("harmless_votes") or 0),
            "malicious": int(obj.get("malicious_votes") or 0),
        }
    extra = {k: v for k, v in obj.items() if k not in V2_SAME and k not in V2_RENAMED and k not in V2_DATES}
    extra = {k: v for k, v in extra.items() if k not in V2_DERIVED}
    if isinstance(obj.get("additional_info"), dict):
        left = _v2_additional(obj["additional_info"], attrs)
        if left:
            extra["additional_info"] = left
    if extra:
        attrs["vt_v2"] = extra
    verdict = {"results": results, "stats": stats_of(results), "date": epoch(obj.get("scan_date"))}
    return ImportedReport(
        sha256=sha256,
        md5=_hash(obj.get("md5"), 32, "md5"),
        sha1=_hash(obj.get("sha1"), 40, "sha1"),
        size=obj.get("size") if isinstance(obj.get("size"), int) else None,
        attributes=_dates(attrs),
        verdict={k: v for k, v in verdict.items() if v not in (None, {})},
        fmt=FORMAT_V2,
    )


def parse_avclass(obj: dict[str, Any]) -> ImportedReport:
    sha256 = _hash(obj.get("sha256"), 64, "sha256", required=True)
    labels = obj.get("av_labels")
    if not isinstance(labels, list):
        raise RecordError("av_labels is not a list")
    update = ""
    scan_date = epoch(obj.get("scan_date"))
    if scan_date is not None:
        update = _dt.datetime.fromtimestamp(scan_date, _dt.UTC).strftime("%Y%m%d")
    results: dict[str, Any] = {}
    for pair in labels:
        try:
            engine, label = pair
        except (TypeError, ValueError):
            engine = label = None
        if not isinstance(engine, str) or not isinstance(label, str):
            raise RecordError(f"av_labels entry {str(pair)[:80]!r} is not [engine, label]")
        results[engine] = {
            "category": "malicious",
            "engine_name": engine,
            "engine_version": None,
            "engine_update": update or None,
            "method": "blacklist",
            "result": label,
        }
    attrs: dict[str, Any] = {}
    if obj.get("first_seen") is not None:
        attrs["first_submission_date"] = epoch(obj["first_seen"])
    verdict = {"results": results, "stats": stats_of(results), "date": scan_date}
    return ImportedReport(
        sha256=sha256,
        md5=_hash(obj.get("md5"), 32, "md5"),
        sha1=_hash(obj.get("sha1"), 40, "sha1"),
        size=None,
        attributes=_dates(attrs),
        verdict={k: v for k, v in verdict.items() if v not in (None, {})},
        fmt=FORMAT_AVCLASS,
    )


def parse_record(value: Any) -> list[ImportedReport]:
    """The reports in one JSON value (a ``{"data": [...]}`` document holds several)."""
    if isinstance(value, dict) and "data" in value and "attributes" not in value:
        value = value["data"]
    if isinstance(value, list):
        out: list[ImportedReport] = []
        for item in value:
            out.extend(parse_record(item))
        return out
    if not isinstance(value, dict):
        raise RecordError(f"expected a JSON object, got {type(value).__name__}")
    if "attributes" in value:
        return [parse_v3(value)]
    if "scans" in value or "response_code" in value or "positives" in value:
        return [parse_v2(value)]
    if "av_labels" in value:
        return [parse_avclass(value)]
    raise RecordError("unrecognised record: not a VT v3 file object, VT v2 report or AVClass line")


def iter_values(lines: Iterable[str | bytes]) -> Iterator[tuple[int, Any | RecordError]]:
    """``(line number, JSON value or error)``; a file that is one JSON document is one value."""
    iterator = iter(lines)
    first_number, buffered = 0, []
    for number, raw in enumerate(iterator, 1):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        try:
            yield number, json.loads(text)
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
        yield first_number, json.loads("".join(buffered))
    except ValueError as exc:
        yield first_number, RecordError(f"invalid JSON: {exc}")
        for offset, text in enumerate(buffered[1:], first_number + 1):
            if text.strip():
                try:
                    yield offset, json.loads(text)
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
    """A parsed report and, computed off the writer's path, the row it makes when new.

    ``value`` is the JSON value it came from (re-parsed by the writer only to enrich a stored
    file), so that little has to cross from a worker process.
    """

    sha256: str
    value: Any
    row: FileRow_

    def report(self) -> ImportedReport:
        value = json.loads(self.value) if isinstance(self.value, str | bytes) else self.value
        return next(r for r in parse_record(value) if r.sha256 == self.sha256)


def prepare_values(values: list[tuple[int, Any]], source: str) -> list[tuple[int, list[Prepared] | str]]:
    """Parse and pre-merge JSON values: ``(line, prepared reports or error message)``."""
    out: list[tuple[int, list[Prepared] | str]] = []
    for number, raw in values:
        value = raw
        if isinstance(raw, str | bytes):
            try:
                value = json.loads(raw)
            except ValueError as exc:
                out.append((number, f"invalid JSON: {exc}"))
                continue
        if isinstance(value, RecordError):
            out.append((number, str(value)))
            continue
        try:
            reports = parse_record(value)
            now = int(time.time())
            keep = raw if len(reports) == 1 else None  # a {"data": [...]} document: per report
            out.append(
                (
                    number,
                    [
                        Prepared(r.sha256, keep or _v3_value(r), file_row(merge_report(None, r, source), now))
                        for r in reports
                    ],
                )
            )
        except (RecordError, TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
            out.append((number, str(exc) or type(exc).__name__))
    return out


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


def _prepare_chunk(args: tuple[list[tuple[int, Any]], str]) -> list[tuple[int, list[Prepared] | str]]:
    return prepare_values(*args)


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
    """Imports JSON lines into a store, :data:`BATCH` reports per transaction.

    With ``jobs > 1`` worker processes parse the lines and compute the new reports (AVClass
    included); this process only merges with stored reports and writes.
    """

    def __init__(self, store: Store, source: str = "import", jobs: int = 1) -> None:
        self.store = store
        self.source = source
        self.jobs = jobs

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
            parsed = prepare_values(list(iter_values(stream)), self.source)
        else:
            parsed = self._prepared(_chunks(stream, BATCH))
        batch: dict[str, Prepared] = {}
        last_line = 0
        for number, outcome in parsed:
            last_line = max(last_line, number)
            if isinstance(outcome, str):
                summary.error(where, number, outcome)
                continue
            for prepared in outcome:
                if prepared.sha256 in batch:  # the same file twice in one batch: write the first now
                    self._flush(batch, summary)
                batch[prepared.sha256] = prepared
            if len(batch) >= BATCH:
                self._flush(batch, summary)
        self._flush(batch, summary)
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
                yield from prepare_values(chunk, self.source)
            return
        with ProcessPoolExecutor(max_workers=self.jobs) as pool:
            inflight: deque[Future[list[tuple[int, list[Prepared] | str]]]] = deque()
            for chunk in itertools.chain([first, second], chunks):
                inflight.append(pool.submit(_prepare_chunk, (chunk, self.source)))
                if len(inflight) >= self.jobs * 2:
                    yield from inflight.popleft().result()
            while inflight:
                yield from inflight.popleft().result()

    def _flush(self, batch: dict[str, Prepared], summary: ImportSummary) -> None:
        if not batch:
            return
        existing = self.store.get_reports(list(batch))
        fresh = [p for sha, p in batch.items() if sha not in existing]
        inserted = self.store.insert_rows([p.row for p in fresh])
        if len(inserted) < len(fresh):  # stored meanwhile by another writer: enrich those instead
            existing.update(self.store.get_reports([p.sha256 for p in fresh if p.sha256 not in inserted]))
        items = [
            IngestItem(
                sha256=sha,
                submission=None,
                record=merge_report(existing[sha], p.report(), self.source),
                replace_report=True,
            )
            for sha, p in batch.items()
            if sha in existing
        ]
        if items:
            self.store.save(items)
        summary.reports += len(batch)
        summary.created += len(inserted)
        summary.enriched += len(items)
        batch.clear()


def _is_json(raw: str | bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True
