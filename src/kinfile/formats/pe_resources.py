"""PE resource tree walker: ``resource_details``, ``resource_langs``, ``resource_types``, children.

The walk is iterative and bounded: at most :data:`MAX_RESOURCE_LEAVES` leaves, directory offsets
are visited once (no loops), depth is limited to the three standard levels (type, name, language)
and the deadline is checked per directory. Resource data is read with pefile's ``get_data``
semantics so the ``sha256`` values equal pefile's.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Any

from kinfile.formats.common import NO_DEADLINE, Child, Deadline
from kinfile.formats.pe_headers import PeHeaders
from kinfile.formats.pe_stats import byte_stats

logger = logging.getLogger(__name__)

RESOURCE_DIR = 2
MAX_RESOURCE_LEAVES = 4096
MAX_DETAILS = 256
MAX_CHILDREN = 32
MIN_CHILD_SIZE = 64

RESOURCE_TYPES = {
    1: "RT_CURSOR",
    2: "RT_BITMAP",
    3: "RT_ICON",
    4: "RT_MENU",
    5: "RT_DIALOG",
    6: "RT_STRING",
    7: "RT_FONTDIR",
    8: "RT_FONT",
    9: "RT_ACCELERATOR",
    10: "RT_RCDATA",
    11: "RT_MESSAGETABLE",
    12: "RT_GROUP_CURSOR",
    14: "RT_GROUP_ICON",
    16: "RT_VERSION",
    17: "RT_DLGINCLUDE",
    19: "RT_PLUGPLAY",
    20: "RT_VXD",
    21: "RT_ANICURSOR",
    22: "RT_ANIICON",
    23: "RT_HTML",
    24: "RT_MANIFEST",
}
# resource types never reported as children even when their bytes look like a file
NOT_CHILD_TYPES = {
    "RT_ICON",
    "RT_GROUP_ICON",
    "RT_CURSOR",
    "RT_GROUP_CURSOR",
    "RT_STRING",
    "RT_VERSION",
    "RT_MANIFEST",
    "RT_DIALOG",
    "RT_MENU",
    "RT_ACCELERATOR",
    "RT_MESSAGETABLE",
    "RT_FONTDIR",
}

# (magic prefix, VT-like filetype, is a file in its own right)
_MAGICS: tuple[tuple[bytes, str, bool], ...] = (
    (b"\0\0\1\0", "ICO", False),
    (b"\x89PNG\r\n\x1a\n", "PNG", False),
    (b"GIF8", "GIF", False),
    (b"\xff\xd8\xff", "JPG", False),
    (b"PK\x03\x04", "ZIP", True),
    (b"7z\xbc\xaf\x27\x1c", "7ZIP", True),
    (b"MSCF", "CAB", True),
    (b"Rar!\x1a\x07", "RAR", True),
    (b"\x1f\x8b\x08", "GZIP", True),
    (b"%PDF-", "PDF", True),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE2", True),
    (b"{\\rtf", "RTF", True),
    (b"#!", "Shell script", True),
    (b"MZ", "Win32 EXE", True),
)


def sniff(data: bytes) -> tuple[str, bool]:
    """Return ``(filetype, is_standalone_file)`` for a resource or overlay blob."""
    for magic, name, standalone in _MAGICS:
        if data.startswith(magic):
            if magic == b"MZ":
                return _sniff_mz(data)
            return name, standalone
    head = data[:256].lstrip(b"\xef\xbb\xbf")
    if head.startswith(b"<?xml") or head.startswith(b"<assembly"):
        return "XML", False
    if head.startswith(b"<html") or head.startswith(b"<!DOCTYPE"):
        return "HTML", False
    return "unknown", False


def _sniff_mz(data: bytes) -> tuple[str, bool]:
    if len(data) >= 0x40:
        (lfanew,) = struct.unpack_from("<I", data, 0x3C)
        if data[lfanew : lfanew + 4] == b"PE\0\0":
            return "Win32 EXE", True
    return "DOS EXE", len(data) >= 512


@dataclass
class ResourceLeaf:
    type_name: str
    name: str
    lang_id: int
    rva: int
    size: int
    data: bytes


def language_name(lang_id: int) -> str:
    """VirusTotal's language label (``ENGLISH US``, ``NEUTRAL``, ``CHINESE SIMPLIFIED``)."""
    try:
        from pefile import LANG, get_sublang_name_for_lang
    except Exception:  # pragma: no cover - pefile is a declared dependency
        return f"0x{lang_id:04x}"
    lang = lang_id & 0x3FF
    sub = lang_id >> 10
    lang_name = LANG.get(lang)
    if not isinstance(lang_name, str):
        return "UNKNOWN"
    short_lang = lang_name.replace("LANG_", "", 1)
    sub_name = get_sublang_name_for_lang(lang, sub)
    short_sub = sub_name.replace("SUBLANG_", "", 1) if isinstance(sub_name, str) else "UNKNOWN"
    if short_sub.startswith(short_lang):
        return short_sub.replace("_", " ")
    return f"{short_lang} {short_sub}".replace("_", " ")


