"""Cryptographic digests of a whole file, in one pass."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Digests:
    md5: str
    sha1: str
    sha256: str
    size: int


def digest_bytes(data: bytes) -> Digests:
    return Digests(
        md5=hashlib.md5(data).hexdigest(),
        sha1=hashlib.sha1(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )


def digest_stream(stream: BinaryIO) -> Digests:
    """Digest a stream in 1 MiB chunks without holding it in memory."""
    md5, sha1, sha256 = hashlib.md5(), hashlib.sha1(), hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        md5.update(chunk)
        sha1.update(chunk)
        sha256.update(chunk)
        size += len(chunk)
    return Digests(md5.hexdigest(), sha1.hexdigest(), sha256.hexdigest(), size)


_HEX = re.compile(r"[0-9a-fA-F]+")


def is_hash(value: str) -> str | None:
    """The kind of a hex digest string (``md5``, ``sha1``, ``sha256``) or ``None``."""
    kinds = {32: "md5", 40: "sha1", 64: "sha256"}
    kind = kinds.get(len(value))
    if kind is None or not _HEX.fullmatch(value):  # not int(value, 16): it takes "0x", "_", " "
        return None
    return kind
