"""Bounded access to OOXML (OPC zip) packages: safe member reads, safe XML, document properties.

Hostile zips: the member count, each member's declared and actual size and the compression ratio
are capped before anything is inflated. Hostile XML: any part containing a DTD (``<!DOCTYPE``) or an
entity declaration (``<!ENTITY``) is rejected outright instead of being parsed (billion laughs,
external entities), which is stricter than defusedxml and needs no extra dependency.
"""

from __future__ import annotations

import logging
import re
import zipfile
from typing import Any
from xml.etree import ElementTree as ET

from kinfile.formats.common import clean_text

logger = logging.getLogger(__name__)

MAX_MEMBERS = 10_000
MAX_TOTAL_UNCOMPRESSED = 200 * 1024 * 1024
MAX_XML_PART = 16 * 1024 * 1024
MAX_CHILD_SIZE = 64 * 1024 * 1024
MAX_RATIO = 200  # deflate tops out near 1032:1; XML rarely exceeds 100:1
RATIO_FLOOR = 1024 * 1024  # small members may have any ratio
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)

NS_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
NS_CT = "http://schemas.openxmlformats.org/package/2006/content-types"


class Package:
    """A zip opened with bounds; ``read`` refuses members that break them."""

    def __init__(self, data: bytes, anomalies: list[str]) -> None:
        import io

        self.anomalies = anomalies
        self.zip = zipfile.ZipFile(io.BytesIO(data))
        infos = self.zip.infolist()
        if len(infos) > MAX_MEMBERS:
            anomalies.append(f"ooxml: {len(infos)} zip members, only the first {MAX_MEMBERS} used")
            infos = infos[:MAX_MEMBERS]
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            self.infos.setdefault(info.filename.lstrip("/"), info)
        self.lower = {name.lower(): name for name in self.infos}
        total = sum(i.file_size for i in infos)
        if total > MAX_TOTAL_UNCOMPRESSED:
            anomalies.append(f"ooxml: declared uncompressed size {total} exceeds {MAX_TOTAL_UNCOMPRESSED}")

    def find(self, name: str) -> str | None:
        """Exact member name for a part name (OPC part names are case-insensitive)."""
        return self.lower.get(name.lstrip("/").lower())

    def read(self, name: str, cap: int = MAX_XML_PART) -> bytes | None:
        real = self.find(name)
        if real is None:
            return None
        info = self.infos[real]
        if info.file_size > cap:
            self.anomalies.append(f"ooxml: member {clean_text(real, 120)!r} too large ({info.file_size})")
            return None
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            self.anomalies.append(f"ooxml: member {clean_text(real, 120)!r} compression ratio too high")
            return None
        try:
            with self.zip.open(info) as handle:
                blob = handle.read(cap + 1)
        except Exception as exc:  # noqa: BLE001 - bad CRC, unsupported method, encrypted member
            self.anomalies.append(f"ooxml: cannot read {clean_text(real, 120)!r} ({type(exc).__name__})")
            return None
        if len(blob) > cap:
            self.anomalies.append(f"ooxml: member {clean_text(real, 120)!r} inflates past its size")
            return None
        return blob

    def xml(self, name: str) -> ET.Element | None:
        blob = self.read(name)
        return None if blob is None else parse_xml(blob, name, self.anomalies)


def parse_xml(blob: bytes, name: str, anomalies: list[str]) -> ET.Element | None:
    if _DTD.search(blob):
        anomalies.append(f"ooxml: {clean_text(name, 120)!r} declares a DTD/entity, not parsed")
        return None
    try:
        return ET.fromstring(blob)
    except ET.ParseError as exc:
        anomalies.append(f"ooxml: {clean_text(name, 120)!r} is not well-formed XML ({clean_text(exc, 80)})")
        return None


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def text_children(root: ET.Element | None, limit: int = 64) -> dict[str, str]:
    """``{local name: text}`` of the direct children of a property part."""
    out: dict[str, str] = {}
    if root is None:
        return out
    for child in list(root)[:limit]:
        text = (child.text or "").strip()
        if text and len(child) == 0:
            out[local(child.tag)] = clean_text(text, 1024)
    return out


