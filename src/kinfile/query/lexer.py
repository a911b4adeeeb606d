"""Tokens of the query language, each with its character span.

* ``(`` and ``)``;
* ``AND``, ``OR``, ``NOT`` (upper case only; ``and`` is an ordinary word, as on VirusTotal);
* words: ``modifier:value`` or a bare word. A value (or a bare word) may be written in double
  quotes, with ``\\"`` and ``\\\\`` as the only escapes: ``name:"my file.exe"``,
  ``ssdeep:"96:abc...:def... 70"``.

A word ends at white space or a parenthesis outside quotes.

Pattern modifiers (:data:`PATTERN_MODIFIERS`, i.e. ``content``) keep their value **raw**: the
token's ``value`` is the exact source text (``value == text[value_span[0]:value_span[1]]``) and
``quoted`` is false, because the pattern language (:mod:`kinfile.query.content`) has escapes of
its own (``\\x00``, ``\\u00e9``...) that the generic unescaping would destroy. Such a value may be

* a quoted string, ended by the first ``"`` not escaped by a backslash: ``content:"MZ\\x90"``;
* a brace group, read up to the first ``}`` and so free to hold spaces and parentheses:
  ``content:{4D 5A ?? 00 [1-100] (6d|6e)}``;

either one directly followed by an offset suffix that belongs to the same token
(``content:"MZ"@0``, ``content:{4D5A}@0x00-0x0A``: ``@`` and everything up to white space, a
parenthesis or a quote), or an ordinary word (``content:hello``). Other modifiers are unchanged.

Errors are :class:`~kinfile.errors.InvalidArgumentError` with the span of the offending text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kinfile.errors import InvalidArgumentError
from kinfile.query.ast import Span

OPERATORS = frozenset({"AND", "OR", "NOT"})
MODIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
MAX_QUERY = 8192
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
PATTERN_MODIFIERS = frozenset({"content"})


@dataclass(frozen=True)
class Token:
    """One token. ``value_span`` covers the value's source text, quotes (and for pattern
    modifiers braces and ``@`` suffix) included."""

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


def _word_end(text: str, i: int) -> int:
    while i < len(text) and not text[i].isspace() and text[i] not in '()"':
        i += 1
    return i


def _pattern(text: str, start: int, modifier: str, value_start: int) -> Token | None:
    """A quoted or braced pattern value kept raw, with its ``@`` offset suffix; None otherwise."""
    opener = text[value_start : value_start + 1]
    if opener == '"':
        end = _quoted(text, value_start)[1]
    elif opener == "{":
        close = text.find("}", value_start + 1)
        if close < 0:
            raise InvalidArgumentError(f"unterminated '{{' at {value_start}", span=(value_start, len(text)))
        end = close + 1
    else:
        return None
    if text[end : end + 1] == "@":
        end = _word_end(text, end + 1)
    return Token("WORD", (start, end), modifier, text[value_start:end], False, (value_start, end))


def _word(text: str, start: int) -> Token:
    i = _word_end(text, start)
    head = text[start:i]
    colon = head.find(":")
    if colon > 0 and MODIFIER.fullmatch(head[:colon]):
        modifier = head[:colon].lower()
        value_start = start + colon + 1
        if modifier in PATTERN_MODIFIERS and (token := _pattern(text, start, modifier, value_start)):
            return token
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
    bad = _UNSTORABLE.search(text)  # no database compares such a value (PostgreSQL refuses them)
    if bad:
        i = bad.start()
        what = "a NUL character (bytes go in content:{00})" if text[i] == "\x00" else "a lone surrogate"
        raise InvalidArgumentError(f"the query holds {what} at {i}", span=(i, i + 1))
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
