"""AST → SQLAlchemy Core boolean clause over ``files`` and its side tables.

:func:`check` resolves every modifier first, so a bad query fails before any index work;
:func:`compile_query` then builds the clause (index fields run their lookups through the
environment while compiling). A query made only of bare hashes (``<md5> <sha256> ...``) is a
multi-hash lookup: the hashes are OR-ed, as on VirusTotal.
"""

from __future__ import annotations

import sqlalchemy as sa

from kinfile.query.ast import And, Node, Not, Or, Term, terms
from kinfile.query.fields import HASH_LENGTHS, HEX, Clause, Env, Field, field_for


def check(node: Node) -> list[tuple[Term, Field]]:
    """Every term with its field; raises ``InvalidArgumentError`` on an unknown modifier."""
    return [(term, field_for(term)) for term in terms(node)]


def is_bare_hash(node: Node) -> bool:
    if not isinstance(node, Term) or node.modifier is not None or node.quoted:
        return False
    value = node.value.strip().lower()
    return len(value) in HASH_LENGTHS and HEX.fullmatch(value) is not None


def normalise(node: Node) -> Node:
    if isinstance(node, And) and all(is_bare_hash(c) for c in node.children):
        return Or(node.children, node.span)
    return node


def compile_query(node: Node, env: Env) -> Clause:
    return _compile(normalise(node), env)


def _compile(node: Node, env: Env) -> Clause:
    if isinstance(node, Term):
        return field_for(node).compile(node, env)
    if isinstance(node, Not):
        return sa.not_(_compile(node.child, env))
    parts = [_compile(child, env) for child in node.children]
    return sa.and_(*parts) if isinstance(node, And) else sa.or_(*parts)