def rels_source(rels_name: str) -> str:
    """The part a ``.rels`` part describes: ``word/_rels/document.xml.rels`` -> ``word/document.xml``."""
    folder, _, leaf = rels_name.rpartition("_rels/")
    return folder + leaf[: -len(".rels")] if leaf.endswith(".rels") else rels_name


def resolve_target(source: str, target: str) -> str:
    """Resolve an internal relationship target against its source part (a zip member name)."""
    if target.startswith("/"):
        parts: list[str] = []
        target = target[1:]
    else:
        parts = source.split("/")[:-1]
    for piece in target.split("/"):
        if piece == "..":
            if parts:
                parts.pop()
        elif piece not in ("", "."):
            parts.append(piece)
    return "/".join(parts)


# docProps/core.xml local name -> ExifTool tag
CORE_EXIF = {
    "title": "Title", "subject": "Subject", "creator": "Creator", "keywords": "Keywords",
    "description": "Description", "lastModifiedBy": "LastModifiedBy", "revision": "RevisionNumber",
    "created": "CreateDate", "modified": "ModifyDate", "lastPrinted": "LastPrinted",
    "category": "Category", "contentStatus": "ContentStatus", "language": "Language",
    "version": "Version", "identifier": "Identifier",
}  # fmt: skip
# docProps/app.xml local name -> ExifTool tag
APP_EXIF = {
    "Template": "Template", "TotalTime": "TotalEditTime", "Pages": "Pages", "Words": "Words",
    "Characters": "Characters", "Application": "Application", "DocSecurity": "DocSecurity",
    "Lines": "Lines", "Paragraphs": "Paragraphs", "ScaleCrop": "ScaleCrop", "Company": "Company",
    "LinksUpToDate": "LinksUpToDate", "CharactersWithSpaces": "CharactersWithSpaces",
    "SharedDoc": "SharedDoc", "HyperlinksChanged": "HyperlinksChanged", "AppVersion": "AppVersion",
    "Slides": "Slides", "Notes": "Notes", "HiddenSlides": "HiddenSlides", "MMClips": "MMClips",
    "PresentationFormat": "PresentationFormat", "Manager": "Manager", "HyperlinkBase": "HyperlinkBase",
}  # fmt: skip
DOC_SECURITY = {0: "None", 1: "Password protected", 2: "Read-only recommended", 4: "Read-only enforced",
                8: "Locked for annotations"}  # fmt: skip


def _exif_date(value: str) -> str:
    """``2019-01-20T07:17:53Z`` -> ``2019:01:20 07:17:53Z`` (ExifTool's date style)."""
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?", value)
    if not match:
        return value
    return f"{match[1]}:{match[2]}:{match[3]} {match[4]}{match[6] or ''}"


def _exif_value(value: str) -> Any:
    if value in ("true", "false"):
        return "Yes" if value == "true" else "No"
    if value.isdigit() and len(value) < 16:
        return int(value)
    return value


def exiftool_docprops(core: dict[str, str], app: dict[str, str]) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    for key, value in core.items():
        if key in CORE_EXIF:
            is_date = key in ("created", "modified", "lastPrinted")
            tags[CORE_EXIF[key]] = _exif_date(value) if is_date else value
    for key, value in app.items():
        if key not in APP_EXIF:
            continue
        if key == "TotalTime" and value.isdigit():
            tags["TotalEditTime"] = f"{int(value)} min" if int(value) else "0"
        elif key == "DocSecurity" and value.isdigit():
            tags["DocSecurity"] = DOC_SECURITY.get(int(value), value)
        elif key == "AppVersion":
            tags["AppVersion"] = value
        else:
            tags[APP_EXIF[key]] = _exif_value(value)
    return tags
