"""``engines:`` and ``<engine>:`` answer exactly as the detection words say, on both backends
(SQLite: the FTS5 index of storage/avterms.py; PostgreSQL: ``file_av_words`` rows).

The 500 real AVClass label sets of ../shared/vt are imported; every query's hits are compared
with a brute-force reading of each stored report's words (``searchable.extract_av_words``):
exact values, prefixes, suffixes, infixes, after-a-colon matches, engine-specific forms, and
values with punctuation and non-ASCII characters. Then reports are replaced and files deleted,
and the answers follow (FTS5's own integrity check passes).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from kinfile import search
from kinfile.errors import ConfigurationError
from kinfile.importer import Importer
from kinfile.query import fields
from kinfile.services import Services
from kinfile.settings import Settings
from kinfile.storage import avterms, migrations, schema, searchable
from kinfile.storage.store import Store
from tests.engines.helpers import VT_DIR

LABELS = VT_DIR / "av_labels_500.jsonl"
pytestmark = pytest.mark.skipif(not LABELS.is_file(), reason="../shared/vt not present")
QUOTED = re.compile(r"[\s\"()]")  # a value holding these is asked quoted


@pytest.fixture
def labelled(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    monkeypatch.setattr(fields, "ENGINE_NAMES", {*fields.ENGINE_NAMES, "some_engine"})
    services = Services(backend_settings)
    lines = LABELS.read_text().splitlines()
    extra = {  # punctuation, a private-use look-alike free label, non-ASCII, an engine with "_"
        "md5": "0" * 32,
        "sha1": "0" * 40,
        "sha256": "0" * 64,
        "av_labels": [
            ["Some_Engine", "Trojan.Wïn32/Ümlaut%_Test!"],
            ["ESET-NOD32", "a variant of Win32/Ümlaut.B"],
        ],
    }
    summary = Importer(services.store, "test").import_lines([*lines, json.dumps(extra)])
    assert summary.failed == 0 and summary.created == 501
    yield services
    services.close()


def _words(services: Services) -> dict[str, dict[str, str]]:
    """Every stored file's detection words, read from its report (the brute force)."""
    with services.store.engine.connect() as conn:
        shas = list(conn.execute(sa.select(schema.files.c.sha256)).scalars())
    reports = services.store.get_reports(shas)
    return {sha: searchable.extract_av_words(stored.report) for sha, stored in reports.items()}


def _pattern(value: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in value.split("*")), re.DOTALL)


def _expected(words: dict[str, dict[str, str]], value: str, engine: str | None) -> set[str]:
    out = set()
    for sha, found in words.items():
        for word, engines in found.items():
            if engine is not None and f",{engine}," not in engines:
                continue
            if "*" not in value:
                hit = word == value
            else:
                pattern = _pattern(value)
                hit = bool(pattern.fullmatch(word))
                if engine is None and not hit:  # or the rest of a value after one of its colons
                    hit = any(pattern.fullmatch(word[i + 1 :]) for i, c in enumerate(word) if c == ":")
            if hit:
                out.add(sha)
                break
    return out


def _queries(words: dict[str, dict[str, str]], count: int, seed: int) -> list[tuple[str, str | None]]:
    """Values cut from the stored words: whole, prefix*, *suffix, *infix*, pre*fix; some per engine."""
    rng = random.Random(seed)
    pairs = sorted(
        (w, e)
        for found in words.values()
        for w, es in found.items()
        for e in es.strip(",").split(",")
        if e in fields.ENGINE_NAMES  # <engine>: modifiers exist for known engines
    )
    out: list[tuple[str, str | None]] = []
    for word, engine in rng.sample(pairs, count):
        cut = rng.randint(1, max(1, len(word) - 1))
        value = rng.choice(
            [
                word,
                word[:cut] + "*",
                "*" + word[cut:],
                "*" + word[cut // 2 : cut + 2] + "*",
                word[:cut] + "*" + word[-1],
            ]
        )
        if not value.strip("*"):
            value = word
        out.append((value, engine if rng.random() < 0.4 else None))
    return out


def _found(services: Services, value: str, engine: str | None) -> set[str]:
    """Hits of ``<engine or engines>:<value>``, quoted when the value holds a space, quote or
    parenthesis (the callers do not ask such values with wildcards: quoted values are literal)."""
    literal = f'"{value}"' if QUOTED.search(value) else value
    return {h.sha256 for h in search.iter_hits(services, f"{engine or 'engines'}:{literal}")}


def test_answers_equal_the_brute_force(labelled: Services) -> None:
    words = _words(labelled)
    assert len(words) == 501
    checked = 0
    for value, engine in _queries(words, 160, seed=6):
        if QUOTED.search(value) and "*" in value:
            continue
        assert _found(labelled, value, engine) == _expected(words, value, engine), (value, engine)
        checked += 1
    assert checked > 120
    special = [
        ("trojan.wïn32/ümlaut%_test!", None),
        ("ümlaut", None),
        ("*ümlaut%_t*", None),
        ("trojan.wïn32/ümlaut%_test!", "some_engine"),
        ("ümlaut", "eset-nod32"),
        ("ümlaut", "some_engine"),
        ("wïn32*", None),  # after a colon or at the start
        ("%_test*", None),  # LIKE's own wildcards are literal
        ("_*", None),
    ]
    for value, engine in special:
        assert _found(labelled, value, engine) == _expected(words, value, engine), (value, engine)
    assert _found(labelled, "mlaut", "eset-nod32") == {"0" * 64}  # words are ASCII runs
    assert _found(labelled, "trojan.wïn32/ümlaut%_test!", "some_engine") == {"0" * 64}
    assert _found(labelled, "*ümlaut%_t*", None) == {"0" * 64}
    assert _found(labelled, "%_test*", None) == set()


def test_replacing_and_deleting_follow(labelled: Services) -> None:
    store = labelled.store
    words = _words(labelled)
    victim, other = sorted(words)[:2]
    assert _found(labelled, "sinowalx", "microsoft") == set()
    line = {
        "md5": store.get_reports([victim])[victim].md5,
        "sha256": victim,
        "av_labels": [["Microsoft", "Trojan:Win32/Sinowalx.A"]],
    }
    assert Importer(store, "newer").import_lines([json.dumps(line)]).enriched == 1
    assert _found(labelled, "sinowalx", "microsoft") == {victim}
    assert victim in _found(labelled, "sinowal*", None) == _expected(_words(labelled), "sinowal*", None)
    labelled.delete_files([victim, other])
    assert _found(labelled, "sinowalx", "microsoft") == set()
    words = _words(labelled)
    assert victim not in words and other not in words
    for value, engine in _queries(words, 40, seed=7):
        if QUOTED.search(value):
            continue
        assert _found(labelled, value, engine) == _expected(words, value, engine), (value, engine)
    if avterms.uses_terms(store.dialect):
        with store.engine.connect() as conn:
            avterms.check(conn)
            vocabulary = avterms.vocabulary(conn)
        expected = avterms.vocabulary_of(
            {"sha256": sha, "value": w, "engines": e}
            for sha, found in words.items()
            for w, e in found.items()
        )
        assert vocabulary == expected


def test_an_sqlite_without_fts5_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(avterms, "DDL", ("CREATE VIRTUAL TABLE av_terms USING fts5_missing(terms)",))
    store = Store(f"sqlite:///{tmp_path / 'kinfile.db'}")
    with pytest.raises(ConfigurationError, match="no FTS5 module"):
        store.migrate()
    assert "0009_detection_terms" not in migrations.applied(store.engine)  # nothing half-applied
    store.close()
