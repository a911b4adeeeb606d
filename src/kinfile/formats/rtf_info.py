"""RTF ``\\info`` group -> VirusTotal ``summary_info`` and ExifTool tags, for :mod:`kinfile.formats.rtf`."""

from __future__ import annotations

import codecs
import logging
import re
from typing import Any

from kinfile.formats.common import clean_text
from kinfile.formats.rtf_objects import group_end

logger = logging.getLogger(__name__)

MAX_TEXT = 1024
# control word -> (summary_info key, ExifTool tag)
TEXT_FIELDS = {
    b"title": ("title", "Title"),
    b"subject": ("subject", "Subject"),
    b"author": ("author", "Author"),
    b"manager": ("manager", "Manager"),
    b"company": ("company", "Company"),
    b"operator": ("operator", "LastModifiedBy"),
    b"category": ("category", "Category"),
    b"keywords": ("keywords", "Keywords"),
    b"comment": ("comment", "Comment"),
    b"doccomm": ("comments", "Comments"),
    b"hlinkbase": ("hyperlink_base", "HyperlinkBase"),
}
TIME_FIELDS = {
    b"creatim": ("creation_time", "CreateDate"),
    b"revtim": ("revision_time", "ModifyDate"),
    b"printim": ("print_time", "LastPrinted"),
    b"buptim": ("backup_time", "BackupTime"),
}
# control word -> (summary_info key, ExifTool tag, ExifTool value is a string)
NUMBER_FIELDS = {
    b"version": ("version", "RevisionNumber", True),
    b"vern": ("version_number", "InternalVersionNumber", True),
    b"edmins": ("editing_time", "TotalEditTime", False),
    b"nofpages": ("number_of_pages", "Pages", False),
    b"nofwords": ("number_of_words", "Words", False),
    b"nofchars": ("number_of_characters", "Characters", False),
    # VT names \nofcharsws "non_whitespace"; it is the count *with* spaces (ExifTool's name)
    b"nofcharsws": ("number_of_non_whitespace_characters", "CharactersWithSpaces", False),
    b"id": ("id", "InternalIDNumber", False),
}
_TEXT_RE = re.compile(rb"\{\\(" + b"|".join(TEXT_FIELDS) + rb")(?![a-zA-Z]) ?")
_TIME_RE = re.compile(rb"\{\\(" + b"|".join(TIME_FIELDS) + rb")(?![a-zA-Z])([^{}]{0,256})\}")
_TIME_PART_RE = re.compile(rb"\\(yr|mo|dy|hr|min|sec)(\d{1,4})")
_NUMBER_RE = re.compile(rb"\\(" + b"|".join(NUMBER_FIELDS) + rb")(-?\d{1,10})(?![0-9])")
_TOKEN_RE = re.compile(
    rb"\\'([0-9a-fA-F]{2})|\\u(-?\d{1,6}) ?|\\uc(\d) ?|\\([a-zA-Z]{1,32})(-?\d{1,10})? ?"
    rb"|\\(.)|([{}])|([^\\{}]+)"
)


def decode_text(segment: bytes, encoding: str = "cp1252") -> str:
    """Plain text of an RTF fragment: ``\\'hh`` in the document code page, ``\\uN``, escapes.

    Control words are dropped and ``{\\* ...}`` groups skipped; bounded to ``MAX_TEXT`` characters.
    """
    try:
        codecs.lookup(encoding)
    except LookupError:
        encoding = "cp1252"
    parts: list[str] = []
    pending = bytearray()
    skip_depth = -1
    depth = 0
    fallback = 1  # \ucN: characters to skip after \uN
    to_skip = 0
    for match in _TOKEN_RE.finditer(segment[: 16 * MAX_TEXT]):
        hexbyte, unicode_char, uc, _word, _param, symbol, brace, text = match.groups()
        if brace is not None:
            depth += 1 if brace == b"{" else -1
            if depth <= skip_depth:
                skip_depth = -1
            continue
        if skip_depth >= 0:
            continue
        if symbol == b"*":
            skip_depth = depth - 1 if depth > 0 else -1
            if skip_depth >= 0:
                continue
        if uc is not None:
            fallback = int(uc)
        elif unicode_char is not None:
            parts.append(pending.decode(encoding, "replace"))
            pending.clear()
            parts.append(chr(int(unicode_char) % 65536))
            to_skip = fallback
        elif hexbyte is not None:
            if to_skip:
                to_skip -= 1
            else:
                pending.append(int(hexbyte, 16))
        elif symbol is not None and symbol in b"\\{}":
            pending += symbol
        elif symbol == b"~":
            pending += b"\xa0"
        elif text is not None:
            text = text.replace(b"\r", b"").replace(b"\n", b"")
            if to_skip:
                skipped = min(to_skip, len(text))
                text, to_skip = text[skipped:], to_skip - skipped
            pending += text
    parts.append(pending.decode(encoding, "replace"))
    return "".join(parts)[:MAX_TEXT]


def edit_time_span(minutes: int) -> str:
    """ExifTool's ConvertTimeSpan for \\edmins (value in minutes): ``1 minute``, ``2.5 hours``."""
    if minutes == 0:
        return "0"
    seconds = minutes * 60
    if seconds < 3600:
        return f"{minutes} minute{'' if minutes == 1 else 's'}"
    if seconds < 24 * 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def _time_value(body: bytes) -> tuple[str, str] | None:
    parts = {k.decode(): int(v) for k, v in _TIME_PART_RE.findall(body)}
    if not parts.get("yr"):  # absent, or LibreOffice's \yr0 placeholder
        return None
    y, mo, d = parts["yr"], parts.get("mo", 1), parts.get("dy", 1)
    h, mi, s = parts.get("hr", 0), parts.get("min", 0), parts.get("sec", 0)
    return (
        f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}",
        f"{y:04d}:{mo:02d}:{d:02d} {h:02d}:{mi:02d}:{s:02d}",
    )


def summary_info(region: bytes, encoding: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(VT ``summary_info``, ExifTool tags) from the content of the ``{\\info ...}`` group."""
    summary: dict[str, Any] = {}
    exif: dict[str, Any] = {}
    seen: set[str] = set()
    for match in _TEXT_RE.finditer(region):
        key, tag = TEXT_FIELDS[match.group(1)]
        if key in seen:
            continue
        seen.add(key)
        end = group_end(region, match.end())
        text = clean_text(
            decode_text(region[match.end() : max(match.end(), end - 1)], encoding).strip(), MAX_TEXT
        )
        if text:
            summary[key] = exif[tag] = text
    for match in _TIME_RE.finditer(region):
        key, tag = TIME_FIELDS[match.group(1)]
        value = _time_value(match.group(2))
        if value and key not in summary:
            summary[key], exif[tag] = value
    for word, param in _NUMBER_RE.findall(region):
        key, tag, as_text = NUMBER_FIELDS[word]
        if key in summary:
            continue
        number = int(param)
        summary[key] = number
        if word == b"edmins":
            exif[tag] = edit_time_span(number)
        else:
            exif[tag] = str(number) if as_text else number
    return dict(sorted(summary.items())), exif
