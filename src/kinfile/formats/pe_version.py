"""VS_VERSIONINFO (RT_VERSION) parser: fixed file info and the StringFileInfo strings.

String values are read like pefile does (at most ``wValueLength`` UTF-16 characters, stopping at
the first NUL), so they equal pefile's ``FileInfo`` ``StringTable`` entries.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field

from kinfile.formats.common import clean_text

logger = logging.getLogger(__name__)

MAX_BLOCKS = 512
FIXED_SIGNATURE = 0xFEEF04BD


@dataclass
class VersionInfo:
    strings: dict[str, str] = field(default_factory=dict)
    fixed: dict[str, int] = field(default_factory=dict)
    string_table_keys: list[str] = field(default_factory=list)
    translations: list[tuple[int, int]] = field(default_factory=list)


def _align4(x: int) -> int:
    return (x + 3) & ~3


def _utf16z(data: bytes, pos: int, end: int, max_chars: int | None = None) -> tuple[str, int]:
    """Read a NUL-terminated UTF-16LE string; return it and the offset just after the NUL."""
    limit = end if max_chars is None else min(end, pos + 2 * max_chars)
    p = pos
    while p + 1 < limit:
        if data[p] == 0 and data[p + 1] == 0:
            return data[pos:p].decode("utf-16-le", "replace"), p + 2
        p += 2
    return data[pos:p].decode("utf-16-le", "replace"), p + 2


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_BLOCKS

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


def _block(data: bytes, pos: int, end: int) -> tuple[int, int, int, str, int, int] | None:
    """Header of one version block: (length, value_length, type, key, value_offset, block_end)."""
    if pos + 6 > end:
        return None
    length, value_length, vtype = struct.unpack_from("<HHH", data, pos)
    if length < 6:
        return None
    block_end = min(pos + length, end)
    key, after_key = _utf16z(data, pos + 6, block_end)
    return length, value_length, vtype, key, _align4(after_key), block_end


def parse_version_info(data: bytes) -> VersionInfo | None:
    """Parse an RT_VERSION resource; None when it is not a VS_VERSIONINFO block."""
    budget = _Budget()
    root = _block(data, 0, len(data))
    if root is None or not root[3].startswith("VS_VERSION_INFO"):
        return None
    _, value_length, _, _, value_off, root_end = root
    info = VersionInfo()
    if value_length >= 52 and value_off + 52 <= len(data):
        f = struct.unpack_from("<13I", data, value_off)
        if f[0] == FIXED_SIGNATURE:
            info.fixed = {
                "FileVersionMS": f[2],
                "FileVersionLS": f[3],
                "ProductVersionMS": f[4],
                "ProductVersionLS": f[5],
                "FileFlagsMask": f[6],
                "FileFlags": f[7],
                "FileOS": f[8],
                "FileType": f[9],
                "FileSubtype": f[10],
            }
    pos = _align4(value_off + value_length)
    while pos < root_end and budget.take():
        child = _block(data, pos, root_end)
        if child is None:
            break
        length, _, _, key, child_value, child_end = child
        if key.startswith("StringFileInfo"):
            _string_file_info(data, child_value, child_end, info, budget)
        elif key.startswith("VarFileInfo"):
            _var_file_info(data, child_value, child_end, info, budget)
        pos = _align4(pos + length)
    return info


def _string_file_info(data: bytes, pos: int, end: int, info: VersionInfo, budget: _Budget) -> None:
    while pos < end and budget.take():
        table = _block(data, pos, end)
        if table is None:
            return
        length, _, _, table_key, entry_pos, table_end = table
        info.string_table_keys.append(table_key)
        while entry_pos < table_end and budget.take():
            entry = _block(data, entry_pos, table_end)
            if entry is None:
                break
            elen, value_length, _, key, value_off, entry_end = entry
            value, _ = _utf16z(data, value_off, entry_end, value_length) if value_length else ("", 0)
            key = clean_text(key, 256)
            if key and key not in info.strings:
                info.strings[key] = clean_text(value, 4096)
            entry_pos = _align4(entry_pos + elen)
        pos = _align4(pos + length)


def _var_file_info(data: bytes, pos: int, end: int, info: VersionInfo, budget: _Budget) -> None:
    while pos < end and budget.take():
        var = _block(data, pos, end)
        if var is None:
            return
        length, value_length, _, key, value_off, _ = var
        if key == "Translation":
            for i in range(min(value_length // 4, 64)):
                if value_off + 4 * i + 4 <= end:
                    info.translations.append(struct.unpack_from("<HH", data, value_off + 4 * i))
        pos = _align4(pos + length)


def version_string(ms: int, ls: int) -> str:
    return f"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}"
