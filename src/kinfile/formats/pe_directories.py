"""Data directories read with our own bounded parsers: debug entries and a fallback import reader.

Imports normally come from LIEF (pefile-compatible imphash via ``IMPHASH_MODE.PEFILE``); the
fallback here is used when LIEF returns no imports although the import directory is set (tiny or
unusual files), and computes the imphash with pefile's algorithm.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import struct
from typing import Any

from kinfile.formats.common import NO_DEADLINE, Deadline, clean_text
from kinfile.formats.pe_headers import PeHeaders

logger = logging.getLogger(__name__)

IMPORT_DIR = 1
DEBUG_DIR = 6
MAX_LIST = 256
MAX_DESCRIPTORS = 1024
MAX_THUNKS = 16384

DEBUG_TYPES = {
    0: "UNKNOWN",
    1: "COFF",
    2: "CODEVIEW",
    3: "FPO",
    4: "MISC",
    5: "EXCEPTION",
    6: "FIXUP",
    7: "OMAP_TO_SRC",
    8: "OMAP_FROM_SRC",
    9: "BORLAND",
    10: "RESERVED10",
    11: "CLSID",
    12: "VC_FEATURE",
    13: "POGO",
    14: "ILTCG",
    15: "MPX",
    16: "REPRO",
    17: "EMBEDDED_PORTABLE_PDB",
    19: "PDBCHECKSUM",
    20: "EX_DLLCHARACTERISTICS",
}


def debug_time(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%a %b %d %H:%M:%S %Y")


def _codeview(raw: bytes) -> dict[str, Any] | None:
    if raw[:4] == b"RSDS" and len(raw) >= 24:
        d1, d2, d3 = struct.unpack_from("<IHH", raw, 4)
        d4 = raw[12:20].hex()
        (age,) = struct.unpack_from("<I", raw, 20)
        name = raw[24:].split(b"\0", 1)[0]
        return {
            "signature": "RSDS",
            "guid": f"{d1:08x}-{d2:04x}-{d3:04x}-{d4[:4]}-{d4[4:]}",
            "age": age,
            "name": clean_text(name, 1024),
        }
    if raw[:4] == b"NB10" and len(raw) >= 16:
        offset, ts, age = struct.unpack_from("<III", raw, 4)
        return {
            "signature": "NB10",
            "offset": offset,
            "timestamp": debug_time(ts),
            "age": age,
            "name": clean_text(raw[16:].split(b"\0", 1)[0], 1024),
        }
    return None


def debug_entries(hdr: PeHeaders, deadline: Deadline = NO_DEADLINE) -> list[dict[str, Any]]:
    rva, size = hdr.directory(DEBUG_DIR)
    if rva == 0 or size == 0:
        return []
    table = hdr.read_rva(rva, min(size, 28 * MAX_LIST))
    out = []
    for i in range(len(table) // 28):
        deadline.check()
        _, ts, _, _, dtype, dsize, _, dptr = struct.unpack_from("<IIHHIIII", table, 28 * i)
        entry: dict[str, Any] = {
            "type": dtype,
            "type_str": f"IMAGE_DEBUG_TYPE_{DEBUG_TYPES.get(dtype, 'UNKNOWN')}",
            "offset": dptr,
            "size": dsize,
            "timestamp": debug_time(ts),
        }
        if dtype == 2 and dptr < len(hdr.data):
            cv = _codeview(hdr.data[dptr : dptr + min(dsize, 4096)])
            if cv:
                entry["codeview"] = cv
        elif dtype == 10 and dptr + 4 <= len(hdr.data):
            entry["reserved10"] = {"value": hdr.data[dptr : dptr + 4].hex()}
        out.append(entry)
    return out


def _string_at(hdr: PeHeaders, rva: int, limit: int = 512) -> bytes:
    raw = hdr.read_rva(rva, limit)
    return raw.split(b"\0", 1)[0]


def fallback_imports(hdr: PeHeaders, deadline: Deadline = NO_DEADLINE) -> list[tuple[str, list[str | int]]]:
    """Minimal pefile-like import reader: [(dll name, [function name or ordinal])]."""
    rva, size = hdr.directory(IMPORT_DIR)
    if rva == 0:
        return []
    ptr_size, ord_flag = (8, 1 << 63) if hdr.is_64 else (4, 1 << 31)
    out: list[tuple[str, list[str | int]]] = []
    for i in range(MAX_DESCRIPTORS):
        desc = hdr.read_rva(rva + 20 * i, 20)
        if len(desc) < 20 or desc == b"\0" * 20:
            break
        oft, _, _, name_rva, ft = struct.unpack("<IIIII", desc)
        if name_rva == 0:
            break
        dll = _string_at(hdr, name_rva, 256).decode("ascii", "replace")
        funcs: list[str | int] = []
        thunk_rva = oft or ft
        for j in range(MAX_THUNKS):
            if j % 1024 == 0:
                deadline.check()
            raw = hdr.read_rva(thunk_rva + ptr_size * j, ptr_size)
            if len(raw) < ptr_size:
                break
            val = int.from_bytes(raw, "little")
            if val == 0:
                break
            if val & ord_flag:
                funcs.append(val & 0xFFFF)
            else:
                funcs.append(_string_at(hdr, (val & 0x7FFFFFFF) + 2, 512).decode("ascii", "replace"))
        out.append((dll, funcs))
    return out


def ordinal_name(dll: str, ordinal: int) -> str:
    """pefile's ordlookup naming (``ws2_32``/``wsock32``/``oleaut32`` tables, else ``ord<N>``)."""
    try:
        import ordlookup

        name = ordlookup.ordLookup(dll.lower().encode(), ordinal, make_name=True)
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # pragma: no cover - ordlookup ships with pefile
        return f"ord{ordinal}"


def imphash(imports: list[tuple[str, list[str | int]]]) -> str:
    """pefile's ``get_imphash`` over already-resolved imports."""
    parts = []
    for dll, funcs in imports:
        lib = dll.lower()
        base, _, ext = lib.rpartition(".")
        if base and ext in ("ocx", "sys", "dll"):
            lib = base
        for f in funcs:
            name = ordinal_name(dll, f) if isinstance(f, int) else f
            if name:
                parts.append(f"{lib}.{name.lower()}")
    return hashlib.md5(",".join(parts).encode()).hexdigest() if parts else ""
