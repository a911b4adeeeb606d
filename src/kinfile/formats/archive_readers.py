"""Member listers for the archive formats :mod:`kinfile.formats.archive` understands.

Each ``read_<format>(data, anomalies)`` yields :class:`Member` records in archive order. A
member's ``chunks(size)`` yields its decompressed bytes in pieces of at most ``size`` bytes; the
caller (``archive.py``) enforces every size, ratio and count limit while it pulls them, so no
reader here ever materialises an unbounded member. zip, tar, gzip, bzip2, xz/lzma and cpio use
the standard library; CAB is parsed here (MSZIP and stored folders are extracted); 7z and RAR use
``py7zr`` / ``rarfile`` when installed (imported lazily; without them the type is still reported).
"""

from __future__ import annotations

import bz2
import io
import logging
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

logger = logging.getLogger(__name__)

Chunks = Callable[[int], Iterator[bytes]]

MAGICS = (
    (0, b"PK\x03\x04", "ZIP"),
    (0, b"PK\x05\x06", "ZIP"),
    (0, b"PK\x07\x08", "ZIP"),
    (0, b"\x1f\x8b", "GZIP"),
    (0, b"BZh", "BZIP2"),
    (0, b"\xfd7zXZ\x00", "XZ"),
    (0, b"\x5d\x00\x00", "LZMA"),
    (0, b"7z\xbc\xaf\x27\x1c", "7ZIP"),
    (0, b"MSCF\x00\x00\x00\x00", "CAB"),
    (0, b"Rar!\x1a\x07", "RAR"),
    (0, b"070701", "CPIO"),
    (0, b"070702", "CPIO"),
    (0, b"070707", "CPIO"),
    (257, b"ustar", "TAR"),
)
MAX_MEMBERS_LISTED = 100_000
"""Members listed (counted in ``bundle_info``) at most; children are capped far lower."""
MAX_CAB_FOLDER_BYTES = 256 * 1024 * 1024
"""A CAB folder, or a 7z archive's selected members, decompressed up to this many bytes."""
MAX_7Z_MEMBER = 100 * 1024 * 1024
"""7z members declared larger are not decoded (``archive.MAX_MEMBER_BYTES`` refuses them anyway)."""
MAX_7Z_EXTRACTED = 1000
"""7z members decoded at most (py7zr decodes the selected members in one pass)."""


@dataclass
class Member:
    name: str
    size: int | None = None
    compressed_size: int | None = None
    mtime: datetime | None = None
    is_dir: bool = False
    encrypted: bool = False
    chunks: Chunks | None = None


def detect(data: bytes) -> str | None:
    """The archive type by magic bytes (``"ZIP"``, ``"TAR"``, ``"GZIP"``…), or ``None``."""
    for offset, magic, kind in MAGICS:
        if data[offset : offset + len(magic)] == magic:
            return kind
    if len(data) >= 512 and _tar_checksum_ok(data[:512]):
        return "TAR"
    return None


