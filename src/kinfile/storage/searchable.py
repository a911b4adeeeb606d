"""What of a report becomes searchable: hot columns of ``files`` and side-table rows.

The store calls these two functions for every report it writes, in the same transaction, so
search never has to scan report JSON. Adding a searchable attribute = a column or side table in
``schema.py`` (with a migration) + one entry here.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Integer, String

from kinfile.jsontext import storable
from kinfile.models import INTERNAL_KEYS
from kinfile.storage import schema

MAX_VALUE = 512

ValueRows = list[dict[str, str]]  # side-table rows {value, sha256}
ColumnExtractor = Callable[[dict[str, Any]], Any]
SideExtractor = Callable[[dict[str, Any]], set[str]]


def _list(key: str) -> SideExtractor:
    def extract(attrs: dict[str, Any]) -> set[str]:
        values = attrs.get(key)
        if not isinstance(values, list):
            return set()
        return {storable(str(v)).lower()[:MAX_VALUE] for v in values if v not in (None, "")} - {""}

    return extract


# files column -> value taken from the report
COLUMNS: dict[str, ColumnExtractor] = {
    "type_tag": lambda a: a.get("type_tag"),
    "type_description": lambda a: a.get("type_description"),
    "magic": lambda a: a.get("magic"),
    "magika": lambda a: a.get("magika"),
    "ssdeep": lambda a: a.get("ssdeep"),
    "tlsh": lambda a: a.get("tlsh"),
    "positives": lambda a: as_int(_dict(a.get("last_analysis_stats")).get("malicious")) or 0,
}

# side table name (schema.SIDE_TABLES) -> values taken from the report
SIDE_VALUES: dict[str, SideExtractor] = {
    "tags": _list("tags"),
    "type_tags": _list("type_tags"),
}


# -- search (issue 4): modifier columns and side tables ----------------------------------------
# Values are lower-cased so that SQLite and PostgreSQL compare them the same way; the query
# compiler (kinfile.query.fields) lower-cases the searched literal to match.
MAX_SIDE_VALUES = 1024
WORD_SPLIT = re.compile(r"[^0-9a-z]+")


def words(text: str) -> list[str]:
    """The search tokens of a text (also used on the query side): lower-case alphanumeric runs."""
    return [w for w in WORD_SPLIT.split(text.lower()) if len(w) >= 2]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        text = storable(str(value)).strip().lower()
        return text[:MAX_VALUE] or None
    return None


def _lower_str(value: Any) -> str | None:
    return storable(value).strip().lower()[:MAX_VALUE] or None if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    return None


def _collect(values: Any) -> set[str]:
    out: list[str] = []
    for value in values:
        text = _text(value)
        if text:
            out.append(text)
        if len(out) >= MAX_SIDE_VALUES:
            break
    return set(out)


def _with_words(values: Any) -> set[str]:
    """Whole values and their words (``metadata:``, ``signature:``, ``lang:``, ``packer:``)."""
    out: set[str] = set()
    for value in values:
        text = _text(value)
        if not text:
            continue
        out.add(text)
        out.update(w[:MAX_VALUE] for w in words(text))
        if len(out) >= MAX_SIDE_VALUES:
            break
    return out


def _strings(mapping: Any) -> list[Any]:
    """Scalar values of a flat mapping (nested values are skipped)."""
    return [
        v for v in _dict(mapping).values() if isinstance(v, str | int | float) and not isinstance(v, bool)
    ]


def _macho_slices(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    value = attrs.get("macho_info")
    return [s for s in (value if isinstance(value, list) else [value]) if isinstance(s, dict)]


def extract_sections(attrs: dict[str, Any]) -> set[str]:
    pe = _dict(attrs.get("pe_info"))
    names = [_dict(s).get("name") for s in _items(pe.get("sections"))]
    names += [_dict(s).get("name") for s in _items(_dict(attrs.get("elf_info")).get("section_list"))]
    for sl in _macho_slices(attrs):
        for seg in _items(sl.get("segments")):
            names += [_dict(s).get("name") for s in _items(_dict(seg).get("sections"))]
    return _collect(names)


def extract_section_md5s(attrs: dict[str, Any]) -> set[str]:
    return _collect(_dict(s).get("md5") for s in _items(_dict(attrs.get("pe_info")).get("sections")))


def extract_imports(attrs: dict[str, Any]) -> set[str]:
    """Imported libraries first (so a cap never drops them), then imported functions."""
    pe = _dict(attrs.get("pe_info"))
    elf = _dict(attrs.get("elf_info"))
    libraries: list[Any] = [_dict(i).get("library_name") for i in _items(pe.get("import_list"))]
    libraries += _items(elf.get("shared_libraries"))
    functions: list[Any] = []
    for entry in _items(pe.get("import_list")):
        functions += _items(_dict(entry).get("imported_functions"))
    functions += [_dict(i).get("name") for i in _items(elf.get("import_list"))]
    for sl in _macho_slices(attrs):
        libraries += _items(sl.get("libs"))
        functions += _items(sl.get("imports"))
    return _collect([*libraries, *functions])


def extract_exports(attrs: dict[str, Any]) -> set[str]:
    names: list[Any] = list(_items(_dict(attrs.get("pe_info")).get("exports")))
    names += [_dict(e).get("name") for e in _items(_dict(attrs.get("elf_info")).get("export_list"))]
    for sl in _macho_slices(attrs):
        names += _items(sl.get("exports"))
    return _collect(names)


def extract_resources(attrs: dict[str, Any]) -> set[str]:
    details = _items(_dict(attrs.get("pe_info")).get("resource_details"))
    return _collect(_dict(r).get("sha256") for r in details)


def extract_langs(attrs: dict[str, Any]) -> set[str]:
    langs: list[Any] = list(_dict(_dict(attrs.get("pe_info")).get("resource_langs")))
    langs.append(_dict(attrs.get("exiftool")).get("LanguageCode"))
    langs.append(_dict(_dict(_dict(attrs.get("openxml_info")).get("docprops")).get("core")).get("language"))
    rtf = _dict(_dict(attrs.get("rtf_info")).get("document_properties"))
    langs += _items(rtf.get("default_languages"))
    return _with_words(langs)


def extract_packers(attrs: dict[str, Any]) -> set[str]:
    return _with_words(_strings(attrs.get("packers")))


def extract_netguids(attrs: dict[str, Any]) -> set[str]:
    return _collect(_strings(attrs.get("dot_net_guids")))


def extract_signature(attrs: dict[str, Any]) -> set[str]:
    info = _dict(attrs.get("signature_info"))
    values: list[Any] = _strings(info)
    for key in ("signers details", "counter signers details", "x509"):
        for cert in _items(info.get(key)):
            values += [_dict(cert).get("name"), _dict(cert).get("cert issuer")]
    return _with_words(values)


def extract_metadata(attrs: dict[str, Any]) -> set[str]:
    values: list[Any] = _strings(attrs.get("exiftool"))
    office = _dict(attrs.get("office_info"))
    values += _strings(office.get("summary_info")) + _strings(office.get("document_summary_info"))
    docprops = _dict(_dict(attrs.get("openxml_info")).get("docprops"))
    values += _strings(docprops.get("core")) + _strings(docprops.get("app"))
    values += _strings(_dict(attrs.get("rtf_info")).get("summary_info"))
    values += _strings(_dict(attrs.get("elf_info")).get("header"))
    for sl in _macho_slices(attrs):
        values.append(sl.get("uuid"))
    for entry in _items(_dict(attrs.get("pe_info")).get("debug")):
        values.append(_dict(_dict(entry).get("codeview")).get("guid"))
    return _with_words(values)


# have:<name> values of pe_info parts: name -> the pe_info key that must be non-empty
HAVE_PE = {
    "imphash": "imphash",
    "rich_pe_header_hash": "rich_pe_header_hash",
    "overlay": "overlay",
    "resources": "resource_details",
    "exports": "exports",
    "imports": "import_list",
}
_EMPTY: tuple[Any, ...] = (None, "", [], {})


def extract_have(attrs: dict[str, Any]) -> set[str]:
    """``have:`` values: every non-empty attribute served (lower-case, cut; not kinfile's own
    :data:`~kinfile.models.INTERNAL_KEYS`), the non-empty pe_info parts of :data:`HAVE_PE`, ``ep``
    (an entry point) and ``signature`` (signature_info)."""
    keys = [k for k, v in attrs.items() if v not in _EMPTY and k not in INTERNAL_KEYS]
    joined = "".join(keys)
    if not joined.isascii() or "\x00" in joined:  # rare: make each key storable
        keys = [storable(k) for k in keys]
    present = {k.lower()[:MAX_VALUE] for k in keys}
    pe = attrs.get("pe_info")
    if isinstance(pe, dict) and pe:
        present.update(name for name, key in HAVE_PE.items() if pe.get(key))
        if pe.get("entry_point") is not None:
            present.add("ep")
    if attrs.get("signature_info"):
        present.add("signature")
    return present


def engine_key(name: str) -> str:
    """An engine's modifier name: ``"McAfee-GW-Edition"`` → ``"mcafee-gw-edition"``."""
    return re.sub(r"[^0-9a-z_\-]", "", name.lower())


