"""VirusTotal v3/v2 reports and AVClass label lines as kinfile's imported reports (pure).

Each parser takes one JSON object and returns an :class:`ImportedReport`: the file's hashes,
the attributes to import (VirusTotal's v3 names, dates as epoch ints) and the verdict part
(engine results, stats, date, YARA matches, classification) that engines/merge.py merges with
local engines. A record that cannot be imported raises :class:`RecordError` with a short reason.
The v2 mapping is documented in docs/verdicts.md.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from dataclasses import dataclass
from typing import Any

from kinfile.engines.base import day_of, empty_stats, stats_of
from kinfile.engines.merge import IMPORTED, SOURCES, VERDICT_KEYS

FORMAT_V3, FORMAT_V2, FORMAT_AVCLASS = "virustotal-v3", "virustotal-v2", "avclass"
HEX = re.compile(r"^[0-9a-f]+$")
DAY = 86400
# never taken from an imported report: the v3 envelope's, and kinfile's internal keys (a report
# holding "verdict_sources": "xy" made every later enrichment of the file fail)
ENVELOPE = ("type", "id", "error", "relationships", "context_attributes", "links")
RESERVED = frozenset({*ENVELOPE, SOURCES, IMPORTED, "analysis_seconds"})
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


@functools.lru_cache(maxsize=8192)
def _day_start(text: str) -> int | None:
    """Epoch of a ``YYYY-MM-DD`` text (ASCII digits, a real date), else ``None`` (memoised: a feed
    holds many reports of one day)."""
    if not (text.isascii() and text[4] == "-" and text[7] == "-"):
        return None
    year, month, day = text[:4], text[5:7], text[8:]
    if not (year.isdigit() and month.isdigit() and day.isdigit()):
        return None
    try:
        return (_dt.date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL) * DAY
    except ValueError:
        return None


_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()


def _seconds(text: str) -> int | None:
    """:func:`epoch` of a 19-character ``YYYY-MM-DD HH:MM:SS`` (or ``T``) text, ``None`` for any
    other text (left to the general parser)."""
    day = _day_start(text[:10])
    if day is None or text[10] not in " T" or text[13] != ":" or text[16] != ":":
        return None
    hours, minutes, seconds = text[11:13], text[14:16], text[17:]
    if not (hours.isdigit() and minutes.isdigit() and seconds.isdigit() and text.isascii()):
        return None
    h, m, s = int(hours), int(minutes), int(seconds)
    if h > 23 or m > 59 or s > 59:
        return None
    return day + h * 3600 + m * 60 + s


@functools.lru_cache(maxsize=4096)
def _day_text(day: int) -> str:
    return day_of(day * DAY)


def _update(scan_date: int) -> str:
    """``YYYYMMDD`` of an epoch (memoised per day; out-of-range dates fail as :func:`day_of`)."""
    try:
        return _day_text(scan_date // DAY)
    except (OverflowError, ValueError, OSError):
        return day_of(scan_date)


MIN_EPOCH, MAX_EPOCH = -62_135_596_800, 253_402_300_799  # years 1-9999 UTC; others are dropped


def epoch(value: Any) -> int | None:
    """An epoch int from an int/float, digits, or a ``YYYY-MM-DD[ HH:MM:SS]`` UTC text; ``None``
    for what is none of these or lies outside years 1-9999 (``1e20``, ``inf``, ``nan``: a
    database integer could not hold them)."""
    if value.__class__ is str and len(value) == 19:  # the usual "YYYY-MM-DD HH:MM:SS"
        found = _seconds(value)
        if found is not None:
            return found
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value) if MIN_EPOCH <= value <= MAX_EPOCH else None  # False for nan
    text = str(value).strip()
    if text.isascii() and text.isdigit():  # not "³": isdigit() but not int()
        return int(text) if len(text) <= 12 and int(text) <= MAX_EPOCH else None
    try:  # "2015-09-28 01:01:14", ISO 8601 (fast path)
        parsed = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        found = int((parsed if parsed.tzinfo else parsed.replace(tzinfo=_dt.UTC)).timestamp())
        return found if MIN_EPOCH <= found <= MAX_EPOCH else None  # an offset can push it out
    except (ValueError, OverflowError):
        pass
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return int(_dt.datetime.strptime(text, fmt).replace(tzinfo=_dt.UTC).timestamp())
        except ValueError:
            continue
    return None


def _size(value: Any) -> int | None:
    """A report's file size: a non-negative integer that fits 63 bits, else unknown (``None``)."""
    if value.__class__ is int and 0 <= value < 2**63:
        return int(value)
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
        "results": {engine: r for engine, r in results.items() if isinstance(r, dict)},  # as v2's
        "stats": _typed(attrs, "last_analysis_stats", dict),
        "date": epoch(attrs.get("last_analysis_date")),
        "crowdsourced_yara_results": _typed(attrs, "crowdsourced_yara_results", list),
        "popular_threat_classification": _typed(attrs, "popular_threat_classification", dict),
    }
    if not all(isinstance(e, dict) for e in verdict["crowdsourced_yara_results"] or ()):
        raise RecordError("crowdsourced_yara_results holds an entry that is not an object")
    kept = {k: v for k, v in attrs.items() if k not in VERDICT_KEYS and k not in RESERVED}
    return ImportedReport(
        sha256=sha256,
        md5=_hash(attrs.get("md5"), 32, "md5"),
        sha1=_hash(attrs.get("sha1"), 40, "sha1"),
        size=_size(attrs.get("size")),
        attributes=_dates(kept),
        verdict={k: v for k, v in verdict.items() if v not in (None, {}, [])},
        fmt=FORMAT_V3,
    )


