"""Byte-level PDF scanning for :mod:`kinfile.formats.pdf`: pdfid-style keyword counts and filters.

The keyword counter follows Didier Stevens' pdfid semantics without its byte-by-byte loop:
a *word* is a maximal run of ``[A-Za-z0-9]``; a word right after ``/`` is a name, in which
``#xx`` hex escapes are decoded (``/J#61vaScript`` counts as ``/JavaScript``); bare keywords
(``obj``, ``stream``...) only count when not preceded by ``/`` or a word character. Everything
after the header is scanned, stream contents included, exactly as pdfid does.
"""

from __future__ import annotations

import base64
import logging
import re
import zlib
from collections import Counter

logger = logging.getLogger(__name__)

BARE_KEYWORDS = ("obj", "endobj", "stream", "endstream", "xref", "trailer", "startxref")
NAME_KEYWORDS = (
    "/Page",
    "/Encrypt",
    "/ObjStm",
    "/JS",
    "/JavaScript",
    "/AA",
    "/OpenAction",
    "/AcroForm",
    "/JBIG2Decode",
    "/RichMedia",
    "/Launch",
    "/EmbeddedFile",
    "/XFA",
    "/URI",
)
COLORS_LIMIT = 2**24

_NAME_SET = frozenset(NAME_KEYWORDS)
# pdfid tests ``chr(byte).upper()`` against A-Z, which 0xDF (``"ß".upper() == "SS"``) passes.
_WORD_END = rb"(?![A-Za-z0-9\xdf]|#[0-9A-Fa-f]{2})"
TRAILER_RE = re.compile(rb"trailer(?<![A-Za-z0-9/\xdf]trailer)(?![A-Za-z0-9\xdf])")
STARTXREF_RE = re.compile(rb"startxref(?<![A-Za-z0-9/\xdf]startxref)[\x00\t\n\x0c\r ]*(\d{1,12})")
_NAME_RE = re.compile(rb"/(" + b"|".join(k[1:].encode() for k in NAME_KEYWORDS) + rb")" + _WORD_END)
# One literal-first regex per bare keyword (a leading lookbehind would defeat the prefix search).
_BARE_RES = tuple(
    (k, re.compile(k.encode() + rb"(?<![A-Za-z0-9/\xdf]" + k.encode() + rb")(?![A-Za-z0-9\xdf])"))
    for k in BARE_KEYWORDS
)
_HEX_NAME_RE = re.compile(
    rb"/(?:[A-Za-z0-9\xdf]|#[0-9A-Fa-f]{2})*#[0-9A-Fa-f]{2}(?:[A-Za-z0-9\xdf]|#[0-9A-Fa-f]{2})*"
)
_HEX_ESCAPE_RE = re.compile(rb"#([0-9A-Fa-f]{2})")
_COLORS_RE = re.compile(rb"/Colors" + _WORD_END + rb"[^/A-Za-z0-9\xdf]*(\d+)(?![A-Za-z0-9\xdf])")
_HEADER_RE = re.compile(rb"%PDF")


class KeywordCounts:
    """pdfid-style counts: ``counts[keyword]`` and ``hex_counts[keyword]`` (hex-escaped names)."""

    __slots__ = ("counts", "hex_counts", "suspicious_colors")

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.hex_counts: Counter[str] = Counter()
        self.suspicious_colors = 0

    def add(self, other: KeywordCounts) -> None:
        self.counts.update(other.counts)
        self.hex_counts.update(other.hex_counts)
        self.suspicious_colors += other.suspicious_colors


def find_header(data: bytes) -> tuple[int, str | None]:
    """pdfid's relaxed header: ``%PDF`` in the first 1024 bytes, up to EOL or 10 more bytes.

    Returns (offset where scanning resumes, header string or None).
    """
    match = _HEADER_RE.search(data, 0, 1024)
    if match is None:
        return 0, None
    start = match.start()
    end = start + 4
    limit = min(start + 14, len(data))
    while end < limit and data[end] not in (10, 13):
        end += 1
    return end, data[start:end].decode("latin-1").replace("\x00", "")


def decode_name(raw: bytes) -> bytes:
    """Decode ``#xx`` escapes in a PDF name (without the slash)."""
    if b"#" not in raw:
        return raw
    return _HEX_ESCAPE_RE.sub(lambda m: bytes((int(m.group(1), 16),)), raw)


