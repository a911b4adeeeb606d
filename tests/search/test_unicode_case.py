"""``name:`` and ``magic:`` fold non-ASCII capitals on both backends: SQLite's built-in
``lower()`` folds ASCII only, so kinfile's SQLite connections replace it with Python's
(``store.unicode_lower``); PostgreSQL folds by the database's locale (a UTF-8 one does)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from kinfile import search
from kinfile.importer import Importer
from kinfile.services import Services
from kinfile.settings import Settings
from kinfile.storage.store import unicode_lower

NAME = "Счёт-Фактура_ÉCLAIR.PDF.exe"


@pytest.fixture
def services(backend_settings: Settings) -> Iterator[Services]:
    found = Services(backend_settings)
    with found.store.engine.connect() as conn:
        folds = conn.execute(text("SELECT lower('ÉСЧ')")).scalar() == "éсч"
    if not folds and found.store.dialect == "postgresql":  # in the C locale: ASCII only
        found.store.close()
        pytest.skip("this PostgreSQL database's locale does not fold non-ASCII letters")
    yield found
    found.store.close()


def _hits(services: Services, query: str) -> list[str]:
    return sorted(h.sha256 for h in search.search(services, query, None, 10).hits)


def test_non_ascii_capitals_are_found_in_lower_case(services: Services) -> None:
    sha = hashlib.sha256(b"unicode-case").hexdigest()
    other = hashlib.sha256(b"ascii").hexdigest()
    reports = [
        {"type": "file", "id": sha, "attributes": {"names": [NAME], "magic": "PE32 ÜBER Ärger"}},
        {"type": "file", "id": other, "attributes": {"names": ["invoice.pdf.exe"], "magic": "PE32"}},
    ]
    summary = Importer(services.store, "t").import_lines([json.dumps(r) for r in reports])
    assert summary.created == 2 and not summary.errors
    assert _hits(services, "name:счёт") == [sha]
    assert _hits(services, "name:фактура_éclair") == [sha]
    assert _hits(services, 'name:"СЧЁТ-ФАКТУРА"') == [sha]
    assert _hits(services, "name:*éclair.pdf.exe") == [sha]
    assert _hits(services, "name:invoice") == [other]
    assert _hits(services, "magic:über") == [sha]
    assert _hits(services, "magic:ärger") == [sha]
    assert _hits(services, "magic:pe32") == sorted([sha, other])


def test_unicode_lower_matches_the_built_in_on_other_values() -> None:
    assert unicode_lower(None) is None
    assert unicode_lower(12) == "12" and unicode_lower(1.5) == "1.5"
    assert unicode_lower("ÀB") == "àb" and unicode_lower("ÉA".encode()) == "éa"


NAMES = [
    "Счёт-Фактура.PDF.exe",
    "СЧЁТ_2024.doc",
    "отчёт.xls",
    "ΤΙΜΟΛΌΓΙΟ.pdf",
    "Überweisung_ÄNDERUNG.zip",
    "facture_été.PDF",
    "invoice.pdf.exe",
]
NAME_QUERIES = {
    "name:счёт": {0, 1},
    "name:чёт": {0, 1, 2},
    'name:"фактура.pdf"': {0},
    "name:τιμολόγιο": {3},
    "name:änderung": {4},
    "name:*été.pdf": {5},
    "name:überweisung_ä*": {4},
    "name:*.pdf": {3, 5},
}


@pytest.mark.parametrize("query", sorted(NAME_QUERIES))
def test_non_ascii_names_on_every_access_path(
    services: Services, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each name: path (rarest trigram's list, per-row probe, merged trigrams, scan) finds the
    same files; on SQLite non-ASCII trigrams are used too (Python's lower-casing on both sides)."""
    from kinfile.query import fields

    shas = [hashlib.sha256(f"name{i}".encode()).hexdigest() for i in range(len(NAMES))]
    reports = [
        {"type": "file", "id": s, "attributes": {"names": [n]}} for s, n in zip(shas, NAMES, strict=True)
    ]
    assert Importer(services.store, "t").import_lines([json.dumps(r) for r in reports]).created == len(NAMES)
    expected = sorted(shas[i] for i in NAME_QUERIES[query])
    value = query.split(":", 1)[1].strip('"')
    grams = fields.query_trigrams(value, "*" in value, ascii_only=services.store.dialect != "sqlite")
    assert grams or services.store.dialect != "sqlite"  # every pattern here has a trigram on SQLite
    assert _hits(services, query) == expected
    monkeypatch.setattr(fields, "TRIGRAM_LIST", 1)
    monkeypatch.setattr(fields, "TRIGRAM_DENSE", 1)
    assert _hits(services, query) == expected
    monkeypatch.setattr(fields, "TRIGRAM_DENSE", 10**9)
    assert _hits(services, query) == expected
    monkeypatch.setattr(fields, "TRIGRAM", 99)
    assert _hits(services, query) == expected
