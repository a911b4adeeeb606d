"""OLE property sets: ``\\x05SummaryInformation`` and ``\\x05DocumentSummaryInformation``.

Read with :meth:`olefile.OleFileIO.getproperties` (the same reader as ``get_metadata``), mapped to
VirusTotal's ``office_info.summary_info`` / ``document_summary_info`` names and to ExifTool's
FlashPix tag names for the ``exiftool`` attribute.
"""

from __future__ import annotations

import datetime as dt
import logging
import struct
from typing import Any

from kinfile.formats.common import clean_text

logger = logging.getLogger(__name__)

SUMMARY_STREAM = "\x05SummaryInformation"
DOC_SUMMARY_STREAM = "\x05DocumentSummaryInformation"

# property id -> (VirusTotal name, ExifTool name) for the SummaryInformation set ([MS-OLEPS] 2.25.1)
SUMMARY_PROPS: dict[int, tuple[str, str]] = {
    1: ("code_page", "CodePage"),
    2: ("title", "Title"),
    3: ("subject", "Subject"),
    4: ("author", "Author"),
    5: ("keywords", "Keywords"),
    6: ("comments", "Comments"),
    7: ("template", "Template"),
    8: ("last_author", "LastModifiedBy"),
    9: ("revision_number", "RevisionNumber"),
    10: ("edit_time", "TotalEditTime"),
    11: ("last_printed", "LastPrinted"),
    12: ("creation_datetime", "CreateDate"),
    13: ("last_saved", "ModifyDate"),
    14: ("page_count", "Pages"),
    15: ("word_count", "Words"),
    16: ("character_count", "Characters"),
    18: ("application_name", "Software"),
    19: ("security", "Security"),
}

# DocumentSummaryInformation set ([MS-OLEPS] 2.25.2); heading pairs / hlinks are skipped.
DOC_SUMMARY_PROPS: dict[int, tuple[str, str]] = {
    1: ("code_page", "CodePage"),
    2: ("category", "Category"),
    3: ("presentation_target", "PresentationTarget"),
    4: ("bytes", "Bytes"),
    5: ("line_count", "Lines"),
    6: ("paragraph_count", "Paragraphs"),
    7: ("slides", "Slides"),
    8: ("notes", "Notes"),
    9: ("hidden_slides", "HiddenSlides"),
    10: ("mm_clips", "MMClips"),
    11: ("scale", "ScaleCrop"),
    13: ("titles_of_parts", "TitleOfParts"),
    14: ("manager", "Manager"),
    15: ("company", "Company"),
    16: ("links_dirty", "LinksUpToDate"),
    17: ("characters_with_spaces", "CharCountWithSpaces"),
    19: ("shared_document", "SharedDoc"),
    20: ("link_base", "HyperlinkBase"),
    22: ("hyperlinks_changed", "HyperlinksChanged"),
    23: ("version", "AppVersion"),
    26: ("content_type", "ContentType"),
    27: ("content_status", "ContentStatus"),
    28: ("language", "Language"),
    29: ("doc_version", "DocVersion"),
}

CODE_PAGES: dict[int, str] = {
    437: "DOS US",
    850: "DOS Latin 1",
    874: "Windows Thai",
    932: "Windows Japanese (Shift-JIS)",
    936: "Windows Simplified Chinese (GBK)",
    949: "Windows Korean",
    950: "Windows Traditional Chinese (Big5)",
    1200: "Unicode UTF-16, little endian",
    1250: "Windows Latin 2 (Central European)",
    1251: "Windows Cyrillic",
    1252: "Windows Latin 1 (Western European)",
    1253: "Windows Greek",
    1254: "Windows Turkish",
    1255: "Windows Hebrew",
    1256: "Windows Arabic",
    1257: "Windows Baltic",
    1258: "Windows Vietnamese",
    10000: "Mac Roman (Western European)",
    65000: "Unicode (UTF-7)",
    65001: "Unicode (UTF-8)",
}

SECURITY_FLAGS = ((1, "Password protected"), (2, "Read-only recommended"), (4, "Read-only enforced"),
                  (8, "Locked for annotations"))  # fmt: skip

MAX_LIST = 256
MAX_PROPERTIES = 1024
MAX_PROPERTY_STREAM = 4 * 1024 * 1024


def _codec(code_page: Any) -> str:
    if not isinstance(code_page, int):
        return "cp1252"
    code_page &= 0xFFFF
    if code_page == 65001:
        return "utf-8"
    if code_page == 1200:
        return "utf-16-le"
    try:
        "".encode(f"cp{code_page}")
    except LookupError:
        return "cp1252"
    return f"cp{code_page}"