def count_keywords(data: bytes, start: int = 0, names_only: bool = False) -> KeywordCounts:
    """Count pdfid keywords in ``data[start:]`` with regexes (C speed, same semantics)."""
    result = KeywordCounts()
    counts = result.counts
    view = data[start:] if start else data
    if b"/" in view:
        counts.update("/" + m.decode("ascii") for m in _NAME_RE.findall(view))
        if b"#" in view:
            for raw in _HEX_NAME_RE.findall(view):
                name = "/" + decode_name(raw[1:]).decode("latin-1")
                if name in _NAME_SET:
                    counts[name] += 1
                    result.hex_counts[name] += 1
        if b"/Colors" in view:
            result.suspicious_colors = sum(
                1 for value in _COLORS_RE.findall(view) if len(value) > 8 or int(value) > COLORS_LIMIT
            )
    if not names_only:
        for keyword, pattern in _BARE_RES:
            found = len(pattern.findall(view))
            if found:
                counts[keyword] = found
    return result


# --------------------------------------------------------------------------- stream filters


class DecodeBudget:
    """Shared bound on decompressed output for one file."""

    __slots__ = ("remaining",)

    def __init__(self, total: int) -> None:
        self.remaining = total

    def take(self, wanted: int) -> int:
        granted = max(0, min(wanted, self.remaining))
        return granted

    def spend(self, used: int) -> None:
        self.remaining -= used


class FilterError(Exception):
    """A stream filter could not be applied (unsupported, corrupt or over budget)."""


def _inflate(raw: bytes, limit: int) -> bytes:
    """zlib inflate with an output cap; tolerant of truncated data and missing zlib headers."""
    for wbits in (15, -15):
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(raw, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit:
            raise FilterError("decompressed size over limit")
        return out
    raise FilterError("corrupt FlateDecode data")


def _ascii_hex(raw: bytes) -> bytes:
    text = raw.split(b">", 1)[0]
    text = bytes(c for c in text if c in b"0123456789abcdefABCDEF")
    if len(text) % 2:
        text += b"0"
    return bytes.fromhex(text.decode("ascii"))


def _ascii85(raw: bytes) -> bytes:
    text = raw.strip()
    if text.startswith(b"<~"):
        text = text[2:]
    end = text.find(b"~>")
    if end >= 0:
        text = text[:end]
    try:
        return base64.a85decode(text, adobe=False, ignorechars=b" \t\n\r\x0b\x0c")
    except ValueError as exc:
        raise FilterError("corrupt ASCII85Decode data") from exc


def _run_length(raw: bytes, limit: int) -> bytes:
    out = bytearray()
    i, n = 0, len(raw)
    while i < n and len(out) <= limit:
        length = raw[i]
        if length == 128:
            break
        if length < 128:
            out += raw[i + 1 : i + 2 + length]
            i += length + 2
        else:
            if i + 1 < n:
                out += raw[i + 1 : i + 2] * (257 - length)
            i += 2
    if len(out) > limit:
        raise FilterError("decompressed size over limit")
    return bytes(out)


FILTER_ALIASES = {
    "Fl": "FlateDecode",
    "AHx": "ASCIIHexDecode",
    "A85": "ASCII85Decode",
    "RL": "RunLengthDecode",
}


def apply_filters(raw: bytes, filters: list[str], budget: DecodeBudget, ratio: int) -> bytes:
    """Decode ``raw`` through ``filters`` (outermost first) within the budget and a ratio cap."""
    limit = budget.take(max(65536, len(raw) * ratio))
    data = raw
    try:
        for name in filters[:8]:
            data = _apply_filter(FILTER_ALIASES.get(name, name), data, limit)
            if len(data) > limit:
                raise FilterError("decompressed size over limit")
    except FilterError:
        budget.spend(limit)  # a failed (or bomb) stream still costs what it could have produced
        raise
    budget.spend(len(data))
    return data


def _apply_filter(name: str, data: bytes, limit: int) -> bytes:
    if name == "FlateDecode":
        return _inflate(data, limit)
    if name == "ASCIIHexDecode":
        return _ascii_hex(data)
    if name == "ASCII85Decode":
        return _ascii85(data)
    if name == "RunLengthDecode":
        return _run_length(data, limit)
    raise FilterError(f"unsupported filter {name[:40]}")