def _read_name(data: bytes, base: int, offset: int) -> str:
    pos = base + offset
    if pos + 2 > len(data):
        return "*invalid*"
    (length,) = struct.unpack_from("<H", data, pos)
    raw = data[pos + 2 : pos + 2 + 2 * min(length, 512)]
    return raw.decode("utf-16-le", "replace")


def walk_resources(hdr: PeHeaders, deadline: Deadline = NO_DEADLINE) -> tuple[list[ResourceLeaf], list[str]]:
    """Return the resource leaves (type, name, language, data) in tree order, and anomalies."""
    rva, size = hdr.directory(RESOURCE_DIR)
    anomalies: list[str] = []
    if rva == 0 or size == 0:
        return [], anomalies
    base = hdr.rva_to_offset(rva)
    data = hdr.data
    if base is None or base + 16 > len(data):
        return [], ["resource directory outside the file"]
    leaves: list[ResourceLeaf] = []
    visited: set[int] = set()
    budget = max(4 * len(data), 16 << 20)  # bytes of resource data we agree to copy and hash
    # stack of (directory offset relative to base, depth, path)
    stack: list[tuple[int, int, tuple[str, ...], int]] = [(0, 0, (), 0)]
    while stack:
        deadline.check()
        rel, depth, path, _ = stack.pop()
        pos = base + rel
        if rel in visited or pos + 16 > len(data):
            if rel in visited:
                anomalies.append("resource directory loop")
            continue
        visited.add(rel)
        n_named, n_id = struct.unpack_from("<HH", data, pos + 12)
        count = n_named + n_id
        max_entries = max(0, (len(data) - pos - 16) // 8)
        if count > max_entries:
            anomalies.append(f"resource directory claims {count} entries, room for {max_entries}")
            count = max_entries
        children = []
        for i in range(count):
            name_field, target = struct.unpack_from("<II", data, pos + 16 + 8 * i)
            if name_field & 0x80000000:
                label = _read_name(data, base, name_field & 0x7FFFFFFF)
                ident = 0
            else:
                ident = name_field & 0xFFFF
                label = RESOURCE_TYPES.get(ident, str(ident)) if depth == 0 else str(ident)
            children.append((label, ident, target))
        subdirs = []
        for label, ident, target in children:
            if target & 0x80000000:
                if depth >= 2:
                    anomalies.append("resource tree deeper than 3 levels")
                    continue
                subdirs.append((target & 0x7FFFFFFF, depth + 1, path + (label,), ident))
                continue
            entry_pos = base + target
            if entry_pos + 16 > len(data):
                anomalies.append("resource data entry outside the file")
                continue
            d_rva, d_size = struct.unpack_from("<II", data, entry_pos)
            if len(leaves) >= MAX_RESOURCE_LEAVES:
                anomalies.append(f"more than {MAX_RESOURCE_LEAVES} resources, truncated")
                return leaves, anomalies
            full = path + (label,)
            type_name = full[0]
            name = full[1] if len(full) > 1 else ""
            lang_id = ident if len(full) >= 3 else 0
            blob = hdr.read_rva(d_rva, d_size) if budget > 0 else b""
            budget -= len(blob)
            if budget < 0:
                anomalies.append("resource data larger than the byte budget, contents skipped")
                blob, budget = b"", 0
            leaves.append(ResourceLeaf(type_name, name, lang_id, d_rva, d_size, blob))
        stack.extend(reversed(subdirs))
    return leaves, anomalies


def resource_report(leaves: list[ResourceLeaf], deadline: Deadline = NO_DEADLINE) -> dict[str, Any]:
    """``resource_details`` (first 256), ``resource_langs`` and ``resource_types`` counters."""
    details: list[dict[str, Any]] = []
    langs: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for leaf in leaves:
        lang = language_name(leaf.lang_id)
        langs[lang] += 1
        types[leaf.type_name] += 1
        if len(details) < MAX_DETAILS:
            deadline.check()
            ent, c2 = byte_stats(leaf.data)
            details.append(
                {
                    "type": leaf.type_name,
                    "lang": lang,
                    "sha256": hashlib.sha256(leaf.data).hexdigest(),
                    "entropy": ent,
                    "chi2": c2,
                    "filetype": sniff(leaf.data)[0],
                }
            )
    out: dict[str, Any] = {}
    if details:
        out["resource_details"] = details
        out["resource_langs"] = dict(langs)
        out["resource_types"] = dict(types)
    return out


def resource_children(leaves: list[ResourceLeaf]) -> list[Child]:
    """Resources whose content is a file in its own right (``pe_resource_children``)."""
    children: list[Child] = []
    seen: set[str] = set()
    for leaf in leaves:
        if leaf.type_name in NOT_CHILD_TYPES or len(leaf.data) < MIN_CHILD_SIZE:
            continue
        filetype, standalone = sniff(leaf.data)
        if not standalone:
            continue
        digest = hashlib.sha256(leaf.data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        children.append(
            Child(
                relationship="pe_resource_children",
                name=f"{leaf.type_name}/{leaf.name}/{leaf.lang_id}",
                data=leaf.data,
            )
        )
        if len(children) >= MAX_CHILDREN:
            break
    return children
