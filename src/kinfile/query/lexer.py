"""Tokens of the query language, each with its character span.

* ``(`` and ``)``;
* ``AND``, ``OR``, ``NOT`` (upper case only; ``and`` is an ordinary word, as on VirusTotal);
* words: ``modifier:value`` or a bare word. A value (or a bare word) may be written in double
  quotes, with ``\\"`` and ``\\\\`` as the only escapes: ``name:"my file.exe"``,
  ``ssdeep:"96:abc...:def... 70"``.

A word ends at white space or a parenthesis outside quotes. Errors are
:class:`~kinfile.errors.InvalidArgumentError` with the span of the offending text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kinfile.errors import InvalidArgumentError
from kinfile.query.ast import Span

OPERATORS = frozenset({"AND", "OR", "NOT"})
MODIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
MAX_QUERY = 8192


@dataclass(frozen=True)
class Token:
    kind: str  # "(" ")" "AND" "OR" "NOT" "WORD"
    span: Span
    modifier: str | None = None
    value: str = ""
    quoted: bool = False
    value_span: Span = (0, 0)


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The unescaped string starting at the quote ``text[start]``, and the index after it."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise InvalidArgumentError(f"unterminated quoted string at {start}", span=(start, len(text)))


def _word(text: str, start: int) -> Token:
    i = start
    while i < len(text) and not text[i].isspace() and text[i] not in '()"':
        i += 1
    head = text[start:i]
    colon = head.find(":")
    if colon > 0 and MODIFIER.fullmatch(head[:colon]):
        modifier = head[:colon].lower()
        value_start = start + colon + 1
        if i < len(text) and text[i] == '"' and value_start == i:
            value, end = _quoted(text, i)
            return Token("WORD", (start, end), modifier, value, True, (i, end))
        if value_start == i:
            raise InvalidArgumentError(f"modifier {modifier!r} has no value", span=(start, i))
        return Token("WORD", (start, i), modifier, text[value_start:i], False, (value_start, i))
    if i < len(text) and text[i] == '"':
        raise InvalidArgumentError(f"unexpected quote at {i}", span=(i, i + 1))
    if head in OPERATORS:
        return Token(head, (start, i))
    return Token("WORD", (start, i), None, head, False, (start, i))


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_QUERY:
        raise InvalidArgumentError(f"query longer than {MAX_QUERY} characters", span=(MAX_QUERY, len(text)))
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            tokens.append(Token(ch, (i, i + 1)))
            i += 1
        elif ch == '"':
            value, end = _quoted(text, i)
            tokens.append(Token("WORD", (i, end), None, value, True, (i, end)))
            i = end
        else:
            token = _word(text, i)
            tokens.append(token)
            i = token.span[1]
    return tokens
