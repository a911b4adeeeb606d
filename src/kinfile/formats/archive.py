"""Archive analyser: VirusTotal's ``bundle_info``, bundled children, and the upload unzip helper.

``analyse`` lists the members of a ZIP, TAR, GZIP, BZIP2, XZ/LZMA, 7ZIP, CAB, RAR or CPIO file
(readers in :mod:`kinfile.formats.archive_readers`), summarises them like VirusTotal and returns the
members as ``bundled_files`` children. The pipeline handles recursion depth; this module bounds
one archive: member count, bytes per member, total bytes, compression ratio, time. Decompressed
data is always pulled in chunks of at most :data:`CHUNK_SIZE`, never with an unbounded read.

``extract_single_member`` serves the API's upload ``password`` field (VirusTotal accepts a
password-protected ZIP holding exactly one file).
"""

from __future__ import annotations

import io
import logging
import lzma
import posixpath
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kinfile.formats.archive_readers import READERS, Member, detect
from kinfile.formats.common import NO_DEADLINE, AnalysisTimeout, Child, Deadline, clean_text

logger = logging.getLogger(__name__)

MAX_CHILDREN = 1000
"""Members extracted as children per archive (the rest are still counted in ``bundle_info``)."""
MAX_MEMBER_BYTES = 100 * 1024 * 1024
"""A member larger than this (declared or actual) is not extracted."""
MAX_TOTAL_BYTES = 256 * 1024 * 1024
"""Decompressed bytes extracted per archive, all members together."""
MAX_RATIO = 200
"""Compression ratio above which a member is treated as a decompression bomb…"""
RATIO_MIN_OUTPUT = 1024 * 1024
"""…once its output passes this size (small, highly compressible files are normal)."""
CHUNK_SIZE = 1024 * 1024
"""Largest piece of decompressed data requested at once."""
MAX_SNIFFED = 4096
"""Members beyond the extracted ones whose first bytes are read for ``file_types``."""
MAX_LIST = 256
BEGINNING_BYTES = 256

