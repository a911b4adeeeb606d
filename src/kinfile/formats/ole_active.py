"""Active content and payloads in OLE2 files: XLM macro sheets, DDE fields, encryption, embedded
objects (Ole10Native, Package, PowerPoint ExOleObjStg) and MSI cabinets.

All readers take bytes already read from the compound file (bounded by the caller) and never
raise on malformed input: they return what they found and append short anomaly strings.
"""

from __future__ import annotations

import logging
import re
import struct
import zlib
from typing import Any

from kinfile.formats.common import NO_DEADLINE, Child, Deadline, clean_text

logger = logging.getLogger(__name__)

MAX_ITEMS = 256
MAX_CHILD_SIZE = 64 * 1024 * 1024
MAX_BIFF_RECORDS = 200_000

# ---------------------------------------------------------------------------- Excel 4 (XLM)
BIFF_BOF, BIFF_EOF, BIFF_BOUNDSHEET, BIFF_NAME, BIFF_FILEPASS = 0x0809, 0x000A, 0x0085, 0x0018, 0x002F
SHEET_STATES = {0: "visible", 1: "hidden", 2: "very hidden"}
SHEET_TYPES = {0: "worksheet", 1: "macro sheet", 2: "chart", 6: "vba module"}
BUILTIN_NAMES = {0x01: "Auto_Open", 0x02: "Auto_Close"}


def _biff_string(body: bytes, offset: int, cch: int, biff8: bool) -> str:
    """A BIFF8 string body (flags byte then chars) or a BIFF5 8-bit string at ``offset``."""
    if offset >= len(body):
        return ""
    if not biff8:
        return clean_text(body[offset : offset + cch].decode("latin-1"), 256)
    high = body[offset] & 1
    raw = body[offset + 1 : offset + 1 + cch * (2 if high else 1)]
    return clean_text(raw.decode("utf-16-le" if high else "latin-1", "replace"), 256)


def scan_workbook_globals(workbook: bytes, deadline: Deadline | None = None) -> dict[str, Any]:
    """Walk the workbook-globals substream: sheets (BOUNDSHEET), defined names, FILEPASS."""
    deadline = deadline or NO_DEADLINE
    sheets: list[dict[str, Any]] = []
    names: list[str] = []
    filepass: int | None = None
    biff8 = True
    pos, count, size = 0, 0, len(workbook)
    while pos + 4 <= size and count < MAX_BIFF_RECORDS:
        count += 1
        if count % 4096 == 0:
            deadline.check()
        rtype, rlen = struct.unpack_from("<HH", workbook, pos)
        body = workbook[pos + 4 : pos + 4 + rlen]
        pos += 4 + rlen
        if rtype == BIFF_EOF:
            break
        if rtype == BIFF_BOF and count == 1 and len(body) >= 2:
            biff8 = struct.unpack_from("<H", body)[0] >= 0x0600
        if rtype == BIFF_FILEPASS and len(body) >= 2:
            filepass = struct.unpack_from("<H", body)[0]
        elif rtype == BIFF_BOUNDSHEET and len(body) >= 8 and len(sheets) < MAX_ITEMS:
            state, kind, cch = body[4] & 3, body[5], body[6]
            name = _biff_string(body, 7, cch, biff8) if filepass is None else ""
            sheets.append(
                {
                    "name": name,
                    "type": SHEET_TYPES.get(kind, f"unknown ({kind})"),
                    "state": SHEET_STATES.get(state, "unknown"),
                }
            )
        elif rtype == BIFF_NAME and len(body) >= 15 and len(names) < MAX_ITEMS and filepass is None:
            flags, cch = struct.unpack_from("<H", body)[0], body[3]
            if flags & 0x0020 and cch >= 1:  # fBuiltin: a one-character built-in name code
                code = body[15] if biff8 and len(body) > 15 else body[14]
                names.append(BUILTIN_NAMES.get(code, f"builtin-{code:#x}"))
            else:
                names.append(_biff_string(body, 14, cch, biff8))
    return {"sheets": sheets, "names": names, "filepass": filepass}


def xlm_report(globals_info: dict[str, Any]) -> dict[str, Any] | None:
    """``xlm_macros`` summary when the workbook has Excel 4 macro sheets, else ``None``."""
    macro_sheets = [s for s in globals_info["sheets"] if s["type"] == "macro sheet"]
    if not macro_sheets:
        return None
    auto = sorted({n for n in globals_info["names"] if n.lower().startswith(("auto_open", "auto_close"))})
    return {"sheets": macro_sheets, "auto_exec": auto}


# ---------------------------------------------------------------------------- DDE
_DDE_FIELD = re.compile(r"\x13\s*(DDEAUTO|DDE)\b([^\x13\x14\x15]{0,512})", re.IGNORECASE)


