"""Value syntax shared by the modifiers: numeric bounds, sizes, dates, wildcards.

Bounds (documented in docs/query-language.md): ``N`` is exactly N, ``N+`` is **≥ N**
(inclusive) and ``N-`` is **< N** (exclusive), as VirusTotal's documentation words it
("``positives:20+ positives:31-`` = 20 to 30"). Dates: ``YYYY-MM-DD``,
``YYYY-MM-DDTHH:MM:SS`` (UTC) and relative ``7d`` / ``12h`` / ``30m`` (that long before the
query's *now*); without a sign a date means that whole day (or second); ``7d+`` is "in the last
7 days". Sizes: bytes, or ``kb``/``mb``/``gb`` (powers of 1024, any case).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from kinfile.errors import InvalidArgumentError
from kinfile.query.ast import Term

DAY = 86400
SIZE_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
RELATIVE_UNITS = {"d": DAY, "h": 3600, "m": 60}
# ASCII digits only, and few enough that int() and float() stay exact and finite (a bound
# beyond a column's range is resolved by the compiler, query/fields.py _range)
INT_RE = re.compile(r"(-?[0-9]{1,30})([+-]?)")
SIZE_RE = re.compile(r"([0-9]{1,30}(?:\.[0-9]{1,30})?)\s*([kmg]?b?)([+-]?)", re.IGNORECASE)
DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?)?([+-]?)")
RELATIVE_RE = re.compile(r"([0-9]{1,30})([dhm])([+-]?)", re.IGNORECASE)


@dataclass(frozen=True)
class Bound:
    """``low <= x < high`` (either side may be open)."""

    low: int | None
    high: int | None


def _bound(value: int, sign: str, width: int = 1) -> Bound:
    if sign == "+":
        return Bound(value, None)
    if sign == "-":
        return Bound(None, value)
    return Bound(value, value + width)


def bad_value(term: Term, what: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"invalid value {term.value!r} for {term.modifier}: expected {what}", span=term.value_span
    )


def parse_int(term: Term) -> Bound:
    m = INT_RE.fullmatch(term.value.strip())
    if not m:
        raise bad_value(term, "an integer, optionally followed by + or -")
    return _bound(int(m.group(1)), m.group(2))


def parse_size(term: Term) -> Bound:
    m = SIZE_RE.fullmatch(term.value.strip())
    if not m or m.group(2).lower() not in SIZE_UNITS:
        raise bad_value(term, "a size such as 120, 120kb or 15mb, optionally followed by + or -")
    amount = int(float(m.group(1)) * SIZE_UNITS[m.group(2).lower()])
    return _bound(amount, m.group(3))


def parse_date(term: Term, now: int) -> Bound:
    text = term.value.strip()
    rel = RELATIVE_RE.fullmatch(text)
    if rel:
        since = now - int(rel.group(1)) * RELATIVE_UNITS[rel.group(2).lower()]
        # "7d+" = since 7 days ago; "7d-" = before then; "7d" = since 7 days ago as well
        return _bound(since, rel.group(3) or "+")
    m = DATE_RE.fullmatch(text)
    if not m:
        raise bad_value(term, "a date YYYY-MM-DD[THH:MM:SS] or a relative age like 7d, with + or -")
    year, month, day, hour, minute, second, sign = m.groups()
    try:
        when = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=UTC
        )
    except ValueError as exc:
        raise bad_value(term, "a valid calendar date") from exc
    stamp = int(when.timestamp())
    width = DAY if hour is None else (60 if second is None else 1)
    return _bound(stamp, sign, width)


def has_wildcard(term: Term) -> bool:
    return not term.quoted and "*" in term.value


def like_pattern(value: str) -> str:
    """A LIKE pattern (escape ``\\``) from a value whose ``*`` are wildcards."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def contains_pattern(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