def _value(raw: Any, codec: str) -> Any:  # noqa: PLR0911
    if isinstance(raw, bytes):
        return clean_text(raw.decode(codec, "replace"), 1024).strip()
    if isinstance(raw, str):
        return clean_text(raw, 1024).strip()
    if isinstance(raw, dt.datetime):  # a zero FILETIME (1601-01-01) means "not set"
        return None if raw.year <= 1601 else raw.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(raw, bool | int | float):
        return raw
    if isinstance(raw, list):
        return [_value(v, codec) for v in raw[:MAX_LIST]]
    return clean_text(repr(raw), 256)


def read_property_set(ole: Any, stream: str, anomalies: list[str]) -> dict[int, Any]:
    """Raw ``{property id: value}`` of the first section of a property-set stream.

    Our own bounded reader: olefile's ``getproperties`` trusts vector counts from the file and can
    spin for minutes on a hostile count.
    """
    try:
        if not ole.exists(stream) or ole.get_size(stream) > MAX_PROPERTY_STREAM:
            return {}
        blob = ole.openstream(stream).read(MAX_PROPERTY_STREAM)
        return parse_property_set(blob)
    except Exception as exc:  # noqa: BLE001 - hostile property set
        anomalies.append(f"ole: unreadable {stream.lstrip(chr(5))} ({type(exc).__name__})")
        return {}


def parse_property_set(blob: bytes) -> dict[int, Any]:
    """Parse section 0 of a PropertySetStream ([MS-OLEPS] 2.21) with every count bounded."""
    if len(blob) < 48 or blob[:2] != b"\xfe\xff":
        return {}
    section = struct.unpack_from("<I", blob, 44)[0]
    if section + 8 > len(blob):
        return {}
    count = min(struct.unpack_from("<I", blob, section + 4)[0], MAX_PROPERTIES)
    props: dict[int, Any] = {}
    code_page = 1252
    for index in range(count):
        entry = section + 8 + 8 * index
        if entry + 8 > len(blob):
            break
        pid, offset = struct.unpack_from("<II", blob, entry)
        if pid == 0:
            continue  # the dictionary property carries names, not a value
        try:
            value = _read_typed(blob, section + offset, code_page)
        except (struct.error, ValueError, IndexError):
            continue
        if pid == 1 and isinstance(value, int):
            code_page = value & 0xFFFF
        props[pid] = value
    return props


def _read_typed(blob: bytes, pos: int, code_page: int) -> Any:
    vtype = struct.unpack_from("<H", blob, pos)[0]
    if vtype & 0x1000:  # VT_VECTOR of something
        count = struct.unpack_from("<I", blob, pos + 4)[0]
        items, cursor = [], pos + 8
        for _ in range(min(count, MAX_LIST)):
            value, cursor = _read_scalar(blob, cursor, vtype & 0x0FFF, code_page)
            items.append(value)
        return items
    return _read_scalar(blob, pos + 4, vtype, code_page)[0]


def _read_scalar(blob: bytes, pos: int, vtype: int, code_page: int) -> tuple[Any, int]:  # noqa: PLR0911
    """``(value, next position)`` of one typed value; VT_VARIANT items carry their own type."""
    if vtype == 0x000C:  # VT_VARIANT inside a vector
        inner = struct.unpack_from("<H", blob, pos)[0]
        return _read_scalar(blob, pos + 4, inner, code_page)
    if vtype in (2, 18):  # VT_I2 / VT_UI2
        return struct.unpack_from("<h" if vtype == 2 else "<H", blob, pos)[0], pos + 4
    if vtype in (3, 19, 22, 23):  # VT_I4 / VT_UI4 / VT_INT / VT_UINT
        return struct.unpack_from("<i" if vtype in (3, 22) else "<I", blob, pos)[0], pos + 4
    if vtype == 11:  # VT_BOOL
        return struct.unpack_from("<H", blob, pos)[0] != 0, pos + 4
    if vtype in (20, 21):  # VT_I8 / VT_UI8
        return struct.unpack_from("<q" if vtype == 20 else "<Q", blob, pos)[0], pos + 8
    if vtype == 64:  # VT_FILETIME
        return _filetime(struct.unpack_from("<Q", blob, pos)[0]), pos + 8
    if vtype in (30, 31, 65):  # VT_LPSTR / VT_LPWSTR / VT_BLOB
        size = struct.unpack_from("<I", blob, pos)[0]
        nbytes = size * 2 if vtype == 31 else size
        if nbytes > len(blob) - pos - 4:
            raise ValueError("property string past the end of the stream")
        raw = blob[pos + 4 : pos + 4 + nbytes]
        end = pos + 4 + ((nbytes + 3) & ~3)
        if vtype == 65:
            return f"<blob {size} bytes>", end
        text = raw.decode("utf-16-le" if vtype == 31 else _codec(code_page), "replace")
        return text.split("\x00", 1)[0], end
    raise ValueError(f"unsupported property type {vtype:#x}")