def _tar_checksum_ok(block: bytes) -> bool:
    try:
        stored = int(block[148:156].split(b"\x00", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(block[:148]) + 256 + sum(block[156:512]) and block[0] != 0


def _epoch(value: float | int | None) -> datetime | None:
    if not value or value < 0:
        return None
    try:
        return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None


def _dos_datetime(date: int, time: int) -> datetime | None:
    try:
        return datetime(
            1980 + (date >> 9),
            (date >> 5) & 0xF,
            date & 0x1F,
            time >> 11,
            (time >> 5) & 0x3F,
            (time & 0x1F) * 2,
        )
    except ValueError:
        return None


def _file_chunks(open_file: Callable[[], Any]) -> Chunks:
    def chunks(size: int) -> Iterator[bytes]:
        with open_file() as handle:
            while block := handle.read(size):
                yield block

    return chunks


def read_zip(data: bytes, anomalies: list[str]) -> Iterator[Member]:
    zf = zipfile.ZipFile(io.BytesIO(data))
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS_LISTED:
        anomalies.append(f"zip lists {len(infos)} entries, {MAX_MEMBERS_LISTED} read")
    for info in infos[:MAX_MEMBERS_LISTED]:
        try:
            mtime: datetime | None = datetime(*info.date_time)
        except ValueError:
            mtime = None
        yield Member(
            name=info.filename,
            size=info.file_size,
            compressed_size=info.compress_size,
            mtime=mtime,
            is_dir=info.is_dir(),
            encrypted=bool(info.flag_bits & 0x1),
            chunks=_file_chunks(partial(zf.open, info)),
        )


def read_tar(data: bytes, anomalies: list[str]) -> Iterator[Member]:
    tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:")  # noqa: SIM115 - kept open for members
    for count in range(MAX_MEMBERS_LISTED + 1):
        try:
            info = tf.next()
        except tarfile.TarError as exc:
            anomalies.append(f"tar: {exc}"[:200])
            return
        if info is None:
            return
        if count == MAX_MEMBERS_LISTED:
            anomalies.append(f"tar has more than {MAX_MEMBERS_LISTED} entries")
            return
        opener = None
        if info.isfile():
            opener = _file_chunks(partial(tf.extractfile, info))
        yield Member(
            name=info.name,
            size=info.size,
            compressed_size=info.size,
            mtime=_epoch(info.mtime),
            is_dir=not info.isfile(),
            chunks=opener,
        )


def _stream_chunks(
    data: bytes, new_decompressor: Callable[[], Any], magic: bytes, anomalies: list[str]
) -> Chunks:
    """Chunks of a (possibly multi-member) gzip/bzip2/xz stream, decompressed with ``max_length``."""

    def chunks(size: int) -> Iterator[bytes]:
        pending = data
        while pending:
            decompressor = new_decompressor()
            out = decompressor.decompress(pending, size)
            pending = b""
            while True:
                if out:
                    yield out
                if decompressor.eof:
                    break
                tail = getattr(decompressor, "unconsumed_tail", b"")
                needs_input = getattr(decompressor, "needs_input", not tail)
                if needs_input and not out and not tail:
                    anomalies.append("compressed stream truncated")
                    return
                out = decompressor.decompress(tail, size)
            pending = decompressor.unused_data
            if pending and not pending.startswith(magic):
                if pending.strip(b"\x00"):
                    anomalies.append(f"{len(pending)} bytes of trailing data after the stream")
                return

    return chunks


def _gzip_header(data: bytes) -> tuple[str | None, datetime | None]:
    flags, mtime = data[3], struct.unpack_from("<I", data, 4)[0] if len(data) >= 8 else 0
    pos = 10
    if flags & 0x4 and len(data) >= 12:  # FEXTRA
        pos += 2 + struct.unpack_from("<H", data, 10)[0]
    name = None
    if flags & 0x8:  # FNAME
        end = data.find(b"\x00", pos, pos + 1024)
        if end > 0:
            name = data[pos:end].decode("latin-1")
    return name, _epoch(mtime)


def read_gzip(data: bytes, anomalies: list[str]) -> Iterator[Member]:
    name, mtime = _gzip_header(data)
    yield Member(
        name=name or "gzip-content",
        compressed_size=len(data),
        mtime=mtime,
        chunks=_stream_chunks(data, lambda: zlib.decompressobj(31), b"\x1f\x8b", anomalies),
    )


def read_bzip2(data: bytes, anomalies: list[str]) -> Iterator[Member]:
    yield Member(
        name="bzip2-content",
        compressed_size=len(data),
        chunks=_stream_chunks(data, bz2.BZ2Decompressor, b"BZh", anomalies),
    )


def read_xz(data: bytes, anomalies: list[str]) -> Iterator[Member]:
    yield Member(
        name="xz-content",
        compressed_size=len(data),
        chunks=_stream_chunks(data, lambda: lzma.LZMADecompressor(lzma.FORMAT_AUTO), data[:3], anomalies),
    )


def _bytes_chunks(get: Callable[[], bytes | None]) -> Chunks:
    def chunks(size: int) -> Iterator[bytes]:
        blob = get() or b""
        for pos in range(0, len(blob), size):
            yield blob[pos : pos + size]

    return chunks


def read_7z(data: bytes, anomalies: list[str]) -> Iterator[Member]:
    try:
        import py7zr
        import py7zr.io
    except ImportError:
        anomalies.append("7z listing needs py7zr, which is not installed")
        return
    archive = py7zr.SevenZipFile(io.BytesIO(data), mode="r", max_extract_size=MAX_CAB_FOLDER_BYTES)
    encrypted = bool(archive.needs_password())
    infos = archive.list()[:MAX_MEMBERS_LISTED]
    extracted: dict[str, bytes] = {}
    wanted: list[str] = []
    budget = MAX_CAB_FOLDER_BYTES  # declared bytes extracted at most, all members together
    for info in infos:
        size = info.uncompressed or 0
        if not info.is_directory and size <= min(budget, MAX_7Z_MEMBER) and len(wanted) < MAX_7Z_EXTRACTED:
            wanted.append(info.filename)
            budget -= size

    def get(name: str) -> bytes | None:
        if not extracted and not encrypted and wanted:
            factory = py7zr.io.BytesIOFactory(MAX_CAB_FOLDER_BYTES)
            try:
                archive.reset()
                archive.extract(targets=wanted, factory=factory)
            except Exception as exc:  # py7zr raises many types on corrupt streams
                anomalies.append(f"7z extraction failed: {type(exc).__name__}")
            for target in wanted:
                try:
                    product = factory.get(target)
                    product.seek(0)
                    extracted[target] = product.read()
                except (KeyError, AttributeError, OSError):
                    continue
            extracted.setdefault("", b"")
        return extracted.get(name)

    for info in infos:
        yield Member(
            name=info.filename,
            size=info.uncompressed,
            compressed_size=info.compressed,
            mtime=info.creationtime.replace(tzinfo=None) if info.creationtime else None,
            is_dir=info.is_directory,
            encrypted=encrypted,
            chunks=None if info.is_directory or encrypted else _bytes_chunks(partial(get, info.filename)),
        )


def read_rar(data: bytes, anomalies: list[str]) -> Iterator[Member]:
    try:
        import rarfile
    except ImportError:
        anomalies.append("RAR listing needs rarfile, which is not installed")
        return
    rf = rarfile.RarFile(io.BytesIO(data))
    for info in rf.infolist()[:MAX_MEMBERS_LISTED]:
        try:
            mtime = datetime(*info.date_time[:6]) if info.date_time else None
        except (ValueError, TypeError):
            mtime = None
        stored = info.compress_type == rarfile.RAR_M0 and not info.needs_password()
        yield Member(
            name=info.filename,
            size=info.file_size,
            compressed_size=info.compress_size,
            mtime=mtime,
            is_dir=info.is_dir(),
            encrypted=info.needs_password(),
            chunks=_file_chunks(partial(rf.open, info)) if stored else None,
        )


def read_cpio(data: bytes, anomalies: list[str]) -> Iterator[Member]:
    pos = 0
    for _ in range(MAX_MEMBERS_LISTED):
        magic = data[pos : pos + 6]
        if magic in (b"070701", b"070702"):
            fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
            mode, mtime, size, namesize = fields[1], fields[5], fields[6], fields[11]
            name_start = pos + 110
            data_start = (name_start + namesize + 3) & ~3
            next_pos = (data_start + size + 3) & ~3
        elif magic == b"070707":
            mode = int(data[pos + 18 : pos + 24], 8)
            mtime, namesize = int(data[pos + 48 : pos + 59], 8), int(data[pos + 59 : pos + 65], 8)
            size = int(data[pos + 65 : pos + 76], 8)
            name_start = pos + 76
            data_start = name_start + namesize
            next_pos = data_start + size
        else:
            anomalies.append(f"cpio: bad header magic at offset {pos}")
            return
        name = data[name_start : name_start + namesize].split(b"\x00", 1)[0].decode("utf-8", "replace")
        if name == "TRAILER!!!":
            return
        if data_start + size > len(data):
            anomalies.append(f"cpio member {name!r} truncated")
        is_file = mode & 0o170000 == 0o100000
        body = data[data_start : data_start + size]
        yield Member(
            name=name,
            size=size,
            compressed_size=size,
            mtime=_epoch(mtime),
            is_dir=not is_file,
            chunks=_bytes_chunks(partial(bytes, body)) if is_file else None,
        )
        pos = next_pos
        if pos >= len(data):
            anomalies.append("cpio archive without trailer")
            return


def read_cab(data: bytes, anomalies: list[str]) -> Iterator[Member]:
    from kinfile.formats.archive_cab import read_cab as _read_cab

    yield from _read_cab(data, anomalies)


READERS: dict[str, Callable[[bytes, list[str]], Iterator[Member]]] = {
    "ZIP": read_zip,
    "TAR": read_tar,
    "GZIP": read_gzip,
    "BZIP2": read_bzip2,
    "XZ": read_xz,
    "LZMA": read_xz,
    "7ZIP": read_7z,
    "CAB": read_cab,
    "RAR": read_rar,
    "CPIO": read_cpio,
}
