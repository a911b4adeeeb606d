"""Straightforward reference versions of the per-report import steps (the code before the fast paths).

tests/engines/test_prepare_equivalence.py checks that the memoised, inlined versions in
engines/vtreports.py, engines/avclass.py, storage/searchable.py and clues/features.py give exactly
these outputs. AVClass itself is the unmodified library (``avclass.common.AvLabels``).
"""

from __future__ import annotations

import datetime as _dt
import string
from collections.abc import Callable
from functools import cache
from typing import Any

from avclass.common import AvLabels, SampleInfo

from kinfile.clues import features
from kinfile.engines.base import stats_of
from kinfile.engines.vtreports import FORMAT_AVCLASS, ImportedReport, RecordError, _hash

PRINTABLE = frozenset(string.printable)


def epoch(value: Any) -> int | None:
    """The previous code, with the later range check (years 1-9999; a bigger date crashed the
    batch's insert, inf crashed the parse)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value) if -62_135_596_800 <= value <= 253_402_300_799 else None
    text = str(value).strip()
    if text.isdigit():
        return int(text) if int(text) <= 253_402_300_799 else None
    try:
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


def _dates(attrs: dict[str, Any]) -> dict[str, Any]:
    for key in [k for k in attrs if k.endswith("_date")]:
        value = epoch(attrs[key])
        if value is None:
            del attrs[key]
        else:
            attrs[key] = value
    return attrs


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


@cache
def labeler() -> AvLabels:
    return AvLabels()


def labels_of(results: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for engine, res in results.items():
        label = res.get("result") if isinstance(res, dict) else None
        if isinstance(label, str):
            clean = label
            if not (label.isascii() and label.isprintable()):
                clean = "".join(c for c in label if c in PRINTABLE)
            out.append((engine, clean.strip()))
    return out


def sample_tags(md5: str, sha1: str, sha256: str, labels: list[tuple[str, str]]) -> dict[str, list[str]]:
    return labeler().get_sample_tags(SampleInfo(md5, sha1, sha256, labels, []))  # type: ignore[no-any-return]


def ranked_tags(md5: str, sha1: str, sha256: str, labels: list[tuple[str, str]]) -> list[tuple[str, int]]:
    return list(labeler().rank_tags(sample_tags(md5, sha1, sha256, labels)))


def classify(md5: str, sha1: str, sha256: str, results: dict[str, Any]) -> dict[str, Any] | None:
    labels = labels_of(results)
    if not labels:
        return None
    avl = labeler()
    names: list[dict[str, Any]] = []
    categories: list[dict[str, Any]] = []
    for tag, count in ranked_tags(md5 or "", sha1 or "", sha256 or "", labels):
        kind = avl.taxonomy.get_category(tag)
        if kind in ("FAM", "UNK"):
            names.append({"count": count, "value": tag})
        elif kind == "CLASS":
            categories.append({"count": count, "value": tag})
    if not names and not categories:
        return None
    top_names = "/".join(n["value"] for n in names[:2])
    label = ".".join(part for part in (categories[0]["value"] if categories else "", top_names) if part)
    out: dict[str, Any] = {"suggested_threat_label": label}
    if categories:
        out["popular_threat_category"] = categories
    if names:
        out["popular_threat_name"] = names
    return out


def _pe(attrs: dict[str, Any]) -> dict[str, Any]:
    value = attrs.get("pe_info")
    return value if isinstance(value, dict) else {}


HAVE_DERIVED: dict[str, Callable[[dict[str, Any]], bool]] = {
    "imphash": lambda a: bool(_pe(a).get("imphash")),
    "rich_pe_header_hash": lambda a: bool(_pe(a).get("rich_pe_header_hash")),
    "overlay": lambda a: bool(_pe(a).get("overlay")),
    "resources": lambda a: bool(_pe(a).get("resource_details")),
    "exports": lambda a: bool(_pe(a).get("exports")),
    "imports": lambda a: bool(_pe(a).get("import_list")),
    "signature": lambda a: bool(a.get("signature_info")),
    "ep": lambda a: _pe(a).get("entry_point") is not None,
}


def extract_have(attrs: dict[str, Any]) -> set[str]:
    internal = ("analysis_seconds", "verdict_sources")  # never served
    present = {k for k, v in attrs.items() if v not in (None, "", [], {}) and k not in internal}
    present |= {name for name, test in HAVE_DERIVED.items() if test(attrs)}
    return {p.lower()[:512] for p in present}


def clue_features(attrs: dict[str, Any]) -> list[tuple[str, str]]:
    """Every extractor on every report (no skipping of reports without the attributes read)."""
    found: set[tuple[str, str]] = set()
    for extractor in features.EXTRACTORS:
        try:
            found.update(extractor(attrs))
        except Exception:
            continue
    return sorted(found)
