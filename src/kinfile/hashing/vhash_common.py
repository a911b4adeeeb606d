"""Small helpers shared by the per-type vhash feature extractors (pure, no I/O).

A feature is a ``(name, value)`` pair of short strings. Extractors read report attributes that
may come from any kinfile version (or a hand-edited import), so every accessor tolerates a
missing key or a value of the wrong type instead of raising.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from typing import Any

Feature = tuple[str, str]
Extractor = Callable[[dict[str, Any]], Iterable[Feature]]

MAX_VALUES = 256
"""At most this many members of any set feature are considered (VT-style list cap)."""
VERSION_DIGITS = re.compile(r"\d{3,}")
"""Runs of 3+ digits in a name are build/version numbers (python311, msvcr120, pywintypes305);
1-2 digit runs are kept because they usually name a different thing (d3dx10_36, l1-1-0)."""
SEPARATORS = str.maketrans({"|": "/", "=": "-", ",": ";"})


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value[:MAX_VALUES] if isinstance(value, list) else []


def as_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            return int(text, 16) if text.startswith("0x") else int(text)
        except ValueError:
            return 0
    return 0


def as_text(value: Any) -> str:
    """A trimmed, lower-cased string free of the canonical separators ("" when not a string)."""
    if not isinstance(value, str):
        return ""
    return value.strip().lower()[:128].translate(SEPARATORS)


def bucket(count: int) -> str:
    """log2 bucket of a non-negative count: 0 → "0", 1 → "1", 2-3 → "2", 4-7 → "3", ..."""
    return str(max(count, 0).bit_length())


def stem(name: Any) -> str:
    """A file or library name without version digits: ``pywintypes311.dll`` → ``pywintypes#.dll``."""
    return VERSION_DIGITS.sub("#", as_text(name))


def joined(values: Iterable[str]) -> str:
    """A canonical set: distinct non-empty values, sorted, comma-joined."""
    return ",".join(sorted({v for v in values if v}))


def min_hash(values: Iterable[str], k: int = 1) -> str:
    """The ``k`` members with the smallest blake2b value (a MinHash sketch of the set).

    Two sets share their minimum with probability equal to their Jaccard similarity, so one
    member identifies a large set (e.g. a DLL's exports) while tolerating the addition or
    removal of a few members across versions.
    """
    distinct = {v for v in values if v}
    ranked = sorted(
        distinct, key=lambda v: hashlib.blake2b(v.encode("utf-8", "replace"), digest_size=8).digest()
    )
    return ",".join(ranked[:k])


def flag(value: Any) -> str:
    return "1" if value else "0"
