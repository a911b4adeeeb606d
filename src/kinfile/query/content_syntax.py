"""Lexing of ``content:`` patterns into elements: text escapes, hex bytes, jumps, alternatives
and the ``@`` offset suffix. :mod:`kinfile.query.content` documents the language and builds the
regex and the index plan from these elements; this module only reads the syntax.

Every error is an :class:`InvalidArgumentError` whose span is shifted by ``offset``, the index
of the raw value in the whole query.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from kinfile.errors import InvalidArgumentError, UnsupportedContentQueryError

MAX_RAW = 8192
MAX_PATTERN_BYTES = 4096
MAX_JUMP = 1 << 20
MAX_OFFSET = (1 << 63) - 1
MAX_DEPTH = 8


# -- pattern elements -------------------------------------------------------------------------
@dataclass(frozen=True)
class Byte:
    value: int
    mask: int = 0xFF  # 0xFF known, 0xF0 / 0x0F one nibble known, 0x00 any byte


@dataclass(frozen=True)
class Jump:
    low: int
    high: int


@dataclass(frozen=True)
class Alt:
    branches: tuple[tuple[Elem, ...], ...]


Elem = Byte | Jump | Alt
Seq = tuple[Elem, ...]


def _error(message: str, start: int, end: int, offset: int) -> InvalidArgumentError:
    return InvalidArgumentError(f"content: {message}", span=(start + offset, end + offset))


# -- text -------------------------------------------------------------------------------------
_SIMPLE = {"\\": 0x5C, '"': 0x22, "'": 0x27, "a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
_HEX = frozenset("0123456789abcdefABCDEF")
_WIDTH = {"x": 2, "u": 4, "U": 8}


def _char(text: str, i: int, offset: int) -> bytes:
    try:
        return text[i].encode("utf-8")
    except UnicodeEncodeError:
        raise _error(f"character {text[i]!r} cannot be encoded as UTF-8", i, i + 1, offset) from None


def _escape(text: str, i: int, offset: int) -> tuple[bytes, int]:
    """The bytes of the escape starting at the backslash ``text[i]`` and the index after it."""
    kind = text[i + 1 : i + 2]
    if kind in _SIMPLE:
        return bytes([_SIMPLE[kind]]), i + 2
    if kind and kind in "01234567":
        j = i + 1
        while j < min(i + 4, len(text)) and text[j] in "01234567":
            j += 1
        value = int(text[i + 1 : j], 8)
        if value > 0xFF:
            raise _error(f"octal escape {text[i:j]!r} is above \\377", i, j, offset)
        return bytes([value]), j
    if kind in _WIDTH:
        digits = text[i + 2 : i + 2 + _WIDTH[kind]]
        end = i + 2 + len(digits)
        if len(digits) < _WIDTH[kind] or not set(digits) <= _HEX:
            raise _error(f"escape \\{kind} needs {_WIDTH[kind]} hex digits", i, end, offset)
        if kind == "x":
            return bytes([int(digits, 16)]), end
        return _codepoint(int(digits, 16), text[i:end], i, offset), end
    if kind == "N" and text[i + 2 : i + 3] == "{":
        close = text.find("}", i + 3)
        if close > 0:
            try:
                return unicodedata.lookup(text[i + 3 : close]).encode("utf-8"), close + 1
            except KeyError:
                raise _error(
                    f"unknown character name in {text[i : close + 1]!r}", i, close + 1, offset
                ) from None
    raise _error(f"bad escape {text[i : i + 2]!r}", i, min(i + 2, len(text)), offset)


def _codepoint(value: int, source: str, i: int, offset: int) -> bytes:
    if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        raise _error(f"escape {source!r} is not a Unicode character", i, i + len(source), offset)
    return chr(value).encode("utf-8")


def _text(text: str, start: int, end: int, offset: int) -> bytes:
    out = bytearray()
    body = text[:end]
    i = start
    while i < end:
        if body[i] == "\\":
            if i + 1 >= end:
                raise _error("trailing backslash", i, i + 1, offset)
            chunk, i = _escape(body, i, offset)
            out += chunk
        else:
            out += _char(text, i, offset)
            i += 1
    return bytes(out)


# -- hex --------------------------------------------------------------------------------------
_NUMBER = re.compile(r"\s*([0-9]{1,30})\s*")  # bounded: int() of thousands of digits raises


class _HexParser:
    def __init__(self, text: str, start: int, end: int, offset: int) -> None:
        self.text, self.start, self.i, self.end, self.offset = text, start, start, end, offset
        self.bytes = 0
        self.spans: list[tuple[int, int]] = []  # of the top-level items

    def error(self, message: str, start: int, end: int | None = None) -> InvalidArgumentError:
        return _error(message, start, start + 1 if end is None else end, self.offset)

    def skip(self) -> str:
        while self.i < self.end and self.text[self.i].isspace():
            self.i += 1
        return self.text[self.i] if self.i < self.end else ""

    def sequence(self, depth: int) -> Seq:
        items: list[Elem] = []
        while (ch := self.skip()) and ch not in "|)":
            start = self.i
            if ch == "(":
                items.append(self.group(depth + 1))
            elif ch == "[":
                items.append(self.jump())
            else:
                items.append(self.byte())
            if depth == 0:
                self.spans.append((start, self.i))
        return tuple(items)

    def group(self, depth: int) -> Alt:
        opened = self.i
        if depth > MAX_DEPTH:
            raise self.error(f"alternatives nested deeper than {MAX_DEPTH}", opened)
        branches: list[Seq] = []
        while True:
            self.i += 1  # past "(" or "|"
            here = self.i
            branch = self.sequence(depth)
            if not branch:
                raise self.error("empty alternative", here - 1, self.i + 1)
            branches.append(branch)
            ch = self.skip()
            if ch == ")":
                self.i += 1
                return Alt(tuple(branches))
            if ch != "|":
                raise self.error("unbalanced '(': missing ')'", opened, self.end)

    def jump(self) -> Jump:
        start = self.i
        close = self.text.find("]", start, self.end)
        if close < 0:
            raise self.error("unbalanced '[': missing ']'", start, self.end)
        low_text, dash, high_text = self.text[start + 1 : close].partition("-")
        low_match = _NUMBER.fullmatch(low_text)
        high_match = _NUMBER.fullmatch(high_text) if high_text.strip() else None
        if low_match is None or (high_text.strip() and high_match is None):
            raise self.error("jump must be [n], [n-m] or [n-] with decimal n, m", start, close + 1)
        low = int(low_match.group(1))
        high = (int(high_match.group(1)) if high_match else MAX_JUMP) if dash else low
        if max(low, high) > MAX_JUMP:
            raise self.error(f"jump longer than {MAX_JUMP} bytes", start, close + 1)
        if low > high:
            raise self.error(f"jump [{low}-{high}] has n > m", start, close + 1)
        self.i = close + 1
        return Jump(low, high)

    def byte(self) -> Byte:
        start = self.i
        pair = self.text[start : min(start + 2, self.end)]
        for k, ch in enumerate(pair):
            if ch not in _HEX and ch != "?":
                if ch.isspace() or ch in "()[]|":
                    break
                raise self.error(f"unexpected {ch!r} in hex pattern", start + k)
        if len(pair) < 2 or not all(ch in _HEX or ch == "?" for ch in pair):
            raise self.error("odd number of hex digits", start, start + 1)
        self.i += 2
        self.bytes += 1
        if self.bytes > MAX_PATTERN_BYTES:
            raise self.error(f"pattern longer than {MAX_PATTERN_BYTES} bytes", start, self.end)
        high, low = pair[0], pair[1]
        value = (0 if high == "?" else int(high, 16) << 4) | (0 if low == "?" else int(low, 16))
        return Byte(value, (0 if high == "?" else 0xF0) | (0 if low == "?" else 0x0F))

    def parse(self) -> Seq:
        items = self.sequence(0)
        if self.i < self.end:  # stopped on "|" or ")"
            what = "'|' outside parentheses" if self.text[self.i] == "|" else "unbalanced ')'"
            raise self.error(what, self.i)
        if not items:
            raise self.error("empty hex pattern", self.start - 1, self.end + 1)
        for k, where in ((0, "start"), (-1, "end")):
            if isinstance(items[k], Jump):
                raise self.error(f"a jump cannot {where} the pattern", *self.spans[k])
        return items


# -- offsets ----------------------------------------------------------------------------------
_OFFSET = re.compile(r"@(0[xX][0-9a-fA-F]{1,30}|[0-9]{1,30})(?:-(0[xX][0-9a-fA-F]{1,30}|[0-9]{1,30}))?")


def _int(digits: str) -> int:
    return int(digits, 16) if digits[:2].lower() == "0x" else int(digits)


def _offsets(text: str, start: int, offset: int) -> tuple[int | None, int | None]:
    suffix = text[start:]
    if not suffix:
        return None, None
    if not suffix.startswith("@"):
        raise _error(f"unexpected {suffix!r} after the pattern", start, len(text), offset)
    match = _OFFSET.fullmatch(suffix)
    if match is None:
        raise _error(
            f"bad offset {suffix!r}: expected @N or @N-M (decimal or 0x hex)", start, len(text), offset
        )
    low = _int(match.group(1))
    high = low if match.group(2) is None else _int(match.group(2))
    if max(low, high) > MAX_OFFSET:
        raise _error("offset too large", start, len(text), offset)
    if low > high:
        raise _error(f"offset range {suffix!r} has N > M", start, len(text), offset)
    return low, high


# -- entry point ------------------------------------------------------------------------------
def _closing_quote(raw: str) -> int:
    i = 1
    while i < len(raw):
        if raw[i] == "\\":
            i += 2
        elif raw[i] == '"':
            return i
        else:
            i += 1
    return -1


def parse_elements(raw: str, offset: int = 0) -> tuple[Seq, int | None, int | None]:
    """The pattern elements of ``raw`` and its offset bounds (None without a suffix)."""
    seq, suffix = _body(raw, offset)
    return (seq, *_offsets(raw, suffix, offset))


def _body(raw: str, offset: int) -> tuple[Seq, int]:
    if not raw:
        raise _error("empty pattern", 0, 0, offset)
    if len(raw) > MAX_RAW:
        raise _error(f"pattern longer than {MAX_RAW} characters", 0, len(raw), offset)
    if raw[0] == '"':
        close = _closing_quote(raw)
        if close < 0:
            raise _error("unterminated string", 0, len(raw), offset)
        data = _text(raw, 1, close, offset)
        if not data:
            raise _error("empty pattern", 0, close + 1, offset)
        if len(data) > MAX_PATTERN_BYTES:
            raise _error(f"pattern longer than {MAX_PATTERN_BYTES} bytes", 0, close + 1, offset)
        return tuple(Byte(b) for b in data), close + 1
    if raw[0] == "{":
        close = raw.find("}")
        if close < 0:
            raise _error("unbalanced '{': missing '}'", 0, len(raw), offset)
        return _HexParser(raw, 1, close, offset).parse(), close + 1
    if len(raw) >= 2 and raw[0] == raw[-1] == "/":
        raise UnsupportedContentQueryError(
            'content: regular expressions are not supported, use "text" or {hex}',
            span=(offset, offset + len(raw)),
        )
    data = _text(raw, 0, len(raw), offset)
    if len(data) > MAX_PATTERN_BYTES:
        raise _error(f"pattern longer than {MAX_PATTERN_BYTES} bytes", 0, len(raw), offset)
    return tuple(Byte(b) for b in data), len(raw)