SNIFF = (
    (b"\x7fELF", "elf"),
    (b"%PDF", "pdf"),
    (b"PK\x03\x04", "zip"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"7z\xbc\xaf\x27\x1c", "7zip"),
    (b"Rar!\x1a\x07", "rar"),
    (b"MSCF", "cab"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2"),
    (b"{\\rt", "rtf"),
    (b"\x89PNG", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF8", "gif"),
    (b"\xca\xfe\xba\xbe", "macho"),
    (b"\xcf\xfa\xed\xfe", "macho"),
    (b"\xce\xfa\xed\xfe", "macho"),
    (b"\xfe\xed\xfa", "macho"),
    (b"#!", "script"),
    (b"<?xml", "xml"),
    (b"<html", "html"),
    (b"<!DOCTYPE html", "html"),
)
TYPE_TAGS = {
    "ZIP": "zip",
    "TAR": "tar",
    "GZIP": "gzip",
    "BZIP2": "bzip",
    "XZ": "xz",
    "LZMA": "xz",
    "7ZIP": "7zip",
    "CAB": "cab",
    "RAR": "rar",
    "CPIO": "cpio",
}


class ArchiveError(ValueError):
    """Base of the errors :func:`extract_single_member` raises (the API answers 400)."""


class NotAZipError(ArchiveError):
    """The upload is not a ZIP file."""


class TooManyMembersError(ArchiveError):
    """The ZIP does not hold exactly one file."""


class WrongPasswordError(ArchiveError):
    """The password is missing or wrong."""


class ArchiveLimitError(ArchiveError):
    """The member is too large, too compressed, or uses an unsupported method or encryption."""


def sniff(head: bytes) -> str:
    """A cheap file-type label from a member's first bytes (for ``bundle_info.file_types``)."""
    if head[:2] == b"MZ":
        return "pe" if b"PE\x00\x00" in head[:1024] or len(head) < 64 else "dos"
    for magic, label in SNIFF:
        if head.startswith(magic):
            return label
    if head[257:262] == b"ustar":
        return "tar"
    sample = head[:512]
    if sample and all(b in b"\t\n\r\f\b" or 32 <= b < 127 or b >= 0x80 for b in sample):
        return "text"
    return "unknown"


@dataclass
class Extraction:
    """Per-archive budget and findings while members are pulled."""

    deadline: Deadline
    total: int = 0
    anomalies: list[str] = field(default_factory=list)

    def read(
        self, member: Member, limit: int = MAX_MEMBER_BYTES, chunk_size: int = CHUNK_SIZE
    ) -> bytes | None:
        """The member's bytes, or ``None`` (with an anomaly) when a limit is hit."""
        if member.chunks is None:
            return None
        if member.size is not None and member.size > limit:
            self.anomalies.append(f"{member.name!r}: {member.size} bytes, over the {limit}-byte member limit")
            return None
        out = bytearray()
        stream = member.chunks(chunk_size)
        try:
            for block in stream:
                self.deadline.check()
                out += block
                if len(out) > limit:
                    self.anomalies.append(f"{member.name!r}: over the {limit}-byte member limit")
                    return None
                if self.total + len(out) > MAX_TOTAL_BYTES:
                    self.anomalies.append(f"archive over the {MAX_TOTAL_BYTES}-byte extraction limit")
                    return None
                packed = member.compressed_size
                if (
                    packed is not None
                    and len(out) > RATIO_MIN_OUTPUT
                    and len(out) > MAX_RATIO * max(packed, 1)
                ):
                    self.anomalies.append(
                        f"{member.name!r}: compression ratio over {MAX_RATIO}:1 "
                        f"(possible decompression bomb), not extracted"
                    )
                    return None
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        self.total += len(out)
        return bytes(out)

    def head(self, member: Member) -> bytes:
        if member.chunks is None:
            return b""
        stream = member.chunks(4096)
        try:
            return next(iter(stream), b"")
        finally:
            getattr(stream, "close", lambda: None)()


def _extension(name: str) -> str | None:
    base = posixpath.basename(name.replace("\\", "/"))
    if "." not in base.strip("."):
        return None
    ext = base.rsplit(".", 1)[1].lower()
    return ext if 0 < len(ext) <= 10 else None


def _summarise(
    kind: str, members: Iterator[Member], job: Extraction
) -> tuple[dict[str, Any], list[Child], set[str]]:
    extensions: Counter[str] = Counter()
    file_types: Counter[str] = Counter()
    children: list[Child] = []
    tags: set[str] = set()
    count = declared = sniffed = 0
    dates = []
    beginning = b""
    for member in members:
        job.deadline.check()
        if member.mtime is not None:
            dates.append(member.mtime)
        if member.is_dir:
            continue
        count += 1
        declared += member.size or 0
        if member.encrypted:
            tags.add("encrypted")
        if ext := _extension(member.name):
            extensions[ext] += 1
        payload = None
        extracted = False
        try:
            if len(children) < MAX_CHILDREN and not member.encrypted:
                payload = job.read(member)
                extracted = payload is not None
            elif sniffed < MAX_SNIFFED and not member.encrypted:
                sniffed += 1
                payload = job.head(member)
        except AnalysisTimeout:
            raise
        except Exception as exc:  # corrupt member data: keep listing the others
            job.anomalies.append(f"{member.name!r}: {type(exc).__name__}: {exc}"[:200])
        if payload is None and not member.encrypted and sniffed < MAX_SNIFFED:
            sniffed += 1
            try:
                payload = job.head(member)
            except AnalysisTimeout:
                raise
            except Exception:  # the anomaly from the full read is enough
                payload = None
        if payload is None:
            file_types["encrypted" if member.encrypted else "unknown"] += 1
            continue
        label = sniff(payload[:4096])
        file_types[label] += 1
        if label in ("pe", "elf"):
            tags.add(f"contains-{label}")
        if label == "tar" and kind in ("GZIP", "BZIP2", "XZ", "LZMA"):
            tags.add("tar-bundle")
        if member.size is None and extracted:
            declared += len(payload)
            beginning = beginning or payload[:BEGINNING_BYTES]
        if extracted and payload:
            children.append(Child(relationship="bundled_files", name=member.name[:1024], data=payload))
    info: dict[str, Any] = {"type": kind, "num_children": count, "uncompressed_size": declared}
    if extensions:
        info["extensions"] = dict(extensions.most_common(MAX_LIST))
    if file_types:
        info["file_types"] = dict(file_types.most_common(MAX_LIST))
    if dates:
        info["lowest_datetime"] = min(dates).strftime("%Y-%m-%d %H:%M:%S")
        info["highest_datetime"] = max(dates).strftime("%Y-%m-%d %H:%M:%S")
    if beginning:
        info["beginning"] = clean_text(beginning.decode("latin-1"), BEGINNING_BYTES)
    return info, children, tags


def analyse(data: bytes, deadline: Deadline | None = None) -> dict[str, Any]:
    """``bundle_info`` and ``bundled_files`` children; hostile input yields anomalies, never raises."""
    job = Extraction(deadline=deadline or NO_DEADLINE)
    kind = detect(data)
    if kind is None:
        return {"anomalies": ["unsupported or unrecognised archive format"]}
    tags = {TYPE_TAGS[kind]}
    try:
        info, children, member_tags = _summarise(kind, READERS[kind](data, job.anomalies), job)
    except AnalysisTimeout:
        raise
    except Exception as exc:  # unreadable directory: report the type, keep the anomaly
        logger.debug("archive listing failed", exc_info=True)
        job.anomalies.append(f"{kind} listing failed: {type(exc).__name__}: {exc}"[:200])
        info, children, member_tags = {"type": kind}, [], set()
    result: dict[str, Any] = {"bundle_info": info, "tags": sorted(tags | member_tags), "children": children}
    if job.anomalies:
        result["anomalies"] = list(dict.fromkeys(job.anomalies))[:MAX_LIST]
    return result


def extract_single_member(data: bytes, password: bytes | None) -> tuple[str, bytes]:
    """The one file of a (usually password-protected) ZIP upload, as ``(name, bytes)``.

    Raises :class:`NotAZipError`, :class:`TooManyMembersError`, :class:`WrongPasswordError` or
    :class:`ArchiveLimitError` (all :class:`ArchiveError`, a ``ValueError``) with a message fit
    for a 400 answer.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        files = [i for i in zf.infolist() if i.filename and not i.is_dir()]  # a NUL-led name is ""
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise NotAZipError(f"not a ZIP file: {exc}") from None
    if len(files) != 1:
        raise TooManyMembersError(f"the ZIP file holds {len(files)} files; exactly one is expected")
    info = files[0]
    if info.flag_bits & 0x1 and not password:
        raise WrongPasswordError(f"{info.filename!r} is encrypted: a password is required")
    member = Member(
        name=info.filename,
        size=info.file_size,
        compressed_size=info.compress_size,
        chunks=lambda size: _zip_chunks(zf, info, password, size),
    )
    job = Extraction(deadline=NO_DEADLINE)
    try:
        payload = job.read(member)
    except RuntimeError as exc:
        raise WrongPasswordError(f"wrong password for {info.filename!r}") from exc
    except zipfile.BadZipFile as exc:
        if info.flag_bits & 0x1:  # ZipCrypto's 1-byte check passes for 1 wrong password in 256
            raise WrongPasswordError(f"wrong password for {info.filename!r}") from exc
        raise ArchiveLimitError(f"corrupt ZIP member {info.filename!r}: {exc}") from exc
    except NotImplementedError as exc:
        raise ArchiveLimitError(f"unsupported compression or encryption: {exc}") from exc
    except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:  # corrupt stream
        raise ArchiveLimitError(f"corrupt ZIP member {info.filename!r}: {type(exc).__name__}: {exc}") from exc
    if payload is None:
        raise ArchiveLimitError("; ".join(job.anomalies) or "extraction limit reached")
    # the member's own name, as an upload's is kept (its path, "../" included, is not)
    return posixpath.basename(info.filename.replace("\\", "/")) or "member", payload


def _zip_chunks(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, password: bytes | None, size: int
) -> Iterator[bytes]:
    with zf.open(info, pwd=password) as handle:
        while block := handle.read(size):
            yield block