AV_VALUE = MAX_VALUE - 2  # as the "*:<label>" rows of 0002's file_av_labels were cut


def extract_av_words(attrs: dict[str, Any]) -> dict[str, str]:
    """``{label or label word: ",<engine>,<engine>,"}`` over every engine that named the file.

    One row per distinct value per file (``file_av_words``) instead of one per engine and value:
    ``engines:<x>`` is ``value = x`` and ``<engine>:<x>`` also requires ``,<engine>,`` in the
    engines list. The cap counts what 0002's ``<engine>:<part>`` plus ``*:<part>`` rows counted.

    The engines are walked in key order, so each value's engine list comes out sorted and
    de-duplicated without a set and a sort per value; a report with enough labels to reach the
    cap (where the walk order decides what is kept) takes :func:`_av_words_walk`, the same
    result (tests/engines/test_import_bulk.py).
    """
    entries, total = _av_entries(attrs)
    if 2 * total >= MAX_SIDE_VALUES:  # pairs + values could reach the cap
        return _av_words_walk(attrs)
    entries.sort()
    by_part: dict[str, list[str]] = {}
    for key, parts in entries:
        for part in parts:
            keys = by_part.get(part)
            if keys is None:
                by_part[part] = [key]
            elif keys[-1] != key:
                keys.append(key)
    return {part: f",{','.join(keys)}," for part, keys in by_part.items()}


