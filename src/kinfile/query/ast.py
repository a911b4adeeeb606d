"""The query AST: frozen dataclasses, each with the character span it came from.

``span`` is ``(start, end)`` into the query text (end exclusive). Spans are excluded from
equality so that ``parse(unparse(ast)) == ast`` holds for any AST.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Span = tuple[int, int]


@dataclass(frozen=True)
class Term:
    """``modifier:value`` or a bare word (``modifier is None``).

    ``quoted`` records whether the value was written in double quotes (quoted values are literal:
    a quoted ``*`` is not a wildcard, a quoted ``AND`` is a word).
    """

    modifier: str | None
    value: str
    quoted: bool = False
    span: Span = field(default=(0, 0), compare=False)
    value_span: Span = field(default=(0, 0), compare=False)


@dataclass(frozen=True)
class Not:
    child: Node
    span: Span = field(default=(0, 0), compare=False)


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]
    span: Span = field(default=(0, 0), compare=False)


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]
    span: Span = field(default=(0, 0), compare=False)


Node = Term | Not | And | Or


def terms(node: Node) -> list[Term]:
    """Every term of the tree, left to right."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return terms(node.child)
    out: list[Term] = []
    for child in node.children:
        out.extend(terms(child))
    return out
