"""Recursive-descent parser: tokens → AST, and the inverse :func:`unparse`.

Grammar (``AND`` binds tighter than ``OR``; juxtaposition is an implicit ``AND``)::

    query   := or_expr EOF
    or_expr := and_expr ("OR" and_expr)*
    and_expr:= not_expr (["AND"] not_expr)*
    not_expr:= "NOT" not_expr | atom
    atom    := "(" or_expr ")" | WORD
"""

from __future__ import annotations

from kinfile.errors import InvalidArgumentError
from kinfile.query.ast import And, Node, Not, Or, Term
from kinfile.query.lexer import MODIFIER, OPERATORS, PATTERN_MODIFIERS, Token, tokenize

MAX_DEPTH = 64
MAX_TERMS = 256


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def error(self, message: str, token: Token | None) -> InvalidArgumentError:
        span = token.span if token else (len(self.text), len(self.text))
        return InvalidArgumentError(f"{message} at {span[0]}", span=span)

    def parse(self) -> Node:
        if not self.tokens:
            raise InvalidArgumentError("empty query", span=(0, len(self.text)))
        words = sum(1 for t in self.tokens if t.kind == "WORD")
        if words > MAX_TERMS:
            raise InvalidArgumentError(f"query has more than {MAX_TERMS} terms", span=(0, len(self.text)))
        node = self.or_expr()
        extra = self.peek()
        if extra is not None:
            raise self.error(f"unexpected {extra.kind!r}", extra)
        return node

    def or_expr(self) -> Node:
        first = self.and_expr()
        children = [first]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.take()
            children.append(self.and_expr())
        if len(children) == 1:
            return first
        return Or(tuple(children), (first.span[0], children[-1].span[1]))

    def and_expr(self) -> Node:
        first = self.not_expr()
        children = [first]
        while (tok := self.peek()) is not None and tok.kind not in ("OR", ")"):
            if tok.kind == "AND":
                self.take()
            children.append(self.not_expr())
        if len(children) == 1:
            return first
        return And(tuple(children), (first.span[0], children[-1].span[1]))

    def not_expr(self) -> Node:
        tok = self.peek()
        if tok is not None and tok.kind == "NOT":
            self.take()
            self.enter(tok)
            child = self.not_expr()
            self.depth -= 1
            return Not(child, (tok.span[0], child.span[1]))
        return self.atom()

    def enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"query nested deeper than {MAX_DEPTH}", tok)

    def atom(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.error("unexpected end of query", None)
        if tok.kind == "(":
            self.take()
            self.enter(tok)
            inner = self.or_expr()
            self.depth -= 1
            close = self.peek()
            if close is None or close.kind != ")":
                raise self.error("missing ')' for '(' opened", tok if close is None else close)
            self.take()
            return _respan(inner, (tok.span[0], close.span[1]))
        if tok.kind == "WORD":
            self.take()
            return Term(tok.modifier, tok.value, tok.quoted, tok.span, tok.value_span)
        raise self.error(f"unexpected {tok.kind!r}", tok)


def _respan(node: Node, span: tuple[int, int]) -> Node:
    """A parenthesised group keeps its node but spans the parentheses too."""
    if isinstance(node, And):
        return And(node.children, span)
    if isinstance(node, Or):
        return Or(node.children, span)
    return node


def parse(text: str) -> Node:
    """Parse a VirusTotal Intelligence query. Raises ``InvalidArgumentError`` with a span."""
    return _Parser(text).parse()


def _needs_quotes(value: str) -> bool:
    return value == "" or value in OPERATORS or any(c.isspace() or c in '()"' for c in value)


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _term(term: Term) -> str:
    value = term.value
    if term.modifier in PATTERN_MODIFIERS and not term.quoted:
        return f"{term.modifier}:{value}"  # a content: value is kept raw (quotes, braces, @offset)
    looks_like_modifier = term.modifier is None and ":" in value and MODIFIER.fullmatch(value.split(":")[0])
    text = quote(value) if term.quoted or _needs_quotes(value) or looks_like_modifier else value
    return f"{term.modifier}:{text}" if term.modifier else text


def unparse(node: Node) -> str:
    """Text that parses back to an equal AST (spans aside)."""
    if isinstance(node, Term):
        return _term(node)
    if isinstance(node, Not):
        return f"NOT {_group(node.child)}"
    if isinstance(node, And):
        return " AND ".join(_group(c) for c in node.children)
    return " OR ".join(_group(c) for c in node.children)


def _group(node: Node) -> str:
    return f"({unparse(node)})" if isinstance(node, And | Or) else unparse(node)
