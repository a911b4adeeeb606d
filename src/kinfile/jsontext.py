"""JSON text of reports and input lines: orjson where it is exact, ``json`` where it is not.

orjson is ~5x faster than ``json`` both ways, but it refuses to write integers beyond 64 bits,
lone surrogates and non-string keys, refuses to read NaN and Infinity, and reads an integer
beyond 64 bits as a float, silently losing digits. The ``json`` module takes over in each case,
so what is stored and read back is what ``json`` alone would give.

:func:`storable` is the other side: a text taken from a report (which may hold anything JSON
can escape) as a database column or index value can hold it.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Any

import orjson
import zstandard

# A number that may not fit 64 bits has 20 digits or more (2**64 has 20); a text holding such a
# run anywhere (a long fraction, digits in a string) is read by ``json``: slower, never wrong.
# Found by mapping every digit to "0" and the rest to " " (bytes.translate: ~2 µs for 1.5 KB,
# where a regular expression takes ~25).
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_RUN = b"0" * 20


def dumps_report(attrs: dict[str, Any]) -> str:
    """The stored JSON text of a report: compact, keys sorted, by orjson (~25 µs for a 7 KB
    report against ~150 µs with ``json``)."""
    try:
        return orjson.dumps(attrs, default=_jsonable, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(attrs, separators=(",", ":"), sort_keys=True, default=_jsonable)


# A stored report's JSON text from this many characters on is kept compressed where the column
# takes bytes (SQLite): zstd level 1 makes a 6 KB label report ~1.3 KB in ~22 µs and reads it back
# in ~11 µs (zlib level 1: the same size in ~55 and ~20 µs), and the smaller row is written faster
# than compressing takes (docs/BENCHMARKS.md).
PACK_FROM = 512
PACK_LEVEL = 1
_CODECS = threading.local()  # zstd contexts are reused (a new one costs ~25 µs) but not shared


def _codecs() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    found: tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor] | None = getattr(_CODECS, "pair", None)
    if found is None:
        found = _CODECS.pair = (zstandard.ZstdCompressor(level=PACK_LEVEL), zstandard.ZstdDecompressor())
    return found


def pack_report(text: str) -> str | bytes:
    """A report's JSON text as the SQLite column keeps it: from :data:`PACK_FROM` characters on,
    its UTF-8 as one zstd frame (bytes, the content size in its header); shorter, the text."""
    if len(text) < PACK_FROM:
        return text
    return _codecs()[0].compress(text.encode("utf-8", "surrogatepass"))


def _unpack(value: bytes) -> bytes:
    try:
        return _codecs()[1].decompress(value)
    except zstandard.ZstdError as exc:
        raise ValueError(f"stored report is not a zstd frame: {exc}") from None


def unpack_report(value: str | bytes) -> str:
    """The JSON text of a stored report value (:func:`pack_report`'s inverse)."""
    if isinstance(value, str):
        return value
    return _unpack(value).decode("utf-8", "surrogatepass")


def loads_report(value: str | bytes) -> Any:
    """The report of a stored ``files.report`` value: JSON text, or (SQLite) compressed JSON."""
    return _read(value if isinstance(value, str) else _unpack(value))


def _jsonable(value: Any) -> Any:
    """The last resort for a value JSON has no type for (called only for such values): bytes a
    parser left undecoded as text, sets as sorted lists; anything else is an error."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``, by orjson when that gives the same value (~3x faster on a 7 KB
    report). Raises ``ValueError`` with ``json``'s message for text that is not JSON."""
    return _read(text)


def loads_line(text: str | bytes) -> Any:
    """An input line (``import-vt``): :func:`loads`, but a non-finite number (``NaN``,
    ``Infinity``, ``1e999``) is read as ``null``, as a stored report would hold it (orjson writes
    ``null`` for it), so that what is indexed from the parsed line is what the stored text gives."""
    return _read(text, parse_constant=lambda _name: None, parse_float=_finite)


def _read(text: str | bytes, **json_options: Any) -> Any:
    """orjson unless it would not give ``json``'s value (a number beyond 64 bits; NaN, Infinity
    and numbers overflowing a double, which it refuses; invalid JSON, for ``json``'s message);
    ``json`` then, with ``json_options``. Nesting deeper than Python reads is a ``ValueError``."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    if _LONG_RUN not in raw.translate(_DIGITS):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text, **json_options)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _finite(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def storable(text: str) -> str:
    """``text`` as both databases store it: without NUL (PostgreSQL text cannot hold it) and
    with lone surrogates (a JSON ``"\\ud800"`` escape) replaced (no UTF-8 encodes them). The
    report JSON keeps the original; what is indexed is this."""
    if text.isascii():
        return text.replace("\x00", "") if "\x00" in text else text
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text
