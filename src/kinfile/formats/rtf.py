"""RTF analyser: VirusTotal's ``rtf_info`` (document properties, ``\\info`` summary), ExifTool-style
metadata, embedded OLE objects (``\\objdata`` decoded to OLE 1.0) as children, and tags.

A handful of byte regexes over the document plus a small tokenizer that only runs inside object
groups, so the common case (a text document without objects) costs a few passes at C speed.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kinfile.formats.common import (
    Child,
    Deadline,
    analyse_scanned,
    clean_text,
)
from kinfile.formats.rtf_info import decode_text, summary_info
from kinfile.formats.rtf_objects import Ole1Object, group_end, parse_ole1, parse_package, read_objdata
from kinfile.formats.rtf_tables import CHARACTER_SETS, codepage_name, language_name

logger = logging.getLogger(__name__)

MAX_LIST = 256
MAX_OBJDATA = 64
MAX_OBJDATA_TOKENS = 1 << 20  # tokenizer steps over all \objdata groups of one file
MAX_CHILDREN = 32
MAX_CHILD_SIZE = 32 * 1024 * 1024
WHITESPACE = b" \t\r\n\x0b\x0c"
OBJECT_TYPES = {
    b"objemb": "OLE embedded",
    b"objlink": "OLE link",
    b"objautlink": "OLE autolink",
    b"objsub": "OLE subscriber",
    b"objpub": "OLE publisher",
    b"objicemb": "OLE icemb",
    b"objhtml": "OLE html",
    b"objocx": "OLE control",
}
TYPE_TAGS = {"OLE embedded": "ole-embedded", "OLE control": "ole-control", "OLE link": "ole-link"}
DOS_STUBS = (b"This program cannot be run in DOS mode", b"This program must be run under Win32")
_HEX_DOS_STUBS = tuple(stub.hex().encode() for stub in DOS_STUBS)

_HEADER_RE = re.compile(rb"[\x00-\x20]*\{\\([a-zA-Z]{1,32}-?\d{0,10})")
_WORDS_RE = re.compile(
    rb"\\(pict|shp|do|datastore|object|objdata|objupdate|readprot|readonlyrecommended|protusertbl|protstart)"
    rb"(?![a-zA-Z])"
)
_ANSICPG_RE = re.compile(rb"\\ansicpg(\d{1,5})")
_CHARSET_RE = re.compile(rb"\\(ansi|mac|pca|pc)(?![a-zA-Z])")
_LANG_RES = tuple(
    re.compile(rb"\\" + word + rb"(\d{1,5})") for word in (b"deflang", b"adeflang", b"deflangfe")
)
_PROTLEVEL_RE = re.compile(rb"\\protlevel(\d{1,3})")
_INFO_RE = re.compile(rb"\{\\info(?![a-zA-Z])")
_HEX_RUN_RE = re.compile(rb"[0-9A-Fa-f](?<![0-9A-Za-z][0-9A-Fa-f])[0-9A-Fa-f \t\r\n\x0b\x0c]*")
_OBJECT_RE = re.compile(rb"\\object(?![a-zA-Z])")
_OBJTYPE_RE = re.compile(rb"\\(" + b"|".join(OBJECT_TYPES) + rb")(?![a-zA-Z])")
_OBJCLASS_RE = re.compile(rb"\\objclass(?![a-zA-Z])")
_OBJDATA_RE = re.compile(rb"\\objdata(?![a-zA-Z])(?:-?\d+)?")


@dataclass
class RtfObject:
    """One ``\\object`` group (or a stray ``\\objdata``), with what its data decoded to."""

    start: int
    end: int
    type: str | None = None
    objclass: str | None = None
    raw: bytes | None = None
    ole1: Ole1Object | None = None


@dataclass
class RtfScan:
    data: bytes
    deadline: Deadline
    words: Counter[bytes] = field(default_factory=Counter)
    codepage: int | None = None
    objects: list[RtfObject] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)

    @property
    def encoding(self) -> str:
        return f"cp{self.codepage}" if self.codepage else "cp1252"


def parse(data: bytes, deadline: Deadline) -> RtfScan:
    scan = RtfScan(data, deadline)
    scan.words = Counter(_WORDS_RE.findall(data))
    match = _ANSICPG_RE.search(data)
    scan.codepage = int(match.group(1)) if match else None
    if scan.words[b"object"] or scan.words[b"objdata"]:
        scan.objects = find_objects(scan)
    return scan


def find_objects(scan: RtfScan) -> list[RtfObject]:
    """Outermost ``\\object`` groups, then every ``\\objdata`` decoded and attached to its group."""
    data = scan.data
    objects: list[RtfObject] = []
    pos = 0
    while len(objects) < MAX_LIST:
        match = _OBJECT_RE.search(data, pos)
        if match is None:
            break
        end = group_end(data, match.end(), scan.deadline)
        obj = RtfObject(match.start(), end)
        kind = _OBJTYPE_RE.search(data, match.end(), end)
        obj.type = OBJECT_TYPES[kind.group(1)] if kind else None
        objclass = _OBJCLASS_RE.search(data, match.end(), end)
        if objclass:
            text = decode_text(
                data[objclass.end() : group_end(data, objclass.end(), limit=end)], scan.encoding
            )
            obj.objclass = clean_text(text.strip(), 256) or None
        objects.append(obj)
        pos = end
    steps_left = MAX_OBJDATA_TOKENS
    for count, match in enumerate(_OBJDATA_RE.finditer(data)):
        if count >= MAX_OBJDATA or steps_left <= 0:
            scan.anomalies.append("too many \\objdata (or tokens in them); the rest ignored")
            break
        scan.deadline.check()
        raw, end, steps = read_objdata(data, match.end(), scan.deadline, steps_left)
        steps_left -= steps
        container = next((o for o in objects if o.start <= match.start() < o.end), None)
        owner = container if container is not None and container.raw is None else None
        if owner is None:
            where = (
                "outside an \\object group" if container is None else "in an \\object with objdata already"
            )
            scan.anomalies.append(f"\\objdata at offset {match.start()} {where}")
            owner = RtfObject(match.start(), end, type=container.type if container else None)
            if len(objects) < MAX_LIST:
                objects.append(owner)
        owner.raw = raw
        owner.ole1 = ole1 = parse_ole1(raw)
        if ole1 is not None and ole1.native is not None and len(ole1.native) != ole1.native_size:
            scan.anomalies.append(
                f"\\objdata at offset {match.start()}: OLE1 native data truncated"
                f" ({len(ole1.native)} of {ole1.native_size} bytes)"
            )
        if owner.type is None and ole1 is not None:
            owner.type = {1: "OLE link", 2: "OLE embedded"}[ole1.format_id]
    return objects


# --------------------------------------------------------------------------- extractors


def _longest_hex_string(data: bytes) -> int:
    """Hex digits in the longest run starting at a word boundary (whitespace inside ignored)."""
    runs = _HEX_RUN_RE.findall(data)
    return max((len(run.translate(None, WHITESPACE)) for run in runs), default=0)


def _dos_stubs(scan: RtfScan, longest_hex: int) -> int:
    in_hex = 0
    if longest_hex >= 2 * len(DOS_STUBS[1]):
        lowered = scan.data.translate(None, WHITESPACE).lower()
        in_hex = sum(lowered.count(needle) for needle in _HEX_DOS_STUBS)
    in_objects = sum(o.raw.count(stub) for o in scan.objects if o.raw for stub in DOS_STUBS)
    return max(in_hex, in_objects)


def extract_rtf_info(scan: RtfScan, report: dict[str, Any]) -> None:
    data = scan.data
    header = _HEADER_RE.match(data)
    if header is None:
        scan.anomalies.append("no {\\rtf header")
    charset = _CHARSET_RE.search(data)
    languages: list[str] = []
    for pattern in _LANG_RES:
        match = pattern.search(data)
        name = language_name(int(match.group(1))) if match else None
        if name and name not in languages:
            languages.append(name)
    protlevel = _PROTLEVEL_RE.search(data)
    longest_hex = _longest_hex_string(data)
    words = scan.words
    properties: dict[str, Any] = {
        "custom_xml_data_properties": words[b"datastore"],
        "default_ansi_codepage": codepage_name(scan.codepage) if scan.codepage else None,
        "default_character_set": CHARACTER_SETS[charset.group(1)] if charset else None,
        "default_languages": languages,
        "dos_stubs": _dos_stubs(scan, longest_hex),
        "embedded_drawings": words[b"shp"] + words[b"do"],
        "embedded_pictures": words[b"pict"],
        "longest_hex_string": longest_hex,
        "non_ascii_characters": len(data.translate(None, bytes(range(128)))),
        "objects": [object_entry(obj) for obj in scan.objects[:MAX_LIST]],
        "read_only_protection": bool(
            words[b"readprot"] or words[b"readonlyrecommended"] or (protlevel and protlevel.group(1) == b"3")
        ),
        "rtf_header": header.group(1).decode("ascii") if header else "",
        "user_protection": bool(words[b"protusertbl"] or words[b"protstart"]),
    }
    info_match = _INFO_RE.search(data)
    summary: dict[str, Any] = {}
    if info_match:
        region = data[info_match.end() : group_end(data, info_match.end(), scan.deadline)]
        summary, exif = summary_info(region, scan.encoding)
        report["exiftool"] = exif
    report["rtf_info"] = {"document_properties": properties, "summary_info": summary}
    if words[b"objupdate"]:
        scan.anomalies.append("\\objupdate: object refreshed (loaded) when the document opens")


def object_entry(obj: RtfObject) -> dict[str, Any]:
    """VT's ``{class, type}``; class falls back to the OLE 1.0 header when ``\\objclass`` is absent."""
    ole1 = obj.ole1
    entry: dict[str, Any] = {
        "class": obj.objclass or (clean_text(ole1.class_name, 256) if ole1 and ole1.class_name else None),
        "type": obj.type or "unknown",
    }
    if ole1 is not None:
        entry["ole1_class"] = clean_text(ole1.class_name, 256)
        if ole1.native_size is not None:
            entry["native_data_size"] = ole1.native_size
    elif obj.raw is not None:
        entry["ole1_class"] = None
    return entry