def _av_entries(attrs: dict[str, Any]) -> tuple[list[tuple[str, tuple[str, ...]]], int]:
    """``(engine key, label parts)`` of every labelled result, and the number of parts."""
    results = attrs.get("last_analysis_results")
    entries: list[tuple[str, tuple[str, ...]]] = []
    total = 0
    for engine, result in results.items() if isinstance(results, dict) else ():
        label = result.get("result") if isinstance(result, dict) else None
        if not isinstance(label, str) or not isinstance(engine, str):
            continue
        entry = engine_label(engine, label)
        if entry[1]:
            entries.append(entry)
            total += len(entry[1])
    return entries, total


def reaches_av_cap(attrs: dict[str, Any]) -> bool:
    """Whether a report has labels enough that its detection words could reach the cap."""
    return 2 * _av_entries(attrs)[1] >= MAX_SIDE_VALUES


@functools.lru_cache(maxsize=200_000)
def engine_label(engine: str, label: str) -> tuple[str, tuple[str, ...]]:
    """An engine's modifier key and a label's searchable parts (both repeat across reports)."""
    return _engine_key(engine), _label_parts(label)


def _av_words_walk(attrs: dict[str, Any]) -> dict[str, str]:
    """:func:`extract_av_words` walking the engines in key order, stopping at the cap.

    Key order, not the dict's: a report in memory holds its engines in input order, the same
    report read back from the store in key order, and the words kept at the cap must be the
    same for both (a replacement or deletion removes the words recomputed from the stored
    report, so they must be exactly those indexed)."""
    results = attrs.get("last_analysis_results")
    by_part: dict[str, set[str]] = {}
    pairs = 0
    items = sorted(results.items(), key=_engine_order) if isinstance(results, dict) else []
    for engine, result in items:
        label = result.get("result") if isinstance(result, dict) else None
        if not isinstance(label, str) or not isinstance(engine, str):
            continue
        parts = _label_parts(label)
        if not parts:
            continue
        key = _engine_key(engine)
        for part in parts:
            engines = by_part.get(part)
            if engines is None:
                by_part[part] = {key}
                pairs += 1
            elif key not in engines:
                engines.add(key)
                pairs += 1
        if pairs + len(by_part) >= MAX_SIDE_VALUES:
            break
    return {part: f",{','.join(sorted(keys))}," for part, keys in by_part.items()}


def _engine_order(item: tuple[Any, Any]) -> str:
    return item[0] if isinstance(item[0], str) else ""


@functools.lru_cache(maxsize=65536)
def _label_parts(label: str) -> tuple[str, ...]:
    """A label's searchable parts: itself and its words, lower-cased and cut (memoised: labels
    repeat across reports)."""
    text = _lower_str(label)
    return tuple(sorted({p[:AV_VALUE] for p in (text, *words(text))})) if text else ()