def _filetime(ticks: int) -> dt.datetime | int:
    if ticks == 0:
        return dt.datetime(1601, 1, 1)
    try:
        return dt.datetime(1601, 1, 1) + dt.timedelta(microseconds=ticks // 10)
    except OverflowError:
        return ticks


def _edit_time(raw: Any) -> int | None:
    """Total edit time in seconds (stored as a FILETIME counting 100 ns ticks from zero)."""
    if isinstance(raw, int) and raw >= 0:
        return raw // 10_000_000
    if isinstance(raw, dt.datetime):
        return int((raw - dt.datetime(1601, 1, 1)).total_seconds())
    return None


def _app_version(raw: Any) -> str | None:
    if isinstance(raw, int) and raw > 0:
        return f"{raw >> 16}.{raw & 0xFFFF:04d}"
    return None


def map_summary(props: dict[int, Any]) -> dict[str, Any]:
    """VirusTotal ``summary_info`` from the raw SummaryInformation properties."""
    codec = _codec(props.get(1))
    out: dict[str, Any] = {}
    for pid, (name, _) in SUMMARY_PROPS.items():
        if pid not in props or props[pid] is None:
            continue
        if pid == 1:
            out[name] = CODE_PAGES.get(props[pid] & 0xFFFF, str(props[pid])) if isinstance(
                props[pid], int) else clean_text(props[pid], 64)  # fmt: skip
        elif pid == 10:
            seconds = _edit_time(props[pid])
            if seconds is not None:
                out[name] = seconds
        else:
            value = _value(props[pid], codec)
            if value not in ("", None):
                out[name] = value
    return out


def map_doc_summary(props: dict[int, Any]) -> dict[str, Any]:
    """VirusTotal ``document_summary_info`` from the raw DocumentSummaryInformation properties."""
    codec = _codec(props.get(1))
    out: dict[str, Any] = {}
    for pid, (name, _) in DOC_SUMMARY_PROPS.items():
        if pid not in props or props[pid] is None:
            continue
        raw = props[pid]
        if pid == 1:
            out[name] = CODE_PAGES.get(raw & 0xFFFF, str(raw)) if isinstance(raw, int) else str(raw)[:64]
        else:
            value = _value(raw, codec)
            if value not in ("", [], None):
                out[name] = value
    return out


def _exif_datetime(text: str) -> str:
    return text.replace("-", ":", 2)


def exiftool_tags(summary_raw: dict[int, Any], doc_raw: dict[int, Any]) -> dict[str, Any]:
    """ExifTool (FlashPix module) style tags from both property sets."""
    tags: dict[str, Any] = {}
    for props, table in ((summary_raw, SUMMARY_PROPS), (doc_raw, DOC_SUMMARY_PROPS)):
        codec = _codec(props.get(1))
        for pid, (_, exif_name) in table.items():
            raw = props.get(pid)
            if raw is None:
                continue
            if pid == 1 and isinstance(raw, int):
                tags[exif_name] = CODE_PAGES.get(raw & 0xFFFF, f"Unknown ({raw})")
            elif table is SUMMARY_PROPS and pid == 10:
                seconds = _edit_time(raw)
                if seconds is not None:
                    tags[exif_name] = f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"
            elif table is SUMMARY_PROPS and pid == 19 and isinstance(raw, int):
                names = [label for bit, label in SECURITY_FLAGS if raw & bit]
                tags[exif_name] = ", ".join(names) if names else "None"
            elif table is DOC_SUMMARY_PROPS and pid == 23:
                version = _app_version(raw)
                if version:
                    tags[exif_name] = version
            elif table is DOC_SUMMARY_PROPS and pid == 16 and isinstance(raw, bool):
                tags[exif_name] = "No" if raw else "Yes"  # LinksDirty -> LinksUpToDate
            else:
                value = _value(raw, codec)
                if isinstance(value, bool):
                    value = "Yes" if value else "No"
                if table is SUMMARY_PROPS and pid in (11, 12, 13) and isinstance(value, str):
                    value = _exif_datetime(value)
                if value not in ("", [], None):
                    tags[exif_name] = value
    return tags
