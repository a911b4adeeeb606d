"""The query parser: VirusTotal syntax, spans, errors, and round trips on random input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinfile.errors import InvalidArgumentError
from kinfile.query import And, Not, Or, Term, parse, unparse
from kinfile.query.compiler import check, normalise
from kinfile.query.fields import FIELDS


def test_implicit_and_with_spans() -> None:
    text = "type:pedll imphash:af457a fs:2026-11-01+ positives:5+"
    node = parse(text)
    assert isinstance(node, And)
    assert [(t.modifier, t.value) for t in node.children] == [  # type: ignore[union-attr]
        ("type", "pedll"),
        ("imphash", "af457a"),
        ("fs", "2026-11-01+"),
        ("positives", "5+"),
    ]
    for term in node.children:
        assert isinstance(term, Term)
        start, end = term.span
        assert text[start:end] == f"{term.modifier}:{term.value}"
        assert text[term.value_span[0] : term.value_span[1]] == term.value
    assert node.span == (0, len(text))


def test_operators_precedence_and_parentheses() -> None:
    node = parse("(engines:zbot OR engines:sinowal) NOT (tag:corrupt)")
    assert node == And(
        (
            Or((Term("engines", "zbot"), Term("engines", "sinowal"))),
            Not(Term("tag", "corrupt")),
        )
    )
    # AND binds tighter than OR
    assert parse("a OR b c") == Or((Term(None, "a"), And((Term(None, "b"), Term(None, "c")))))
    assert parse("a AND b") == parse("a b")


def test_quotes_and_escapes() -> None:
    node = parse('ssdeep:"96:abc:def 70" name:"my \\"file\\".exe"')
    assert isinstance(node, And)
    first, second = node.children
    assert first == Term("ssdeep", "96:abc:def 70", quoted=True)
    assert second == Term("name", 'my "file".exe', quoted=True)
    assert parse('"hello world"') == Term(None, "hello world", quoted=True)
    assert parse('"AND"') == Term(None, "AND", quoted=True)  # quoted operators are words


def test_bare_hash_list_is_an_or() -> None:
    md5 = "a" * 32
    sha256 = "b" * 64
    node = normalise(parse(f"{md5} {sha256}"))
    assert isinstance(node, Or)


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("(tag:a", (0, 1)),
        ("tag:a)", (5, 6)),
        ("OR tag:a", (0, 2)),
        ("tag:", (0, 4)),
        ('name:"abc', (5, 9)),
        ("NOT", (3, 3)),
        ("tag:a AND", (9, 9)),
        ("", (0, 0)),
    ],
)
def test_syntax_errors_carry_the_span(text: str, span: tuple[int, int]) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        parse(text)
    assert info.value.span == span


def test_unknown_modifier_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check(parse("type:peexe colour:red"))
    assert info.value.span == (11, 17)
    message = info.value.message
    assert "unknown modifier 'colour'" in message
    for name in ("imphash", "ssdeep", "tlsh", "positives", "tag"):
        assert name in message
    # engine names are modifiers too
    check(parse("microsoft:trojan kaspersky:zbot"))


def test_every_listed_modifier_resolves() -> None:
    for name in FIELDS:
        check(parse(f"{name}:x"))


# -- property tests ---------------------------------------------------------------------------
# no NUL and no surrogate: a query holding one is an error (tested below)
CHARACTERS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
WORDS = st.text(alphabet=CHARACTERS, min_size=1, max_size=12)
MODIFIERS = st.sampled_from([None, "tag", "name", "type", "size", "ssdeep", "similar-to"])


@st.composite
def terms(draw: st.DrawFn) -> Term:
    modifier = draw(MODIFIERS)
    value = draw(WORDS)
    quoted = draw(st.booleans())
    if not quoted:
        # an unquoted value must be one lexer word: no spaces, parentheses, quotes...
        value = "".join(c for c in value if not c.isspace() and c not in '()"\\') or "x"
        if value in ("AND", "OR", "NOT"):
            quoted = True
        if modifier is None and ":" in value:
            value = value.replace(":", "") or "x"
    return Term(modifier, value, quoted)


trees = st.recursive(
    terms(),
    lambda children: st.one_of(
        st.builds(lambda c: Not(c), children),
        st.builds(lambda cs: And(tuple(cs)), st.lists(children, min_size=2, max_size=4)),
        st.builds(lambda cs: Or(tuple(cs)), st.lists(children, min_size=2, max_size=4)),
    ),
    max_leaves=12,
)


def _flatten(node: object) -> object:
    """And/Or nested in the same operator parse back flattened; compare modulo that."""
    if isinstance(node, Not):
        return Not(_flatten(node.child))  # type: ignore[arg-type]
    if isinstance(node, And | Or):
        kind = type(node)
        out: list[object] = []
        for child in node.children:
            flat = _flatten(child)
            out.append(flat)
        return kind(tuple(out))  # type: ignore[arg-type]
    return node


@settings(max_examples=300, deadline=None)
@given(trees)
def test_unparse_then_parse_round_trips(tree: object) -> None:
    text = unparse(tree)  # type: ignore[arg-type]
    assert parse(text) == _flatten(tree)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab:"()\\ *+-AND OR NOT tag:5kb')), max_size=40))
def test_random_input_parses_or_raises_invalid_argument(text: str) -> None:
    try:
        node = parse(text)
    except InvalidArgumentError as exc:
        assert exc.span is not None
        start, end = exc.span
        assert 0 <= start <= end <= len(text)
        return
    assert parse(unparse(node)) == node


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_unicode_never_crashes(text: str) -> None:
    with contextlib.suppress(InvalidArgumentError):
        parse(text)


@pytest.mark.parametrize(("text", "at"), [("tag:a\x00b", 5), ("\x00", 0), ("name:\ud800x", 5)])
def test_nul_and_lone_surrogates_are_errors_with_their_place(text: str, at: int) -> None:
    """No database compares them (PostgreSQL refuses NUL; SQLite's LIKE stops at it and
    matched everything): a clear error on both backends instead of a 500 or a wrong answer."""
    with pytest.raises(InvalidArgumentError) as caught:
        parse(text)
    assert caught.value.span == (at, at + 1)