@functools.lru_cache(maxsize=4096)
def _engine_key(name: str) -> str:
    return engine_key(name)


def av_word_rows(attrs: dict[str, Any], sha256: str) -> list[dict[str, str]]:
    return [
        {"value": value, "sha256": sha256, "engines": engines}
        for value, engines in sorted(extract_av_words(attrs).items())
    ]


TRIGRAM = 3


def _lowered_forms(text: str) -> set[str]:
    """The lower-cased forms SQL may compare a name in: Python's full mapping, one character to
    one (PostgreSQL with libc), ASCII only (SQLite's ``lower`` and ``LIKE``)."""
    full = text.lower()
    if text.isascii():
        return {full}
    one_to_one = "".join(c.lower()[:1] for c in text)
    return {full, one_to_one, "".join(c.lower() if c.isascii() else c for c in text)}


def name_trigrams(name: str) -> set[str]:
    """Every 3-character window of a submitted name (as stored: cut to 512), lower-cased."""
    out: set[str] = set()
    for text in _lowered_forms(name[:MAX_VALUE]):
        out.update(text[i : i + TRIGRAM] for i in range(len(text) - TRIGRAM + 1))
    return out


def imported_names(attrs: dict[str, Any]) -> set[str]:
    """The ``names`` of an imported report (VirusTotal's submission names) as the names index
    holds a submitted name: storable, cut to 512. Added to ``file_names`` (and its trigrams) so
    that ``name:`` finds imported files; never removed by a later report (names only grow)."""
    names = _items(attrs.get("names"))[:MAX_SIDE_VALUES]
    return {storable(n)[:MAX_VALUE] for n in names if isinstance(n, str)} - {""}


def imported_name_rows(names: Iterable[str], sha256: str) -> tuple[ValueRows, ValueRows]:
    """The ``file_names`` and ``file_name_trigrams`` rows of names of one file (distinct)."""
    return (
        [{"value": name, "sha256": sha256} for name in sorted(names)],
        [{"value": gram, "sha256": sha256} for gram in sorted(names_trigrams(names))],
    )


def names_trigrams(names: Iterable[str]) -> set[str]:
    """:func:`name_trigrams` of several names of one file."""
    return {gram for name in names for gram in name_trigrams(name)}


def name_trigram_rows(name: str, sha256: str) -> list[dict[str, str]]:
    return [{"value": gram, "sha256": sha256} for gram in sorted(name_trigrams(name))]