def extract_exiftool(scan: RtfScan, report: dict[str, Any]) -> None:
    exif = {"FileType": "RTF", "FileTypeExtension": "rtf", "MIMEType": "text/rtf"}
    exif.update(report.get("exiftool", {}))
    report["exiftool"] = exif


def extract_children(scan: RtfScan, report: dict[str, Any]) -> None:
    children: list[Child] = []
    for index, obj in enumerate(scan.objects):
        if obj.raw is None or not obj.raw:
            continue
        if len(children) >= MAX_CHILDREN:
            scan.anomalies.append(f"more than {MAX_CHILDREN} embedded objects; the rest not extracted")
            break
        name, content = _child_content(index, obj)
        if len(content) > MAX_CHILD_SIZE:
            scan.anomalies.append(f"object {index}: larger than {MAX_CHILD_SIZE} bytes, not extracted")
            continue
        if content:
            children.append(Child(relationship="embedded_files", name=clean_text(name, 256), data=content))
    report["children"] = children


def _child_content(index: int, obj: RtfObject) -> tuple[str, bytes]:
    ole1 = obj.ole1
    if ole1 is None:
        return f"objdata_{index}.bin", obj.raw or b""
    if ole1.native is None:
        return "", b""  # a link carries no data
    if ole1.class_name.lower() == "package":
        package = parse_package(ole1.native)
        if package is not None:
            return package.filename or f"package_{index}.bin", package.data
    return f"{ole1.class_name or 'object'}_{index}.bin", ole1.native


def extract_tags(scan: RtfScan, report: dict[str, Any]) -> None:
    tags = ["rtf"]
    properties = report.get("rtf_info", {}).get("document_properties", {})
    for entry in properties.get("objects", []):
        tag = TYPE_TAGS.get(entry["type"])
        if tag and tag not in tags:
            tags.append(tag)
    if properties.get("dos_stubs"):
        tags.append("dos-stub")
    report["tags"] = tags


EXTRACTORS = (extract_rtf_info, extract_exiftool, extract_children, extract_tags)


def analyse(data: bytes, deadline: Deadline | None = None) -> dict[str, Any]:
    """Analyse an RTF document; never raises on hostile input (except :class:`AnalysisTimeout`)."""
    return analyse_scanned(data, deadline, parse, EXTRACTORS, "RTF", "rtf")
