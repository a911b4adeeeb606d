"""VTGrep ``content:`` patterns: lexing, syntax, regex, offsets, index plan, snippets.

Property tests draw byte strings from real files of tests/data (HTML text, a PE DLL, the
UTF-16 message table of another DLL), turn them into patterns with wildcards, jumps and
alternatives, and check the regex against an independent brute-force matcher and the plan
against the trigrams of every matching file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinfile.errors import InvalidArgumentError, UnsupportedContentQueryError
from kinfile.query import Term, parse
from kinfile.query.content import MAX_JUMP, ContentPattern, hexdump_snippet, parse_content
from kinfile.query.lexer import tokenize
from tests.conftest import DATA

TEXT = (DATA / "detect" / "calc.htm_").read_bytes()
BINARY = (DATA / "foundation" / "wmasf.dll_").read_bytes()
WIDE_FILE = (DATA / "detect" / "msimsg32.dll_").read_bytes()
WIDE = re.search(rb"(?:[\x20-\x7e]\x00){40,}", WIDE_FILE)
assert WIDE is not None
FILES = {"text": TEXT, "binary": BINARY, "wide": WIDE_FILE}
REBOOT = 4240  # "reboot" in UTF-16LE inside msimsg32.dll_


def grams(data: bytes) -> set[int]:
    return {data[i] << 16 | data[i + 1] << 8 | data[i + 2] for i in range(len(data) - 2)}


GRAMS = {name: grams(data) for name, data in FILES.items()}


def satisfies(pattern: ContentPattern, present: set[int]) -> bool:
    return all(any(option <= present for option in req) for req in pattern.plan)


def g(text: bytes) -> int:
    return text[0] << 16 | text[1] << 8 | text[2]


# -- real values ------------------------------------------------------------------------------
def test_alternatives_expand_into_their_neighbours() -> None:
    pattern = parse_content("{41 42 (43|44) 45}")
    assert pattern.plan == ((frozenset({g(b"ABC"), g(b"BCE")}), frozenset({g(b"ABD"), g(b"BDE")})),)
    assert pattern.literal is None
    assert (pattern.min_length, pattern.max_length) == (4, 4)
    assert pattern.regex.fullmatch(b"ABDE") and not pattern.regex.fullmatch(b"ABEE")
    assert pattern.selective  # every alternative has a 4-byte run with two trigrams


def test_text_escapes_are_python_bytes_and_utf8_characters() -> None:
    assert parse_content('"MZ\\x90\\x00"').literal == b"MZ\x90\x00"
    assert parse_content('"\\u00e9t\\u00e9"').literal == "été".encode()
    assert parse_content('"\\N{LATIN SMALL LETTER E WITH ACUTE}\\U0001F600"').literal == "é😀".encode()
    assert parse_content('"été"').literal == b"\xc3\xa9t\xc3\xa9"
    assert parse_content('"a\\\\b\\"c\\n\\t\\r\\0\\101\\x7f\'"').literal == b"a\\b\"c\n\t\r\x00A\x7f'"
    assert parse_content("user@example.com").literal == b"user@example.com"  # bare word: no suffix


def test_hex_pattern_on_a_real_pe_header() -> None:
    pattern = parse_content("{4D 5A 90 00 03 00 00 00}@0")
    assert (pattern.min_offset, pattern.max_offset) == (0, 0)
    assert pattern.literal == BINARY[:8]
    assert pattern.find(BINARY) == (0, 8)
    assert parse_content("{4D5A9000}@1-0x40").find(BINARY) is None
    assert parse_content("{50 45 00 00}@0x00-0x0A").find(BINARY) is None  # PE header is further
    pe = BINARY.find(b"PE\x00\x00")
    assert parse_content(f"{{50 45 00 00}}@{pe}").find(BINARY) == (pe, pe + 4)
    assert parse_content(f"{{50 45 00 00}}@0x0-{pe:#x}").find(BINARY) == (pe, pe + 4)


def test_wildcards_nibbles_and_jumps_on_a_wide_string() -> None:
    reboot = "reboot".encode("utf-16le")
    assert WIDE_FILE[REBOOT : REBOOT + 12] == reboot
    exact = parse_content("{72 00 65 00 62 00 6F 00 6F 00 74 00}")
    assert exact.literal == reboot and exact.find(WIDE_FILE) == (REBOOT, REBOOT + 12)
    wild = parse_content("{72 00 6? 00 ?2 00 [0-4] 74 00}")
    assert wild.literal is None
    assert (wild.min_length, wild.max_length) == (8, 12)
    assert wild.find(WIDE_FILE) == (REBOOT, REBOOT + 12)
    assert wild.regex.fullmatch(b"r\x00e\x00b\x00t\x00") and not wild.regex.fullmatch(b"r\x00u\x00b\x00t\x00")
    assert parse_content("{72 00 [2] 62}").regex.pattern == rb"\x72\x00.{2}\x62"
    assert parse_content("{72 00 [1-] 62}").max_length == 3 + MAX_JUMP


def test_vt_documentation_examples() -> None:
    hola = parse_content("{686F6C6120(6d756e646f|686F6C6120)}")
    assert hola.regex.fullmatch(b"hola mundo") and hola.regex.fullmatch(b"hola hola ")
    assert hola.selective
    jumps = parse_content("{CAFEBABE [1-100] 686F6C61}")
    assert jumps.regex.search(b"\xca\xfe\xba\xbe" + b"x" * 100 + b"hola")
    assert not jumps.regex.search(b"\xca\xfe\xba\xbe" + b"x" * 101 + b"hola")
    assert jumps.plan == (
        (frozenset({0xCAFEBA, 0xFEBABE}),),
        (frozenset({g(b"hol"), g(b"ola")}),),
    )


def test_selectivity() -> None:
    zeros = parse_content("{00 00 00 00}")
    assert not zeros.selective and zeros.plan == ((frozenset({0}),),)
    assert zeros.unselective_reason is not None and "at least 4 known bytes" in zeros.unselective_reason
    loose = parse_content("{4D 5A ?? 00 [1-100] (6d|6e)}")
    assert loose.plan == () and not loose.selective
    assert "longest run of known bytes outside alternatives is 2" in (loose.unselective_reason or "")
    assert not parse_content('"abc"').selective and parse_content('"abcd"').selective
    # one alternative without a 4-byte run spoils the requirement; the literal run saves it
    assert not parse_content("{41 (42 43 44 45|46) ?? 47}").selective
    assert parse_content("{41 42 43 44 ?? (45 46 47 48|49)}").selective
    assert parse_content("{41 42 43 44 ?? (45 46 47 48|49)}").unselective_reason is None


def test_many_alternatives_become_requirements_of_their_own() -> None:
    five = "|".join(f"{b:02X}" for b in range(1, 6))
    pattern = parse_content(f"{{41 42 43 ({five}) 44 45 46 ({five}) 47 48}}")  # 25 > 16 combinations
    assert len(pattern.plan) == 2
    first, second = pattern.plan
    assert (
        len(first) == 5
        and frozenset({g(b"ABC"), g(b"BC\x01"), g(b"C\x01D"), g(b"\x01DE"), g(b"DEF")}) in first
    )
    assert len(second) == 5 and frozenset({g(b"DEF"), g(b"EF\x05"), g(b"F\x05G"), g(b"\x05GH")}) in second
    many = "|".join(f"{b:02X} 61 62 63" for b in range(20))  # 20 branches: no expansion at all
    wide = parse_content(f"{{41 42 43 44 ({many}) 45 46 47}}")
    assert wide.plan[0] == (frozenset({g(b"ABC"), g(b"BCD")}),)
    assert len(wide.plan[1]) == 20 and all(g(b"abc") in option for option in wide.plan[1])
    assert wide.plan[2] == (frozenset({g(b"EFG")}),)
    # a branch keeps what all its own variants share: ABC and FGH, not the C(D|E)F trigrams
    nested = parse_content(f"{{(41 42 43 (44|45) 46 47 48|{many})}}")
    assert nested.plan[0][0] == frozenset({g(b"ABC"), g(b"FGH")})
    assert nested.find(b"xABCEFGHx") == (1, 8) and satisfies(nested, grams(b"ABCEFGH"))


def test_hexdump_snippet_marks_like_virustotal() -> None:
    start, end = REBOOT, REBOOT + 12
    lines = hexdump_snippet(WIDE_FILE, start, end, context=16).split("\n")
    assert lines == [
        "00001080: 57 00 69 00 6E 00 64 00 6F 00 77 00 73 00 20 00  W.i.n.d.o.w.s. .",
        "00001090: \x1c72 00 65 00 62 00 6F 00 6F 00 74 00 \x1d20 00 74 00  \x1cr.e.b.o.o.t.\x1d .t.",
        "000010A0: 6F 00 20 00 63 00 6F 00 6D 00 70 00 6C 00 65 00  o. .c.o.m.p.l.e.",
    ]
    # a match across a line boundary is closed at the end of the line and reopened
    across = hexdump_snippet(WIDE_FILE, 0x109E, 0x10A2, context=0).split("\n")
    assert across == [
        "00001090: 72 00 65 00 62 00 6F 00 6F 00 74 00 20 00 \x1c74 00\x1d  r.e.b.o.o.t. .\x1ct.\x1d",
        "000010A0: \x1c6F 00 \x1d20 00 63 00 6F 00 6D 00 70 00 6C 00 65 00  \x1co.\x1d .c.o.m.p.l.e.",
    ]
    # a window of the file: absolute offsets, blanks before the window, short last line
    window = WIDE_FILE[REBOOT - 3 : REBOOT + 14]
    lines = hexdump_snippet(window, start, end, base_offset=REBOOT - 3, context=8).split("\n")
    assert lines == [
        "00001080:                                        00 20 00  " + " " * 13 + ". .",
        "00001090: \x1c72 00 65 00 62 00 6F 00 6F 00 74 00 \x1d20 00" + " " * 6 + "  \x1cr.e.b.o.o.t.\x1d .",
    ]
    assert hexdump_snippet(b"", 0, 0) == ""


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "span", "message"),
    [
        ("{4D 5}", (4, 5), "odd number of hex digits"),
        ("{4D5}", (3, 4), "odd number of hex digits"),
        ("{4D 5Z}", (5, 6), "unexpected 'Z'"),
        ("{4D é1}", (4, 5), "unexpected 'é'"),
        ("{4D (5A 6B}", (4, 10), "missing ')'"),
        ("{4D 5A)}", (6, 7), "unbalanced ')'"),
        ("{4D | 5A}", (4, 5), "'|' outside parentheses"),
        ("{4D 5A", (0, 6), "missing '}'"),
        ("{}", (0, 2), "empty hex pattern"),
        ("{  }", (0, 4), "empty hex pattern"),
        ('""', (0, 2), "empty pattern"),
        ("", (0, 0), "empty pattern"),
        ("{4D (|5A)}", (4, 6), "empty alternative"),
        ("{4D [5-2] 5A}", (4, 9), "n > m"),
        ("{4D [x] 5A}", (4, 7), "jump must be"),
        ("{4D [5 5A}", (4, 9), "missing ']'"),
        ("{4D [2000000] 5A}", (4, 13), "jump longer than"),
        ("{[2] 4D}", (1, 4), "cannot start"),
        ("{4D [2-]}", (4, 8), "cannot end"),
        ("{" + "(" * 9 + "41" + ")" * 9 + "}", (9, 10), "nested deeper"),
        ('"abc\\q"', (4, 6), "bad escape '\\\\q'"),
        ('"abc\\x4"', (4, 7), "needs 2 hex digits"),
        ('"\\777"', (1, 5), "above"),
        ('"\\ud800"', (1, 7), "not a Unicode character"),
        ('"\\N{NO SUCH NAME}"', (1, 17), "unknown character name"),
        ('"abc', (0, 4), "unterminated string"),
        ('"abc"@', (5, 6), "bad offset"),
        ('"abc"@0x', (5, 8), "bad offset"),
        ('"abc"@5-2', (5, 9), "N > M"),
        ('"abc"@-5', (5, 8), "bad offset"),
        ("{41}x", (4, 5), "unexpected 'x' after the pattern"),
        ("{" + "41 " * 4097 + "}", (12289, 12290), "longer than 8192 characters"),
        ("a" * 4097, (0, 4097), "longer than 4096 bytes"),
        ('"' + "a" * 4097 + '"', (0, 4099), "longer than 4096 bytes"),
    ],
)
def test_malformed_patterns_name_the_problem_and_its_span(
    raw: str, span: tuple[int, int], message: str
) -> None:
    if len(raw) > 8192:
        span = (0, len(raw))
    with pytest.raises(InvalidArgumentError) as info:
        parse_content(raw)
    assert message in info.value.message
    assert info.value.span == span
    with pytest.raises(InvalidArgumentError) as shifted:
        parse_content(raw, span_offset=100)
    assert shifted.value.span == (span[0] + 100, span[1] + 100)


def test_regular_expressions_are_unsupported() -> None:
    with pytest.raises(UnsupportedContentQueryError) as info:
        parse_content("/virustotal(.org|.com)/", span_offset=8)
    assert info.value.span == (8, 31) and info.value.vt_code == "UnsupportedContentQueryError"


def test_errors_point_into_the_whole_query() -> None:
    text = "type:peexe content:{4D 5A 9} size:10kb+"
    term = parse(text).children[1]  # type: ignore[union-attr]
    assert isinstance(term, Term) and term.value == "{4D 5A 9}"
    assert text[term.value_span[0] : term.value_span[1]] == term.value
    with pytest.raises(InvalidArgumentError) as info:
        parse_content(term.value, term.value_span[0])
    assert info.value.span is not None and text[info.value.span[0] : info.value.span[1]] == "9"


# -- lexer ------------------------------------------------------------------------------------
def test_lexer_keeps_pattern_values_raw_with_their_suffix() -> None:
    text = 'content:{4D 5A ?? 00 [1-100] (6d|6e)}@0x00-0x0A type:peexe CONTENT:"a\\x00 \\"b\\""@0-10'
    first, second, third = tokenize(text)
    assert (first.modifier, first.value, first.quoted) == (
        "content",
        "{4D 5A ?? 00 [1-100] (6d|6e)}@0x00-0x0A",
        False,
    )
    assert first.span == (0, 47) and first.value_span == (8, 47)
    assert (second.modifier, second.value) == ("type", "peexe")
    assert third.modifier == "content" and third.value == '"a\\x00 \\"b\\""@0-10'
    assert text[third.value_span[0] : third.value_span[1]] == third.value
    assert third.span == (59, len(text))
    assert parse_content(third.value).literal == b'a\x00 "b"'


def test_lexer_groups_parentheses_and_leaves_other_modifiers_alone() -> None:
    tokens = tokenize('(content:{41 42 43 44} OR content:"abcd") name:"foo"@0 content:hello')
    assert [t.kind for t in tokens] == ["(", "WORD", "OR", "WORD", ")", "WORD", "WORD", "WORD"]
    assert tokens[1].value == "{41 42 43 44}" and tokens[3].value == '"abcd"'
    assert (tokens[5].value, tokens[5].quoted, tokens[6].value) == ("foo", True, "@0")  # as before
    assert (tokens[7].value, tokens[7].value_span) == ("hello", (63, 68))
    assert tokenize('content:"MZ"@0 x')[0].value == '"MZ"@0'


@pytest.mark.parametrize(
    ("text", "span"),
    [("content:{4D 5A", (8, 14)), ('x content:"abc', (10, 14)), ("content:{4D (5A) ?? [1-", (8, 23))],
)
def test_lexer_unterminated_pattern_values(text: str, span: tuple[int, int]) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        tokenize(text)
    assert info.value.span == span


# -- properties on real bytes -----------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    kind: str  # "byte" | "jump" | "alt"
    value: int = 0
    mask: int = 0xFF
    low: int = 0
    high: int = 0
    branches: tuple[tuple[Item, ...], ...] = ()


def render(spec: tuple[Item, ...]) -> str:
    parts = []
    for item in spec:
        if item.kind == "jump":
            parts.append(f"[{item.low}]" if item.low == item.high else f"[{item.low}-{item.high}]")
        elif item.kind == "alt":
            parts.append("(" + " | ".join(render(b) for b in item.branches) + ")")
        else:
            hi = "?" if not item.mask & 0xF0 else f"{item.value >> 4:X}"
            lo = "?" if not item.mask & 0x0F else f"{item.value & 0xF:x}"
            parts.append(hi + lo)
    return " ".join(parts)


def ends(spec: tuple[Item, ...], data: bytes, start: int) -> set[int]:
    """Brute force: every end of a match of ``spec`` starting at ``start``."""
    positions = {start}
    for item in spec:
        after: set[int] = set()
        for q in positions:
            if item.kind == "byte":
                if q < len(data) and data[q] & item.mask == item.value & item.mask:
                    after.add(q + 1)
            elif item.kind == "jump":
                after.update(p for p in range(q + item.low, q + item.high + 1) if p <= len(data))
            else:
                for branch in item.branches:
                    after |= ends(branch, data, q)
        positions = after
    return positions


@st.composite
def specs(draw: st.DrawFn, source: bytes, depth: int = 0) -> tuple[Item, ...]:
    """A pattern that matches ``source`` exactly (alternatives add random decoy branches)."""
    items: list[Item] = []
    i = 0
    while i < len(source):
        kind = draw(st.sampled_from(["byte"] * 6 + ["any", "high", "low", "jump", "alt"]))
        take = min(draw(st.integers(1, 4)), len(source) - i)
        if kind == "jump" and items and i + take < len(source):
            low, high = draw(st.integers(0, take)), draw(st.integers(take, take + 4))
            items.append(Item("jump", low=low, high=high))
        elif kind == "alt" and depth < 2:
            true = draw(specs(source[i : i + take], depth + 1))
            many = draw(st.sampled_from([3, 3, 20]))  # 20: past the expansion limit
            decoys = draw(st.lists(st.binary(min_size=1, max_size=4), min_size=1, max_size=many))
            branches = [true, *(tuple(Item("byte", b) for b in d) for d in decoys)]
            items.append(Item("alt", branches=tuple(draw(st.permutations(branches)))))
        else:
            take = 1
            mask = {"any": 0, "high": 0xF0, "low": 0x0F}.get(kind, 0xFF)
            items.append(Item("byte", source[i] & mask, mask))
        i += take
    return tuple(items)


SOURCES = st.sampled_from(
    [("text", 0, len(TEXT)), ("binary", 0, len(BINARY)), ("wide", WIDE.start(), WIDE.end())]
)


@st.composite
def slices(draw: st.DrawFn, shortest: int, longest: int) -> tuple[bytes, int, int]:
    """A real file and a slice ``(start, length)`` of it: HTML text, PE bytes or UTF-16 text."""
    name, low, high = draw(SOURCES)
    length = draw(st.integers(shortest, longest))
    return FILES[name], draw(st.integers(low, high - length)), length


@settings(max_examples=250, deadline=None)
@given(st.data())
def test_hex_patterns_from_real_bytes(data: st.DataObject) -> None:
    blob, start, length = data.draw(slices(3, 32))
    spec = data.draw(specs(blob[start : start + length]))
    lo = data.draw(st.integers(max(0, start - 50), start))
    hi = data.draw(st.integers(start, start + 50))
    suffix = data.draw(st.sampled_from(["", f"@{start}", f"@{lo}-{hi}", f"@{lo:#x}-{hi:#X}"]))
    pattern = parse_content("{" + render(spec) + "}" + suffix)
    # (a) the pattern matches where it was taken from, within the announced lengths
    match = pattern.regex.match(blob, start)
    assert match is not None
    assert pattern.min_length <= match.end() - start <= pattern.max_length
    found = pattern.find(blob, start if not suffix else 0)
    assert found is not None and (not suffix or found[0] <= start)
    # (b) no false negatives: the matched bytes themselves hold the plan, in every file it matches
    assert satisfies(pattern, grams(blob[match.start() : match.end()]))
    for other, content in FILES.items():
        if pattern.find(content) is not None:
            assert satisfies(pattern, GRAMS[other]), other
    # (c) regex against brute force around the source, and find() against the offset rule
    for p in range(max(0, start - 24), min(len(blob), start + 24)):
        brute = ends(spec, blob, p)
        got = pattern.regex.match(blob, p)
        assert (got is not None) == bool(brute), p
        assert got is None or got.end() in brute
    if suffix:
        first = next((p for p in range(lo, hi + 1) if ends(spec, blob, p)), None)
        if suffix == f"@{start}":
            first = start
        assert (found[0] if found else None) == first


def escape_byte(byte: int, choice: int) -> str:
    if byte in b'"\\':
        return "\\" + chr(byte)
    if 0x20 <= byte < 0x7F and choice == 0:
        return chr(byte)
    if byte in b"\n\t\r" and choice == 1:
        return {10: "\\n", 9: "\\t", 13: "\\r"}[byte]
    return f"\\{byte:03o}" if choice == 2 else f"\\x{byte:02x}"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_text_patterns_from_real_bytes(data: st.DataObject) -> None:
    blob, start, length = data.draw(slices(1, 40))
    source = blob[start : start + length]
    raw = '"' + "".join(escape_byte(b, data.draw(st.integers(0, 3))) for b in source) + '"'
    token = tokenize(f"content:{raw}@{start} type:peexe")[0]  # the lexer finds the same end
    assert token.value == f"{raw}@{start}"
    pattern = parse_content(token.value)
    assert pattern.literal == source
    assert pattern.find(blob) == (start, start + length)
    assert satisfies(pattern, grams(source))
    assert pattern.selective == (len(grams(source)) >= 2)
    assert (pattern.regex.search(blob) is None) == (blob.find(source) < 0)


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec="utf-8"), min_size=1, max_size=20), st.data())
def test_unicode_text_is_utf8(text: str, data: st.DataObject) -> None:
    def char(c: str) -> str:
        style = data.draw(st.integers(0, 2))
        if c in '"\\':
            return "\\" + c
        if style == 1 and ord(c) <= 0xFFFF:
            return f"\\u{ord(c):04x}"
        return f"\\U{ord(c):08X}" if style == 2 else c

    assert parse_content('"' + "".join(char(c) for c in text) + '"').literal == text.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(list('{}()[]|?@-x0123456789aAfF "\\\t')), max_size=30))
def test_random_patterns_parse_or_raise_with_a_span(raw: str) -> None:
    try:
        pattern = parse_content(raw, 7)
    except InvalidArgumentError as exc:
        assert exc.span is not None and 7 <= exc.span[0] <= exc.span[1] <= 7 + max(len(raw), 1)
        return
    assert pattern.min_length >= 1 and pattern.min_length <= pattern.max_length


def test_snippet_columns_stay_aligned() -> None:
    window = WIDE_FILE[REBOOT - 3 : REBOOT + 14]
    for line in hexdump_snippet(window, REBOOT, REBOOT + 12, base_offset=REBOOT - 3).split("\n"):
        plain = line.replace("\x1c", "").replace("\x1d", "")
        assert plain[10 + 47 : 10 + 49] == "  " and len(plain) <= 10 + 49 + 16