def scan_dde_fields(word_document: bytes) -> list[str]:
    """DDE / DDEAUTO field instructions in a WordDocument stream (8-bit and UTF-16 text)."""
    found: list[str] = []
    for text in (word_document.decode("latin-1"), word_document.decode("utf-16-le", "replace")):
        for match in _DDE_FIELD.finditer(text):
            instruction = clean_text(f"{match.group(1)}{match.group(2)}".strip(), 512)
            if instruction not in found:
                found.append(instruction)
            if len(found) >= MAX_ITEMS:
                return found
    return found


# ---------------------------------------------------------------------------- encryption
ENCRYPTION_STREAMS = ("EncryptionInfo", "EncryptedPackage", "EncryptedSummary")


def word_fib_flags(word_document: bytes) -> dict[str, bool]:
    if len(word_document) < 12 or word_document[:2] != b"\xec\xa5":
        return {}
    flags = struct.unpack_from("<H", word_document, 0x0A)[0]
    return {
        "template": bool(flags & 0x0001),
        "encrypted": bool(flags & 0x0100),
        "obfuscated": bool(flags & 0x8000),
        "read_only_recommended": bool(flags & 0x0400),
    }


def encryption_method(streams: set[str], fib: dict[str, bool], filepass: int | None) -> str | None:
    """A short description of the encryption in use, ``None`` when the file is not encrypted."""
    if "encryptedpackage" in streams or "encryptioninfo" in streams:
        return "ooxml-encrypted-package"
    if fib.get("encrypted"):
        return "word-xor" if fib.get("obfuscated") else "word-rc4"
    if filepass is not None:
        return "excel-xor" if filepass == 0 else "excel-rc4"
    if "encryptedsummary" in streams:
        return "powerpoint-cryptoapi"
    return None


# ---------------------------------------------------------------------------- embedded objects
def parse_ole10native(blob: bytes) -> tuple[str, bytes] | None:
    """``(filename, payload)`` of an ``\\x01Ole10Native`` stream ([MS-OLEDS] 2.3.6), if well formed."""
    try:
        from oletools.oleobj import OleNativeStream

        native = OleNativeStream(bindata=blob)
    except Exception:  # noqa: BLE001 - malformed structure, fall back to raw payload
        return None
    payload = native.data if isinstance(native.data, bytes | bytearray) else b""
    name = clean_text(native.filename or "", 260).replace("\\", "/").rsplit("/", 1)[-1]
    return name or "ole10native.bin", bytes(payload[:MAX_CHILD_SIZE])


PPT_EXOLEOBJSTG = re.compile(rb"[\x00\x10]\x00\x11\x10", re.DOTALL)


def ppt_embedded_storages(stream: bytes, deadline: Deadline | None = None) -> list[tuple[int, bytes]]:
    """OLE storages stored in PowerPoint ExOleObjStg records (zlib-compressed or raw)."""
    deadline = deadline or NO_DEADLINE
    found: list[tuple[int, bytes]] = []
    for match in PPT_EXOLEOBJSTG.finditer(stream):
        deadline.check()
        start = match.start()
        if start + 8 > len(stream):
            break
        length = struct.unpack_from("<I", stream, start + 4)[0]
        body = stream[start + 8 : start + 8 + min(length, MAX_CHILD_SIZE)]
        if stream[start] == 0x10 and len(body) > 4:  # compressed: u32 size then zlib data
            want = struct.unpack_from("<I", body)[0]
            try:
                inflater = zlib.decompressobj()
                body = inflater.decompress(body[4:], min(want, MAX_CHILD_SIZE))
            except zlib.error:
                continue
        if body[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            found.append((start, body))
        if len(found) >= MAX_ITEMS:
            break
    return found


# ---------------------------------------------------------------------------- MSI stream names
def decode_msi_name(name: str) -> str:
    """Decode an MSI stream name (base-64-like packing in U+3800..U+4840, see msitools)."""

    def char(value: int) -> str:
        if value < 10:
            return chr(ord("0") + value)
        if value < 36:
            return chr(ord("A") + value - 10)
        if value < 62:
            return chr(ord("a") + value - 36)
        return "." if value == 62 else "_"

    out = []
    for ch in name:
        code = ord(ch)
        if 0x3800 <= code < 0x4800:
            code -= 0x3800
            out.append(char(code & 0x3F) + char(code >> 6))
        elif 0x4800 <= code < 0x4840:
            out.append(char(code - 0x4800))
        elif code == 0x4840:
            out.append("!")
        else:
            out.append(ch)
    return "".join(out)


def child(name: str, data: bytes) -> Child:
    return {"relationship": "embedded_files", "name": clean_text(name, 260), "data": data}
