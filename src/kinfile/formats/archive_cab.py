"""Microsoft Cabinet (``MSCF``) directory parser with stored/MSZIP folder extraction.

Layout (MS-CAB): a ``CFHEADER`` (36 bytes, optional reserve and chained-cabinet names), then
``cFolders`` ``CFFOLDER`` records (first ``CFDATA`` offset, block count, compression type), the
``CFFILE`` records at ``coffFiles`` (size, offset in the uncompressed folder, folder index, DOS
date/time, attributes, name), and the ``CFDATA`` blocks. MSZIP blocks are ``"CK"`` + a raw
deflate stream whose dictionary is the previous block's output. Quantum and LZX folders are
listed, not extracted.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterator

from kinfile.formats.archive_readers import (
    MAX_CAB_FOLDER_BYTES,
    MAX_MEMBERS_LISTED,
    Member,
    _bytes_chunks,
    _dos_datetime,
)

logger = logging.getLogger(__name__)

COMPRESSION = {0: "none", 1: "MSZIP", 2: "Quantum", 3: "LZX"}
RESERVE_PRESENT, PREV_CABINET, NEXT_CABINET = 0x4, 0x1, 0x2
NAME_IS_UTF8 = 0x80
MAX_RATIO = 1032
"""Deflate's own bound: a folder expanding more than this per compressed byte is corrupt."""


class CabError(ValueError):
    """A cabinet header that cannot be walked."""


def _cstring(data: bytes, pos: int, limit: int = 1024) -> tuple[bytes, int]:
    end = data.find(b"\x00", pos, pos + limit)
    if end < 0:
        raise CabError("unterminated string")
    return data[pos:end], end + 1


def _folder_bytes(
    data: bytes, start: int, blocks: int, kind: int, data_reserve: int, anomalies: list[str]
) -> bytes:
    out = bytearray()
    pos = start
    history = b""
    consumed = 0
    for index in range(blocks):
        if pos + 8 > len(data):
            anomalies.append(f"cab: CFDATA block {index} beyond the end of the file")
            break
        _checksum, packed, _unpacked = struct.unpack_from("<IHH", data, pos)
        payload = data[pos + 8 + data_reserve : pos + 8 + data_reserve + packed]
        pos += 8 + data_reserve + packed
        consumed += packed
        if kind == 0:
            block = payload
        else:
            if payload[:2] != b"CK":
                anomalies.append(f"cab: MSZIP block {index} without CK signature")
                break
            decompressor = zlib.decompressobj(-15, zdict=history) if history else zlib.decompressobj(-15)
            block = decompressor.decompress(payload[2:], 65536)
            history = (history + block)[-32768:]
        out += block
        if len(out) > MAX_CAB_FOLDER_BYTES or len(out) > MAX_RATIO * max(consumed, 1):
            anomalies.append("cab folder expands beyond the extraction limits")
            break
    return bytes(out)


def read_cab(data: bytes, anomalies: list[str]) -> Iterator[Member]:
    if len(data) < 36:
        raise CabError("truncated CFHEADER")
    (
        _sig,
        _r1,
        _size,
        _r2,
        files_offset,
        _r3,
        _minor,
        _major,
        folder_count,
        file_count,
        flags,
        _set,
        _index,
    ) = struct.unpack_from("<4sIIIIIBBHHHHH", data, 0)
    pos = 36
    header_reserve = folder_reserve = data_reserve = 0
    if flags & RESERVE_PRESENT:
        header_reserve, folder_reserve, data_reserve = struct.unpack_from("<HBB", data, pos)
        pos += 4 + header_reserve
    for flag in (PREV_CABINET, NEXT_CABINET):
        if flags & flag:
            for _ in range(2):
                _, pos = _cstring(data, pos)
    folders = []
    for _ in range(folder_count):
        if pos + 8 > len(data):
            anomalies.append("cab: folder table truncated")
            break
        folders.append(struct.unpack_from("<IHH", data, pos))
        pos += 8 + folder_reserve
    cache: dict[int, bytes] = {}

    def folder_data(index: int) -> bytes | None:
        if index not in cache:
            start, blocks, compression = folders[index]
            kind = compression & 0xF
            if kind not in (0, 1):
                anomalies.append(f"cab: {COMPRESSION.get(kind, kind)} folder not extracted")
                cache[index] = b""
            else:
                cache[index] = _folder_bytes(data, start, blocks, kind, data_reserve, anomalies)
        return cache[index]

    pos = files_offset
    for _ in range(min(file_count, MAX_MEMBERS_LISTED)):
        if pos + 16 > len(data):
            anomalies.append("cab: file table truncated")
            return
        size, offset, folder, date, time, attributes = struct.unpack_from("<IIHHHH", data, pos)
        raw_name, pos = _cstring(data, pos + 16)
        name = raw_name.decode("utf-8" if attributes & NAME_IS_UTF8 else "cp437", "replace")
        chunks = None
        if folder < len(folders):

            def get(folder: int = folder, offset: int = offset, size: int = size) -> bytes | None:
                blob = folder_data(folder)
                return blob[offset : offset + size] if blob is not None else None

            chunks = _bytes_chunks(get)
        else:
            anomalies.append(f"cab: {name!r} continues in another cabinet")
        yield Member(name=name.replace("\\", "/"), size=size, mtime=_dos_datetime(date, time), chunks=chunks)