def extract_yara_rules(attrs: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for match in _items(attrs.get("crowdsourced_yara_results")):
        rule = _lower_str(_dict(match).get("rule_name"))
        if not rule:
            continue
        out.add(rule)
        ruleset = _lower_str(_dict(match).get("ruleset_id"))
        if ruleset:
            out.add(f"{ruleset}|{rule}"[:MAX_VALUE])
    return out


COLUMNS.update(
    {
        "imphash": lambda a: _lower_str(_dict(a.get("pe_info")).get("imphash")),
        "vhash": lambda a: _lower_str(a.get("vhash")),
        "authentihash": lambda a: _lower_str(a.get("authentihash")),
        "rich_pe_header_hash": lambda a: _lower_str(_dict(a.get("pe_info")).get("rich_pe_header_hash")),
        "main_icon_dhash": lambda a: _lower_str(_dict(a.get("main_icon")).get("dhash")),
        "main_icon_md5": lambda a: _lower_str(_dict(a.get("main_icon")).get("raw_md5")),
        "telfhash": lambda a: _lower_str(a.get("telfhash")),
        "creation_date": lambda a: as_int(a.get("creation_date")),
        "suggested_threat_label": lambda a: _lower_str(
            _dict(a.get("popular_threat_classification")).get("suggested_threat_label")
        ),
        "reputation": lambda a: as_int(a.get("reputation")) or 0,
        "stored_at": lambda _a: int(time.time()),
    }
)
SIDE_VALUES.update(
    {
        "sections": extract_sections,
        "section_md5s": extract_section_md5s,
        "imports": extract_imports,
        "exports": extract_exports,
        "resources": extract_resources,
        "langs": extract_langs,
        "packers": extract_packers,
        "netguids": extract_netguids,
        "signature": extract_signature,
        "metadata": extract_metadata,
        "have": extract_have,
        "yara_rules": extract_yara_rules,
    }
)


# -- vhash clusters (issue 7): each file's top AVClass family and category, for cluster labels
def _top_value(entries: Any) -> str | None:
    """The ``value`` with the highest ``count`` of a ``[{count, value}]`` list (ties: smallest)."""
    ranked = [
        (-(as_int(_dict(e).get("count")) or 0), _lower_str(_dict(e).get("value"))) for e in _items(entries)
    ]
    ranked = [(c, v[:128]) for c, v in ranked if v]
    return min(ranked)[1] if ranked else None


COLUMNS.update(
    {
        "threat_family": lambda a: _top_value(
            _dict(a.get("popular_threat_classification")).get("popular_threat_name")
        ),
        "threat_category": lambda a: _top_value(
            _dict(a.get("popular_threat_classification")).get("popular_threat_category")
        ),
    }
)


def file_columns(attrs: dict[str, Any]) -> dict[str, Any]:
    """The ``files`` columns of a report, each fitted to its column type (:func:`fit`)."""
    out: dict[str, Any] = {}
    for column, extract in COLUMNS.items():
        value = extract(attrs)
        out[column] = value if value is None else _FITS[column](value)
    return out


# -- submission columns of a file kinfile has no submission of -----------------------------------
SUBMISSION_COLUMNS = (
    "times_submitted",
    "unique_sources",
    "first_submission_date",
    "last_submission_date",
    "meaningful_name",
)


def imported_submissions(attrs: dict[str, Any]) -> dict[str, Any]:
    """The submission columns of a report-only file (no submission of kinfile's): VirusTotal's
    counters, dates and name from its report, as the API serves them, so ``fs:``, ``ls:``,
    ``submissions:`` and ``sources:`` find imported files. A local submission replaces them
    (``Store._refresh_counters``); 0 and ``NULL`` for a report without them."""
    out: dict[str, Any] = {}
    for column in SUBMISSION_COLUMNS:
        value = attrs.get(column)
        out[column] = _FITS[column](value if column == "meaningful_name" else as_int(value))
    return out


# -- column types: what an imported report holds is not trusted to fit its column --------------
def _fit_text(length: int | None) -> Callable[[Any], str | None]:
    def fit(value: Any) -> str | None:
        if value is None:
            return None
        if value.__class__ is not str:
            return None  # a hostile report's list, number or object where a text belongs
        value = storable(value)
        return value[:length] if length is not None and len(value) > length else value

    return fit


def _fit_int(bits: int, default: int | None) -> Callable[[Any], int | None]:
    low, high = -(2**bits), 2**bits - 1

    def fit(value: Any) -> int | None:
        if value is None:
            return default
        if value.__class__ is not int or not low <= value <= high:
            return default  # a bool, a text or a number beyond the column's range
        return int(value)

    return fit


def _fit_bool(value: Any) -> Any:
    return bool(value)


def column_fit(column: Column[Any]) -> Callable[[Any], Any]:
    """What makes a value fit a ``files`` column: its type's range or length (PostgreSQL
    enforces both, SQLite neither) and NUL-free text; ``None`` (or 0 for a NOT NULL number)
    for a value of another type."""
    kind = column.type
    if isinstance(kind, Boolean):
        return _fit_bool
    if isinstance(kind, Integer):
        return _fit_int(63 if isinstance(kind, BigInteger) else 31, None if column.nullable else 0)
    if isinstance(kind, String):
        return _fit_text(kind.length)
    raise TypeError(f"no fit for column {column.name} of type {kind!r}")


def fit(column: str, value: Any) -> Any:
    """``value`` made to fit the ``files`` column ``column`` (:func:`column_fit`)."""
    return _FITS[column](value)


_FITS = {column.name: column_fit(column) for column in schema.files.columns}


def side_values(attrs: dict[str, Any]) -> dict[str, set[str]]:
    return {name: extract(attrs) for name, extract in SIDE_VALUES.items()}


def side_rows(attrs: dict[str, Any], sha256: str, words: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Every side-table row a report makes (``schema.SIDE_TABLES`` name -> rows); the detection
    words (``av_words``) only with ``words``."""
    rows: dict[str, list[dict[str, Any]]] = {
        name: [{"value": v, "sha256": sha256} for v in sorted(found)]
        for name, found in side_values(attrs).items()
    }
    if words:
        rows["av_words"] = av_word_rows(attrs, sha256)
    return rows


# -- clue rules (issue 8): each file's clue features, as text and as packed mining codes ---------
def _clue_side_values() -> dict[str, SideExtractor]:
    from kinfile.clues import features

    return {"clue_features": features.feature_texts, "clue_codes": features.feature_codes}  # type: ignore[dict-item]


SIDE_VALUES.update(_clue_side_values())
