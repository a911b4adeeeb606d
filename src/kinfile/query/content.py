"""The VTGrep pattern language of ``content:`` queries, and VirusTotal-style hexdump snippets.

Pure: no storage or API imports. :func:`parse_content` turns the raw value text of a
``content:`` term (``Token.value``/``Term.value``, quotes, braces and suffix included) into a
:class:`ContentPattern`; :func:`hexdump_snippet` renders a match the way the snippets endpoint
does.

Syntax
======

* ``"text"``: case-sensitive text. Characters are UTF-8 encoded; the Python escapes ``\\\\``,
  ``\\"``, ``\\'``, ``\\a \\b \\f \\n \\r \\t \\v``, ``\\xHH``, octal ``\\0``..``\\377``, ``\\uXXXX``,
  ``\\UXXXXXXXX`` and ``\\N{name}`` are understood. ``\\xHH`` and octal escapes are **single
  bytes**, as in a Python ``bytes`` literal (``"MZ\\x90"`` is ``4D 5A 90``), while ``\\u``/``\\U``/
  ``\\N`` are characters, UTF-8 encoded (``"\\u00e9"`` is ``C3 A9``). Any other escape is an error.
  An unquoted word (``content:hello``) is read the same way; a word written ``/.../`` asks for a
  regular expression, which VTGrep does not have (:class:`UnsupportedContentQueryError`).
* ``{hex}``: bytes in hex, spaces optional (``{4D5A}``, ``{4D 5A}``); ``??`` is any byte;
  ``4?`` and ``?D`` are nibble wildcards (YARA style); ``[n-m]`` skips n to m bytes, ``[n]``
  exactly n, ``[n-]`` n up to :data:`MAX_JUMP` (1 MiB; a bound above it is an error); a jump can
  neither start nor end the pattern. ``( 41 42 | 43 | 44 ?? )`` are alternatives, which may nest
  (depth :data:`MAX_DEPTH`) and may hold wildcards and jumps.
* An offset suffix ``@N`` or ``@N-M`` (decimal or ``0x`` hex) after the closing quote or brace:
  the match must **start** at an offset in [N, M] (``@N`` means exactly N).

Limits: the raw text is at most :data:`MAX_RAW` characters and the pattern at most
:data:`MAX_PATTERN_BYTES` byte positions (literal and wildcard bytes, every alternative
counted). Malformed patterns raise :class:`InvalidArgumentError` with the span of the offending
characters in the whole query (``span_offset`` is where the raw text starts in the query).

Index plan and selectivity
==========================

``ContentPattern.plan`` says which trigrams (``g = b0 << 16 | b1 << 8 | b2``) a file must hold
to possibly match: a tuple of *requirements*, all of which must hold (AND); a requirement is a
tuple of *alternatives*, one of which must hold (OR); an alternative is a frozenset of trigrams,
all of which must be present (AND). It is built from the fixed runs of the pattern, the maximal
sequences of fully known bytes (a ``??``, a nibble wildcard or a jump ends a run). Alternatives
are expanded together with the runs around them while a stretch of the pattern has at most
:data:`MAX_EXPANSION` (16) combinations, so ``{41 42 (43|44) 45}`` requires ``{ABC, BCE}`` or
``{ABD, BDE}``; past that, each alternative group becomes a requirement of its own. A
requirement with an alternative that holds no trigram cannot restrict anything and is dropped,
so the plan may be empty. The plan never loses a match: every file that matches the pattern
holds, inside the matched bytes themselves, every trigram of at least one alternative of every
requirement.

A pattern is **selective** when at least one requirement has, in *every* alternative, a run of
4 or more consecutive known bytes holding at least two different trigrams (so ``{00 00 00 00}``,
one trigram four bytes long, is not). Unselective patterns are not rejected here:
``selective`` is false and ``unselective_reason`` says why; the search raises
:class:`~kinfile.errors.UnselectiveContentQueryError` with that reason.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from kinfile.query.content_syntax import (
    MAX_DEPTH,
    MAX_JUMP,
    MAX_OFFSET,
    MAX_PATTERN_BYTES,
    MAX_RAW,
    Alt,
    Byte,
    Elem,
    Jump,
    Seq,
    parse_elements,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPANSION",
    "MAX_JUMP",
    "MAX_OFFSET",
    "MAX_PATTERN_BYTES",
    "MAX_RAW",
    "ContentPattern",
    "Plan",
    "Requirement",
    "hexdump_snippet",
    "parse_content",
]

MAX_EXPANSION = 16
BEGIN_MARK = "\x1c"
END_MARK = "\x1d"

Requirement = tuple[frozenset[int], ...]
Plan = tuple[Requirement, ...]
Data = bytes | bytearray | mmap.mmap


@dataclass(frozen=True)
class ContentPattern:
    """A parsed ``content:`` value. See the module docstring for ``plan`` and ``selective``."""

    raw: str
    regex: re.Pattern[bytes]
    literal: bytes | None
    min_offset: int | None
    max_offset: int | None
    min_length: int
    max_length: int
    plan: Plan
    selective: bool
    unselective_reason: str | None
    yara_hex: str = ""  # the pattern as a YARA hex string (patterns with jumps are verified by yara-x)
    has_jumps: bool = False

    def find(self, data: Data, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
        """``(start, end)`` of the leftmost match lying in ``data[start:end]`` that obeys the
        offset suffix (offsets index ``data``), or None."""
        low = max(start, self.min_offset or 0)
        high = len(data) if end is None else min(len(data), end)
        if self.max_offset is not None:
            high = min(high, self.max_offset + self.max_length)
        if self.literal is not None:
            at = data.find(self.literal, low, high)
            return None if at < 0 else (at, at + len(self.literal))
        match = self.regex.search(data, low, high)
        if match is None or (self.max_offset is not None and match.start() > self.max_offset):
            return None
        return match.start(), match.end()


# -- regex, lengths ---------------------------------------------------------------------------
def _regex(seq: Seq) -> str:
    parts: list[str] = []
    for item in seq:
        if isinstance(item, Jump):  # lazy: the shortest match, so snippets mark the least
            exact = item.low == item.high
            parts.append(f".{{{item.low}}}" if exact else f".{{{item.low},{item.high}}}?")
        elif isinstance(item, Alt):
            parts.append("(?:" + "|".join(_regex(branch) for branch in item.branches) + ")")
        elif item.mask == 0xFF:
            parts.append(f"\\x{item.value:02x}")
        elif item.mask == 0:
            parts.append(".")
        elif item.mask == 0xF0:
            parts.append(f"[\\x{item.value:02x}-\\x{item.value | 0x0F:02x}]")
        else:
            parts.append("[" + "".join(f"\\x{high << 4 | item.value:02x}" for high in range(16)) + "]")
    return "".join(parts)


def _lengths(seq: Seq) -> tuple[int, int]:
    low = high = 0
    for item in seq:
        if isinstance(item, Jump):
            low, high = low + item.low, high + item.high
        elif isinstance(item, Alt):
            pairs = [_lengths(branch) for branch in item.branches]
            low, high = low + min(p[0] for p in pairs), high + max(p[1] for p in pairs)
        else:
            low, high = low + 1, high + 1
    return low, high


# -- index plan -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Option:
    grams: frozenset[int]
    strong: bool  # holds a run of known bytes with at least two different trigrams


def _gap(item: Elem) -> bool:
    return isinstance(item, Jump) or (isinstance(item, Byte) and item.mask != 0xFF)


def _values(items: Sequence[Elem]) -> list[int | None]:
    """Known bytes as their value, wildcards and jumps as None (alternatives not expected)."""
    return [item.value if isinstance(item, Byte) and item.mask == 0xFF else None for item in items]


def _option(flat: Sequence[int | None]) -> _Option:
    """The trigrams of the runs of known bytes (None breaks a run) of one linear variant."""
    grams: set[int] = set()
    strong = False
    run: list[int] = []
    for value in [*flat, None]:
        if value is not None:
            run.append(value)
            continue
        run_grams = {run[k] << 16 | run[k + 1] << 8 | run[k + 2] for k in range(len(run) - 2)}
        grams |= run_grams
        strong = strong or len(run_grams) >= 2
        run = []
    return _Option(frozenset(grams), strong)


def _count(seq: Sequence[Elem]) -> int:
    """How many linear variants the alternatives of ``seq`` make, saturated past the limit."""
    total = 1
    for item in seq:
        if isinstance(item, Alt):
            total = min(total * _alt_count(item), MAX_EXPANSION + 1)
    return total


def _alt_count(alt: Alt) -> int:
    return min(sum(_count(branch) for branch in alt.branches), MAX_EXPANSION + 1)


def _variants(seq: Sequence[Elem]) -> list[list[int | None]]:
    out: list[list[int | None]] = [[]]
    for item in seq:
        if isinstance(item, Alt):
            options = [v for branch in item.branches for v in _variants(branch)]
            out = [prefix + option for prefix in out for option in options]
        else:
            for prefix in out:
                prefix.extend(_values([item]))
    return out


def _chunks(seq: Seq) -> Iterator[list[Elem]]:
    """Maximal stretches without a top-level wildcard or jump (trigrams never cross those)."""
    chunk: list[Elem] = []
    for item in seq:
        if _gap(item):
            if chunk:
                yield chunk
            chunk = []
        else:
            chunk.append(item)
    if chunk:
        yield chunk


def _requirements(seq: Seq) -> list[list[_Option]]:
    out: list[list[_Option]] = []
    for chunk in _chunks(seq):
        alts = [k for k, item in enumerate(chunk) if isinstance(item, Alt)]
        if not alts:
            out.append([_option(_values(chunk))])
        i = 0
        while i < len(alts):  # windows of neighbouring groups, with the runs around them
            count, j = _count(chunk[alts[i] : alts[i] + 1]), i
            while j + 1 < len(alts) and count * _count(chunk[alts[j + 1] : alts[j + 1] + 1]) <= MAX_EXPANSION:
                j += 1
                count *= _count(chunk[alts[j] : alts[j] + 1])
            left = alts[i - 1] + 1 if i else 0
            right = alts[j + 1] if j + 1 < len(alts) else len(chunk)
            if count <= MAX_EXPANSION:
                out.append([_option(v) for v in _variants(chunk[left:right])])
            else:  # one group with too many variants: each branch on its own, runs apart
                group = chunk[alts[i]]
                assert isinstance(group, Alt)
                out.append([_option(_values(chunk[left : alts[i]]))])
                out.append([_branch_option(branch) for branch in group.branches])
                out.append([_option(_values(chunk[alts[i] + 1 : right]))])
            i = j + 1
    return out


def _branch_option(branch: Seq) -> _Option:
    """What every match of ``branch`` certainly holds: for each of its requirements, the
    trigrams common to all the alternatives (strong only through single-alternative ones)."""
    grams: set[int] = set()
    strong = False
    for req in _requirements(branch):
        grams |= frozenset.intersection(*(option.grams for option in req))
        strong = strong or (len(req) == 1 and req[0].strong)
    return _Option(frozenset(grams), strong)


def _plan(seq: Seq) -> tuple[Plan, bool]:
    plan: list[Requirement] = []
    selective = False
    for req in _requirements(seq):
        if any(not option.grams for option in req):
            continue  # an alternative without trigrams: the requirement cannot restrict
        selective = selective or all(option.strong for option in req)
        options = tuple(dict.fromkeys(option.grams for option in req))
        if options not in plan:
            plan.append(options)
    return tuple(plan), selective


# -- entry point -----------------------------------------------------------------------------
def parse_content(raw: str, span_offset: int = 0) -> ContentPattern:
    """Parse the raw text of a ``content:`` value (see the module docstring).

    Raises :class:`InvalidArgumentError` (malformed) or :class:`UnsupportedContentQueryError`
    (``/regex/``) with a span shifted by ``span_offset``; never raises for unselective patterns.
    """
    seq, min_offset, max_offset = parse_elements(raw, span_offset)
    min_length, max_length = _lengths(seq)
    plan, selective = _plan(seq)
    known = _values(seq) if not any(isinstance(item, Alt) for item in seq) else [None]
    return ContentPattern(
        raw=raw,
        regex=re.compile(_regex(seq).encode("ascii"), re.DOTALL),
        literal=None if None in known else bytes(v for v in known if v is not None),
        min_offset=min_offset,
        max_offset=max_offset,
        min_length=min_length,
        max_length=max_length,
        plan=plan,
        selective=selective,
        unselective_reason=None if selective else _reason(raw, seq),
        yara_hex=_yara_hex(seq),
        has_jumps=_has_jumps(seq),
    )


def _yara_hex(seq: Seq) -> str:
    """The YARA hex-string form of a pattern (same wildcards, jumps and alternatives)."""
    parts: list[str] = []
    for item in seq:
        if isinstance(item, Jump):
            parts.append(f"[{item.low}]" if item.low == item.high else f"[{item.low}-{item.high}]")
        elif isinstance(item, Alt):
            parts.append("( " + " | ".join(_yara_hex(branch) for branch in item.branches) + " )")
        elif item.mask == 0xFF:
            parts.append(f"{item.value:02X}")
        elif item.mask == 0:
            parts.append("??")
        elif item.mask == 0xF0:
            parts.append(f"{item.value >> 4:X}?")
        else:
            parts.append(f"?{item.value & 0x0F:X}")
    return " ".join(parts)


def _has_jumps(seq: Seq) -> bool:
    return any(
        isinstance(item, Jump) or (isinstance(item, Alt) and any(_has_jumps(b) for b in item.branches))
        for item in seq
    )


def _reason(raw: str, seq: Seq) -> str:
    longest = max((len(run) for run in _top_runs(seq)), default=0)
    return (
        f"content:{raw} is not selective enough: every match must contain a run of at least 4 known "
        f"bytes with two different trigrams (in every alternative); its longest run of known bytes "
        f"outside alternatives is {longest}"
    )


def _top_runs(seq: Seq) -> Iterator[list[Elem]]:
    for chunk in _chunks(seq):
        run: list[Elem] = []
        for item in [*chunk, None]:
            if isinstance(item, Byte):
                run.append(item)
            else:
                yield run
                run = []


# -- snippets ---------------------------------------------------------------------------------
def _marked(cells: list[str], marks: list[bool]) -> str:
    out: list[str] = []
    inside = False
    for cell, mark in zip(cells, marks, strict=True):
        if mark != inside:
            out.append(BEGIN_MARK if mark else END_MARK)
            inside = mark
        out.append(cell)
    if inside:
        out.append(END_MARK)
    return "".join(out)


def hexdump_snippet(
    data: bytes, match_start: int, match_end: int, base_offset: int = 0, context: int = 32
) -> str:
    """VirusTotal snippet lines for the match [match_start, match_end) with ``context`` bytes
    around it, extended to whole 16-byte lines and clipped to ``data``.

    ``data[i]`` is the byte at absolute offset ``base_offset + i``; match offsets and printed
    offsets are absolute. Each line is ``"%08X: "``, the 16 bytes in hex separated by spaces,
    two spaces and the bytes as ASCII (``.`` for non-printable). In both columns the matched
    bytes of each line are wrapped in ``\\x1c`` ... ``\\x1d`` as VirusTotal does: the opening mark
    before the first matched byte, the closing one after the last matched byte's separator
    (``"43 \\x1d65"``, or ``"69\\x1d  "`` at the end of the line). Bytes missing at the start of
    the first line (data not aligned) are blanks; a short last line is padded in hex only.
    """
    end_of_data = base_offset + len(data)
    first = max(base_offset, match_start - context)
    last = min(end_of_data, match_end + context)
    lines: list[str] = []
    for line in range(first - first % 16, last, 16):
        positions = [p for p in range(line, line + 16) if p < end_of_data]
        hex_cells = [f"{data[p - base_offset]:02X}" if p >= base_offset else "  " for p in positions]
        hex_cells = [
            c + (" " if k < 15 else "") for k, c in enumerate(hex_cells + ["  "] * (16 - len(hex_cells)))
        ]
        text_cells = [_printable(data[p - base_offset]) if p >= base_offset else " " for p in positions]
        marks = [
            base_offset <= p < end_of_data and match_start <= p < match_end for p in range(line, line + 16)
        ]
        hex_col = _marked(hex_cells, marks)
        text_col = _marked(text_cells, marks[: len(text_cells)])
        lines.append(f"{line:08X}: {hex_col}  {text_col}")
    return "\n".join(lines)


def _printable(byte: int) -> str:
    return chr(byte) if 0x20 <= byte < 0x7F else "."