def _typed(attrs: dict[str, Any], key: str, kind: type) -> Any:
    """A verdict attribute of the type VirusTotal gives it (absent or null: ``None``)."""
    value = attrs.get(key)
    if value is not None and not isinstance(value, kind):
        raise RecordError(f"{key} is not {'an object' if kind is dict else 'a list'}")
    return value


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
        size=_size(obj.get("size")),
        attributes=_dates(attrs),
        verdict={k: v for k, v in verdict.items() if v not in (None, {})},
        fmt=FORMAT_V2,
    )


def _bad_pair(labels: list[Any]) -> RecordError:
    for pair in labels:
        try:
            engine, label = pair
        except (TypeError, ValueError):
            engine = label = None
        if not isinstance(engine, str) or not isinstance(label, str):
            return RecordError(f"av_labels entry {str(pair)[:80]!r} is not [engine, label]")
    raise AssertionError("no bad av_labels entry")  # pragma: no cover


def avclass_result(engine: str | None, label: str | None, update: str | None) -> dict[str, Any]:
    """An AVClass line's label as a VT engine result (every label malicious, no engine version)."""
    return {
        "category": "malicious",
        "engine_name": engine,
        "engine_version": None,
        "engine_update": update,
        "method": "blacklist",
        "result": label,
    }


def parse_avclass(obj: dict[str, Any]) -> ImportedReport:
    sha256 = _hash(obj.get("sha256"), 64, "sha256", required=True)
    labels = obj.get("av_labels")
    if not isinstance(labels, list):
        raise RecordError("av_labels is not a list")
    scan_date = epoch(obj.get("scan_date"))
    update = None if scan_date is None else _update(scan_date)
    results: dict[str, Any] = {}
    template = avclass_result(None, None, update)
    try:
        for engine, label in labels:
            if not isinstance(engine, str) or not isinstance(label, str):
                raise TypeError
            result = results[engine] = template.copy()  # cheaper than a 6-key literal
            result["engine_name"] = engine
            result["result"] = label
    except (TypeError, ValueError):
        raise _bad_pair(labels) from None
    attrs: dict[str, Any] = {}
    if obj.get("first_seen") is not None:
        attrs["first_submission_date"] = epoch(obj["first_seen"])
    stats = empty_stats()  # stats_of(results): every result is malicious
    stats["malicious"] = len(results)
    verdict = {"results": results, "stats": stats, "date": scan_date}
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
    kind = record_format(value)
    if kind is None:
        raise RecordError("unrecognised record: not a VT v3 file object, VT v2 report or AVClass line")
    return [_PARSERS[kind](value)]


def record_format(value: dict[str, Any]) -> str | None:
    """The format of one JSON object (not a ``{"data": ...}`` document), as parse_record reads it."""
    if "attributes" in value:
        return FORMAT_V3
    if "scans" in value or "response_code" in value or "positives" in value:
        return FORMAT_V2
    if "av_labels" in value:
        return FORMAT_AVCLASS
    return None


_PARSERS = {FORMAT_V3: parse_v3, FORMAT_V2: parse_v2, FORMAT_AVCLASS: parse_avclass}
