"""A tolerant PDF object reader for :mod:`kinfile.formats.pdf`.

It does not trust the cross-reference table: objects are found by scanning for ``N G obj``
(later definitions win, as with incremental updates), object streams are expanded when they
decode, and values are parsed by a small bounded recursive-descent parser.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from kinfile.formats.common import NO_DEADLINE, Deadline
from kinfile.formats.pdf_scan import TRAILER_RE, DecodeBudget, FilterError, apply_filters, decode_name

logger = logging.getLogger(__name__)

MAX_OBJECTS = 500_000
MAX_DEPTH = 24
MAX_ITEMS = 4096
MAX_STRING = 1 << 20
OBJSTM_RATIO = 200

WHITESPACE = b"\x00\t\n\x0c\r "
DELIMITERS = b"()<>[]{}/%"
OBJ_RE = re.compile(rb"(?<![0-9])(\d{1,10})[\x00\t\n\x0c\r ]+(\d{1,5})[\x00\t\n\x0c\r ]*obj(?![A-Za-z0-9])")
_REF_RE = re.compile(
    rb"(\d{1,10})[\x00\t\n\x0c\r ]+(\d{1,5})[\x00\t\n\x0c\r ]+R(?![^\x00\t\n\x0c\r ()<>\[\]{}/%])"
)
_NUM_RE = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)")
_NAME_RE = re.compile(rb"/([^\x00\t\n\x0c\r ()<>\[\]{}/%]*)")
_KW_RE = re.compile(rb"[A-Za-z_]+")
_SKIP_RE = re.compile(rb"(?:[\x00\t\n\x0c\r ]+|%[^\r\n]*)*")
_STREAM_RE = re.compile(rb"stream(?<![A-Za-z0-9/]stream)(?:\r\n|\n|\r)?")
_WORD_BYTES = frozenset(
    bytes((c,)) for c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/"
)
_STRING_SPECIAL_RE = re.compile(rb"[()\\\\]")
_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}


class Name(str):
    """A PDF name (without the slash, ``#xx`` decoded)."""


@dataclass(frozen=True)
class Ref:
    num: int
    gen: int


@dataclass
class PdfObject:
    num: int
    gen: int
    offset: int
    body: bytes  # the value (dictionary) text, without the stream data
    stream: bytes | None = None  # raw (still filtered) stream data
    in_objstm: bool = False
    _value: Any = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    def value(self) -> Any:
        if not self._parsed:
            self._parsed = True
            try:
                self._value, _ = parse_value(self.body, 0, 0)
            except (ValueError, IndexError, RecursionError):
                self._value = None
        return self._value

    def dict(self) -> dict[str, Any]:
        value = self.value()
        return value if isinstance(value, dict) else {}


# --------------------------------------------------------------------------- value parser


def _skip(data: bytes, pos: int) -> int:
    match = _SKIP_RE.match(data, pos)
    return match.end() if match else pos


def _literal_string(data: bytes, pos: int) -> tuple[bytes, int]:
    """Parse ``( ... )`` starting after the ``(``; balanced parens and escapes."""
    out = bytearray()
    depth = 1
    n = len(data)
    while pos < n and len(out) < MAX_STRING:
        special = _STRING_SPECIAL_RE.search(data, pos)
        if special is None:
            out += data[pos:]
            return bytes(out[:MAX_STRING]), n
        out += data[pos : special.start()]
        pos = special.start()
        char = data[pos]
        if char == 0x5C:  # backslash
            pos += 1
            if pos >= n:
                break
            esc = data[pos]
            if esc in _ESCAPES:
                out += _ESCAPES[esc]
            elif 0x30 <= esc <= 0x37:
                digits = data[pos : pos + 3]
                count = 1
                while count < len(digits) and 0x30 <= digits[count] <= 0x37:
                    count += 1
                out.append(int(digits[:count], 8) & 0xFF)
                pos += count - 1
            elif esc == 0x0D:
                if pos + 1 < n and data[pos + 1] == 0x0A:
                    pos += 1
            elif esc != 0x0A:
                out.append(esc)
            pos += 1
            continue
        if char == 0x28:
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return bytes(out[:MAX_STRING]), pos + 1
        out.append(char)
        pos += 1
    return bytes(out[:MAX_STRING]), pos


def _hex_string(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.find(b">", pos)
    if end < 0:
        end = len(data)
    digits = bytes(c for c in data[pos : min(end, pos + 2 * MAX_STRING)] if c in b"0123456789abcdefABCDEF")
    if len(digits) % 2:
        digits += b"0"
    return bytes.fromhex(digits.decode("ascii")), end + 1


def parse_value(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    """Parse one PDF value at ``pos``; returns (value, next position). Strings come back as bytes."""
    if depth > MAX_DEPTH:
        raise ValueError("nesting too deep")
    pos = _skip(data, pos)
    if pos >= len(data):
        raise ValueError("end of data")
    char = data[pos]
    if char == 0x2F:  # /
        match = _NAME_RE.match(data, pos)
        assert match is not None
        return Name(decode_name(match.group(1)).decode("latin-1")), match.end()
    if char == 0x3C:  # <
        if data[pos + 1 : pos + 2] == b"<":
            return _parse_dict(data, pos + 2, depth)
        return _hex_string(data, pos + 1)
    if char == 0x5B:  # [
        return _parse_array(data, pos + 1, depth)
    if char == 0x28:  # (
        return _literal_string(data, pos + 1)
    if char in b"0123456789+-.":
        ref = _REF_RE.match(data, pos)
        if ref:
            return Ref(int(ref.group(1)), int(ref.group(2))), ref.end()
        match = _NUM_RE.match(data, pos)
        if match is None:
            return None, pos + 1
        text = match.group()
        try:
            value: Any = float(text) if b"." in text else int(text)
        except ValueError:
            value = None
        return value, match.end()
    match = _KW_RE.match(data, pos)
    if match:
        word = match.group()
        return {b"true": True, b"false": False}.get(word), match.end()
    return None, pos + 1


def _parse_dict(data: bytes, pos: int, depth: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    n = len(data)
    for _ in range(MAX_ITEMS):
        pos = _skip(data, pos)
        if pos >= n or data.startswith(b">>", pos):
            return result, pos + 2
        if data[pos] != 0x2F:
            # malformed key: skip one token
            _, pos = parse_value(data, pos, depth + 1)
            continue
        key, pos = parse_value(data, pos, depth + 1)
        pos = _skip(data, pos)
        if data.startswith(b">>", pos):
            result[key] = None
            return result, pos + 2
        value, pos = parse_value(data, pos, depth + 1)
        result[key] = value
    return result, pos


def _parse_array(data: bytes, pos: int, depth: int) -> tuple[list[Any], int]:
    result: list[Any] = []
    n = len(data)
    for _ in range(MAX_ITEMS):
        pos = _skip(data, pos)
        if pos >= n or data[pos] == 0x5D:
            return result, pos + 1
        value, pos = parse_value(data, pos, depth + 1)
        result.append(value)
    return result, pos


# --------------------------------------------------------------------------- object index


class PdfDocument:
    """Objects found by scanning, plus trailers; resolves references lazily."""

    def __init__(self, data: bytes, start: int, deadline: Deadline = NO_DEADLINE) -> None:
        self.data = data
        self.objects: dict[int, PdfObject] = {}
        self.in_order: list[PdfObject] = []
        self.trailers: list[dict[str, Any]] = []
        self.anomalies: list[str] = []
        self._scan(start, deadline)
        self._read_trailers()

    def _scan(self, start: int, deadline: Deadline) -> None:
        data = self.data
        finders = (
            _NextFinder(data, b"endobj"),
            _NextFinder(data, b"endstream"),
            _NextFinder(data, b"stream"),
        )
        pos = start
        while len(self.in_order) < MAX_OBJECTS:
            if len(self.in_order) % 256 == 0:
                deadline.check()
            match = OBJ_RE.search(data, pos)
            if match is None:
                break
            body_start = match.end()
            body, stream, end = self._split_stream(body_start, finders)
            obj = PdfObject(int(match.group(1)), int(match.group(2)), match.start(), body, stream)
            self.objects[obj.num] = obj
            self.in_order.append(obj)
            pos = max(end, body_start)
        else:
            self.anomalies.append(f"more than {MAX_OBJECTS} objects; the rest ignored")

    def _split_stream(
        self, body_start: int, finders: tuple[_NextFinder, _NextFinder, _NextFinder]
    ) -> tuple[bytes, bytes | None, int]:
        """(dictionary text, raw stream data or None, end of the object)."""
        data = self.data
        endobj, endstream, stream_word = finders
        end = endobj.find(body_start)
        end = len(data) if end < 0 else end
        keyword = stream_word.find(body_start)  # not "endstream": the regex checks the byte before
        # an object without endobj stops at the next object header (searched within the dictionary)
        next_obj = OBJ_RE.search(data, body_start, keyword if 0 <= keyword < end else end)
        if next_obj is not None:
            return data[body_start : next_obj.start()], None, next_obj.start()
        match = _STREAM_RE.match(data, keyword) if 0 <= keyword < end else None
        if match is None or not data[body_start : match.start()].rstrip(WHITESPACE).endswith(b">>"):
            return data[body_start:end], None, end
        body = data[body_start : match.start()]
        stream_start = match.end()
        stream_end = endstream.find(stream_start)
        if stream_end < 0:
            stream_end = len(data)
        length = _direct_length(body)
        if length is not None and 0 <= length <= stream_end - stream_start:
            candidate = stream_start + length
            if data[candidate:stream_end].strip(WHITESPACE) == b"":
                stream_end = candidate
        raw = data[stream_start:stream_end]
        if raw.endswith(b"\r\n"):
            raw = raw[:-2]
        elif raw.endswith((b"\n", b"\r")):
            raw = raw[:-1]
        new_end = endobj.find(stream_end)
        return body, raw, max(end, new_end if new_end >= 0 else len(data))

    def _read_trailers(self) -> None:
        data = self.data
        for match in TRAILER_RE.finditer(data):
            try:
                value, _ = parse_value(data, match.end(), 0)
            except (ValueError, IndexError, RecursionError):
                continue
            if isinstance(value, dict):
                self.trailers.append(value)
            if len(self.trailers) >= 64:
                break
        for obj in self.in_order:
            if obj.stream is not None and b"XRef" in obj.body and obj.dict().get("Type") == "XRef":
                self.trailers.append(obj.dict())

    def trailer(self) -> dict[str, Any]:
        """Merged trailer: later trailers override earlier keys (incremental updates)."""
        merged: dict[str, Any] = {}
        for trailer in self.trailers:
            merged.update({k: v for k, v in trailer.items() if v is not None})
        return merged

    def resolve(self, value: Any, hops: int = 8) -> Any:
        while isinstance(value, Ref) and hops > 0:
            obj = self.objects.get(value.num)
            value = obj.value() if obj is not None else None
            hops -= 1
        return None if isinstance(value, Ref) else value

    def stream_data(self, obj: PdfObject, budget: DecodeBudget, ratio: int) -> bytes:
        """Decoded stream data (raises :class:`FilterError`)."""
        if obj.stream is None:
            raise FilterError("not a stream")
        info = obj.dict()
        raw = obj.stream
        length = self.resolve(info.get("Length"))
        if isinstance(length, int) and 0 <= length < len(raw):
            raw = raw[:length]
        filters = self.resolve(info.get("Filter"))
        if isinstance(filters, str):
            names = [filters]
        elif isinstance(filters, list):
            names = [str(self.resolve(f)) for f in filters]
        else:
            names = []
        if self.resolve(info.get("DecodeParms")) not in (None, {}, []) and names:
            parms = self.resolve(info.get("DecodeParms"))
            parms = parms[0] if isinstance(parms, list) and parms else parms
            if isinstance(parms, dict) and (self.resolve(parms.get("Predictor")) or 1) > 1:
                raise FilterError("predictor not supported")
        return apply_filters(raw, names, budget, ratio)

    def expand_object_streams(self, budget: DecodeBudget, deadline: Deadline) -> list[bytes]:
        """Decode every /ObjStm, index the objects inside; returns the decoded contents."""
        decoded: list[bytes] = []
        for obj in list(self.in_order):
            if obj.stream is None or b"ObjStm" not in obj.body and b"#" not in obj.body:
                continue
            info = obj.dict()
            if info.get("Type") != "ObjStm":
                continue
            deadline.check()
            try:
                content = self.stream_data(obj, budget, OBJSTM_RATIO)
            except FilterError as exc:
                self.anomalies.append(f"object stream {obj.num}: {exc}")
                continue
            decoded.append(content)
            self._index_object_stream(obj, info, content, deadline)
        return decoded

    def _index_object_stream(
        self, parent: PdfObject, info: dict[str, Any], content: bytes, deadline: Deadline
    ) -> None:
        count = self.resolve(info.get("N"))
        first = self.resolve(info.get("First"))
        if not isinstance(count, int) or not isinstance(first, int) or not 0 <= first <= len(content):
            self.anomalies.append(f"object stream {parent.num}: bad /N or /First")
            return
        numbers = re.findall(rb"\d+", content[:first])
        pairs = [
            (int(numbers[i]), int(numbers[i + 1])) for i in range(0, min(len(numbers) - 1, 2 * count), 2)
        ]
        previous_end = first
        for i, (num, offset) in enumerate(pairs):
            if i % 256 == 0:
                deadline.check()
            start = first + offset
            end = first + pairs[i + 1][1] if i + 1 < len(pairs) else len(content)
            if not previous_end <= start <= len(content) or end < start:
                continue  # overlapping or backwards offsets: never slice the same bytes twice
            previous_end = end
            existing = self.objects.get(num)
            if existing is None or existing.in_objstm or existing.offset < parent.offset:
                obj = PdfObject(num, 0, parent.offset, content[start:end], None, in_objstm=True)
                self.objects[num] = obj
                self.in_order.append(obj)


class _NextFinder:
    """Next occurrence of a literal or regex at increasing positions, remembering its last answer
    so that a scan over many objects stays linear."""

    __slots__ = ("data", "found", "needle", "searched_from")

    def __init__(self, data: bytes, needle: bytes | re.Pattern[bytes]) -> None:
        self.data = data
        self.needle = needle
        self.searched_from = len(data) + 1
        self.found = -1

    def find(self, pos: int) -> int:
        if self.searched_from <= pos and (self.found < 0 or self.found >= pos):
            return self.found
        self.searched_from = pos
        if isinstance(self.needle, bytes):
            self.found = self.data.find(self.needle, pos)
        else:
            match = self.needle.search(self.data, pos)
            self.found = match.start() if match else -1
        return self.found


def _direct_length(body: bytes) -> int | None:
    match = re.search(
        rb"/Length[\x00\t\n\x0c\r ]*(\d{1,12})(?![\x00\t\n\x0c\r ]+\d+[\x00\t\n\x0c\r ]+R)", body
    )
    return int(match.group(1)) if match else None


def text_of(value: Any) -> str | None:
    """Decode a PDF text string (UTF-16BE/UTF-8 BOM or PDFDocEncoding) to ``str``."""
    if isinstance(value, Name):
        return str(value)
    if not isinstance(value, bytes):
        return None
    if value.startswith(b"\xfe\xff"):
        return value[2:].decode("utf-16-be", "replace").replace("\x00", "")
    if value.startswith(b"\xef\xbb\xbf"):
        return value[3:].decode("utf-8", "replace").replace("\x00", "")
    if not value.isascii():
        try:  # no BOM but valid non-ASCII UTF-8: producers that ignore the spec
            return value.decode("utf-8").replace("\x00", "")
        except UnicodeDecodeError:
            pass
    return value.decode("latin-1").translate(PDFDOC_TABLE).replace("\x00", "")


PDFDOC_TABLE = {
    0x18: "\u02d8", 0x19: "\u02c7", 0x1A: "\u02c6", 0x1B: "\u02d9", 0x1C: "\u02dd", 0x1D: "\u02db",
    0x1E: "\u02da", 0x1F: "\u02dc", 0x80: "\u2022", 0x81: "\u2020", 0x82: "\u2021", 0x83: "\u2026",
    0x84: "\u2014", 0x85: "\u2013", 0x86: "\u0192", 0x87: "\u2044", 0x88: "\u2039", 0x89: "\u203a",
    0x8A: "\u2212", 0x8B: "\u2030", 0x8C: "\u201e", 0x8D: "\u201c", 0x8E: "\u201d", 0x8F: "\u2018",
    0x90: "\u2019", 0x91: "\u201a", 0x92: "\u2122", 0x93: "\ufb01", 0x94: "\ufb02", 0x95: "\u0141",
    0x96: "\u0152", 0x97: "\u0160", 0x98: "\u0178", 0x99: "\u017d", 0x9A: "\u0131", 0x9B: "\u0142",
    0x9C: "\u0153", 0x9D: "\u0161", 0x9E: "\u017e", 0xA0: "\u20ac",
}  # fmt: skip
