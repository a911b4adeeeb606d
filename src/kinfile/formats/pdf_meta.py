"""PDF document metadata (Info dictionary, XMP) in ExifTool's tag names, for :mod:`kinfile.formats.pdf`."""

from __future__ import annotations

import logging
import re
from typing import Any

from kinfile.formats.common import clean_text
from kinfile.formats.pdf_objects import PdfDocument, text_of

logger = logging.getLogger(__name__)

MAX_VALUE = 1024
INFO_TAGS = {
    "Title": "Title",
    "Author": "Author",
    "Subject": "Subject",
    "Keywords": "Keywords",
    "Creator": "Creator",
    "Producer": "Producer",
    "CreationDate": "CreateDate",
    "ModDate": "ModifyDate",
    "Trapped": "Trapped",
}
_PDF_DATE_RE = re.compile(
    r"^\s*(?:D:)?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?\s*(Z|[+-]\d{2}'?(?:\d{2}'?)?)?"
)
_XMP_DATE_RE = re.compile(
    r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?(?:T(\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?)?(.*)$"
)
_XMP_RE = re.compile(rb"<x:xmpmeta\b.{0,1048576}?</x:xmpmeta>", re.S)
_XMP_TOOLKIT_RE = re.compile(rb"x:xmptk\s*=\s*[\"']([^\"']{1,256})")
# XMP property -> ExifTool tag name. Simple properties are either an element or an attribute.
XMP_TAGS = {
    "xmp:CreatorTool": "CreatorTool",
    "xmp:CreateDate": "CreateDate",
    "xmp:ModifyDate": "ModifyDate",
    "xmp:MetadataDate": "MetadataDate",
    "pdf:Producer": "Producer",
    "pdf:Keywords": "Keywords",
    "pdf:PDFVersion": "PDFVersion",
    "xmpMM:DocumentID": "DocumentID",
    "xmpMM:InstanceID": "InstanceID",
    "dc:format": "Format",
    "dc:title": "Title",
    "dc:creator": "Author",
    "dc:description": "Subject",
}
XMP_DATE_TAGS = frozenset({"CreateDate", "ModifyDate", "MetadataDate"})
XMP_OVERRIDABLE = frozenset({"CreatorTool", "MetadataDate", "DocumentID", "InstanceID", "Format"})


def pdf_date(value: str) -> str:
    """``D:20200316223100+01'00'`` -> ``2020:03:16 22:31:00+01:00`` (ExifTool's form)."""
    match = _PDF_DATE_RE.match(value)
    if not match:
        return clean_text(value, MAX_VALUE)
    year, month, day, hour, minute, second, zone = match.groups()
    text = f"{year}:{month or '01'}:{day or '01'} {hour or '00'}:{minute or '00'}:{second or '00'}"
    if zone == "Z":
        text += "Z"
    elif zone:
        digits = zone.replace("'", "")
        text += f"{digits[:3]}:{digits[3:5] or '00'}"
    return text


def xmp_date(value: str) -> str:
    """``2020-03-16T22:31:00+01:00`` -> ``2020:03:16 22:31:00+01:00``."""
    value = value.strip()
    match = _XMP_DATE_RE.match(value)
    if not match:
        return clean_text(value, MAX_VALUE)
    year, month, day, hour, minute, second, zone = match.groups()
    if hour is None:
        return ":".join(p for p in (year, month, day) if p)
    return f"{year}:{month or '01'}:{day or '01'} {hour}:{minute}:{second or '00'}{zone.strip()}"


def info_metadata(doc: PdfDocument, trailer: dict[str, Any], encrypted: bool) -> dict[str, Any]:
    """Info dictionary fields, ExifTool names. Encrypted strings are skipped (no key derivation)."""
    info = doc.resolve(trailer.get("Info"))
    if not isinstance(info, dict) or encrypted:
        return {}
    result: dict[str, Any] = {}
    for key, tag in INFO_TAGS.items():
        text = text_of(doc.resolve(info.get(key)))
        if text is None or not text.strip():
            continue
        text = clean_text(text.strip(), MAX_VALUE)
        result[tag] = pdf_date(text) if tag in ("CreateDate", "ModifyDate") else text
    return result


def _xmp_value(packet: str, prop: str) -> str | None:
    """A simple XMP property as an attribute, an element, or the first ``rdf:li`` of an array."""
    name = re.escape(prop)
    match = re.search(rf"\b{name}\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", packet)
    if match:
        return match.group(1) if match.group(1) is not None else match.group(2)
    match = re.search(rf"<{name}\b[^>]*?(?:/>|>(.*?)</{name}\s*>)", packet, re.S)
    if not match or match.group(1) is None:
        return None
    inner = match.group(1)
    if "<rdf:li" in inner:
        items = re.findall(r"<rdf:li\b[^>]*>(.*?)</rdf:li\s*>", inner, re.S)
        inner = ", ".join(i.strip() for i in items if i.strip())
    if "<" in inner:
        return None
    return inner


def _unescape_xml(text: str) -> str:
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&")):
        text = text.replace(entity, char)
    return text


def xmp_metadata(blobs: list[bytes]) -> dict[str, Any]:
    """ExifTool-named tags from the last XMP packet found in ``blobs`` (raw file, decoded streams)."""
    packet = None
    for blob in blobs:
        if b"xmpmeta" not in blob:
            continue
        for match in _XMP_RE.finditer(blob):
            packet = match.group()
    if packet is None:
        return {}
    result: dict[str, Any] = {}
    toolkit = _XMP_TOOLKIT_RE.search(packet)
    if toolkit:
        result["XMPToolkit"] = clean_text(toolkit.group(1).decode("utf-8", "replace"), MAX_VALUE)
    text = packet.decode("utf-8", "replace")
    for prop, tag in XMP_TAGS.items():
        value = _xmp_value(text, prop)
        if value is None or not value.strip():
            continue
        value = clean_text(_unescape_xml(value.strip()), MAX_VALUE)
        result[tag] = xmp_date(value) if tag in XMP_DATE_TAGS else value
    return result


def merge_metadata(info: dict[str, Any], xmp: dict[str, Any]) -> dict[str, Any]:
    """Info values win (they are what ExifTool's PDF group reports); XMP fills the gaps."""
    merged = dict(info)
    for tag, value in xmp.items():
        if tag == "PDFVersion":
            continue
        if tag not in merged or tag in XMP_OVERRIDABLE:
            merged[tag] = value
    return merged


def encryption_description(doc: PdfDocument, trailer: dict[str, Any]) -> str | None:
    """ExifTool's ``Encryption`` value, e.g. ``Standard V2.3 (128-bit)``."""
    encrypt = doc.resolve(trailer.get("Encrypt"))
    if not isinstance(encrypt, dict):
        return None
    filter_name = str(doc.resolve(encrypt.get("Filter")) or "Unknown")
    version = doc.resolve(encrypt.get("V"))
    revision = doc.resolve(encrypt.get("R"))
    length = doc.resolve(encrypt.get("Length"))
    text = clean_text(filter_name, 64)
    if isinstance(version, int):
        text += f" V{version}"
        if isinstance(revision, int):
            text += f".{revision}"
    if not isinstance(length, int):
        length = {1: 40, 2: 128, 4: 128, 5: 256}.get(version if isinstance(version, int) else 0)
    if isinstance(length, int):
        text += f" ({length}-bit)"
    return text
