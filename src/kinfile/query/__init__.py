"""The VirusTotal Intelligence query language: lexer → parser → AST → SQLAlchemy Core.

Pure: nothing here imports the store, the API or the CLI. ``parse`` turns text into a frozen
AST with character spans; :mod:`kinfile.query.fields` holds the one table of modifiers and
:mod:`kinfile.query.compiler` turns an AST into a SQLAlchemy clause over that table.
"""

from kinfile.query.ast import And, Node, Not, Or, Term
from kinfile.query.parser import parse, unparse

__all__ = ["And", "Node", "Not", "Or", "Term", "parse", "unparse"]
