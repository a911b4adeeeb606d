"""content: searches end to end on the real test files, against a brute-force scan.

The expected answer of a literal is computed independently: a stored file matches when its own
bytes hold the literal, or the bytes of a file it contains (at any depth, read from
``file_relations``); ``match_in_subfile`` is set exactly when its own bytes do not.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from kinfile import search
from kinfile.errors import InvalidArgumentError, UnselectiveContentQueryError, UnsupportedContentQueryError
from kinfile.ingest import run_ingest
from kinfile.models import RELATIONSHIP_PAIRS
from kinfile.services import Services
from kinfile.settings import load_settings
from kinfile.storage import schema
from tests.conftest import DATA, _fresh_postgres_url


class World:
    def __init__(self, services: Services) -> None:
        self.services = services
        with services.store.engine.connect() as conn:
            self.shas = [
                r[0] for r in conn.execute(sa.select(schema.files.c.sha256).order_by(schema.files.c.sha256))
            ]
            rel = schema.file_relations
            rows = conn.execute(
                sa.select(rel.c.sha256, rel.c.target).where(rel.c.relationship.in_(list(RELATIONSHIP_PAIRS)))
            ).all()
        self.children: dict[str, set[str]] = {}
        for parent, child in rows:
            self.children.setdefault(parent, set()).add(child)
        self.data = {s: services.blobs.read(s) for s in self.shas if services.blobs.exists(s)}

    def below(self, sha: str) -> set[str]:
        found: set[str] = set()
        todo = list(self.children.get(sha, ()))
        while todo:
            c = todo.pop()
            if c not in found:
                found.add(c)
                todo.extend(self.children.get(c, ()))
        return found

    def expected(self, literal: bytes) -> dict[str, bool]:
        """sha256 → match_in_subfile, by brute force."""
        out = {}
        for sha, data in self.data.items():
            if literal in data:
                out[sha] = False
            elif any(literal in self.data.get(c, b"") for c in self.below(sha)):
                out[sha] = True
        return out


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("content")
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'kinfile.db'}"
        urls: Iterator[str] = iter([url])
    else:
        urls = _fresh_postgres_url(request.getfixturevalue("postgres_dsn"))
        url = next(urls)
    settings = load_settings(
        {"home": str(home), "db": url, "magika": "off", "engines": "none", "content_partitions": 3}, env={}
    )
    run_ingest(settings, [str(DATA)], jobs=1)
    services = Services(settings)
    try:
        yield World(services)
    finally:
        services.close()
        for _ in urls:
            pass


def hits(services: Services, query: str, limit: int = 300) -> dict[str, dict]:
    out: dict[str, dict] = {}
    cursor = None
    while True:
        page = search.search(services, query, None, limit, cursor)
        for hit in page.hits:
            assert hit.sha256 not in out, "a file repeated across pages"
            out[hit.sha256] = hit.context
        if not page.cursor:
            return out
        assert page.hits, "a page with a cursor must not be empty"
        cursor = page.cursor


def literals(world: World, rng: random.Random, count: int) -> list[bytes]:
    """Text, binary and UTF-16LE strings cut from stored files, sub-files included."""
    out: list[bytes] = []
    inner = [s for s in world.data if any(s in cs for cs in world.children.values())]
    pool = sorted(world.data)
    while len(out) < count:
        sha = rng.choice(inner if len(out) % 2 else pool)
        data = world.data[sha]
        kind = len(out) % 3
        if kind == 0 and len(data) > 16:
            at = rng.randrange(0, len(data) - 12)
            lit = data[at : at + rng.randint(8, 12)]
        else:
            pattern = rb"[\x20-\x7e]{10,}" if kind == 1 else rb"(?:[\x20-\x7e]\x00){6,}"
            runs = list(re.finditer(pattern, data))
            if not runs:
                continue
            m = rng.choice(runs)
            lit = data[m.start() : m.start() + 12]
        if len(set(lit)) >= 3:  # two distinct trigrams at least: a selective pattern
            out.append(lit)
    return out


def _check(world: World, literal: bytes) -> None:
    query = "content:{" + literal.hex(" ") + "}"
    found = hits(world.services, query)
    expected = world.expected(literal)
    assert set(found) == set(expected), literal
    for sha, context in found.items():
        assert context["confidence"] == 1.0
        assert context["match_in_subfile"] is expected[sha], (literal, sha)


def test_queued_files_are_searched_before_the_index_has_them(world: World) -> None:
    assert world.services.content.status()["pending"] > 0
    for lit in literals(world, random.Random(11), 12):
        _check(world, lit)


def test_indexed_answers_equal_brute_force(world: World) -> None:
    result = world.services.content.update()
    assert result.documents == len(world.data) and world.services.content.status()["pending"] == 0
    only_inside = 0
    for lit in literals(world, random.Random(12), 45):
        _check(world, lit)
        expected = world.expected(lit)
        only_inside += any(expected.values()) and not any(
            lit in world.data[p] for p in expected if expected[p]
        )
    assert only_inside >= 3  # bytes found only inside archives / resources (compressed, encoded)


def test_text_escapes_and_hex_syntax_agree(world: World) -> None:
    world.services.content.update()
    by_text = hits(world.services, 'content:"This program cannot be run in DOS mode"')
    by_hex = hits(world.services, "content:{" + b"This program cannot be run in DOS mode".hex() + "}")
    assert by_text.keys() == by_hex.keys() and len(by_text) >= 5
    mz = hits(world.services, "content:{4D 5A 90 00 03 00 [1-4] 00 ??}@0")
    assert mz and all(
        world.data.get(s, b"").startswith(b"MZ") or ctx["match_in_subfile"] for s, ctx in mz.items()
    )
    wide = hits(world.services, 'content:"T\\x00h\\x00i\\x00s\\x00 \\x00p\\x00"')
    assert set(wide) == set(world.expected("This p".encode("utf-16-le")))
    alternatives = hits(world.services, "content:{50 4B 03 04 (14|0A) 00}@0")
    assert set(alternatives) == {
        s for s, d in world.data.items() if d[:6] in (b"PK\x03\x04\x14\x00", b"PK\x03\x04\x0a\x00")
    }


def test_combined_with_allowed_modifiers_only(world: World) -> None:
    pe_only = hits(world.services, 'content:"!This program" type:peexe')
    everything = hits(world.services, 'content:"!This program"')
    assert pe_only and set(pe_only) < set(everything)
    rows = world.services.store.get_files(sorted(pe_only))
    assert all(r.columns["type_tag"] == "peexe" for r in rows.values())
    small = hits(world.services, 'content:"!This program" size:20KB-')
    assert all(len(world.data[s]) < 20 * 1024 for s in small)
    grouped = hits(world.services, '(content:"!This program" type:peexe) (size:1+ OR tag:foo)')
    assert grouped == pe_only
    with pytest.raises(UnsupportedContentQueryError):
        search.search(world.services, 'content:"!This program" OR type:pe')
    with pytest.raises(UnsupportedContentQueryError):
        search.search(world.services, 'content:"!This program" name:foo')
    with pytest.raises(UnsupportedContentQueryError):
        search.search(world.services, 'NOT content:"!This program"')


@pytest.mark.parametrize(
    "query, error",
    [
        ("content:{4D 5}", InvalidArgumentError),
        ("content:{4D 5A ZZ 00}", InvalidArgumentError),
        ("content:{4D 5A", InvalidArgumentError),
        ('content:""', InvalidArgumentError),
        ("content:{}", InvalidArgumentError),
        ("content:{é9 5A 90 00}", InvalidArgumentError),
        ("content:{" + "41 " * 5000 + "}", InvalidArgumentError),
        ('content:"MZ"', UnselectiveContentQueryError),
        ("content:{00 00 00 00}", UnselectiveContentQueryError),
        ("content:{4D ?? 90 ?? 03}", UnselectiveContentQueryError),
    ],
)
def test_bad_patterns_are_clear_errors(world: World, query: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        search.search(world.services, query)


def test_unicode_text_is_utf8(world: World) -> None:
    assert hits(world.services, 'content:"\\u00e9t\\u00e9 \\u2603 kinfile"') == {}


def test_pages_follow_sha256_order_and_ignore_order(world: World) -> None:
    query = 'content:"This program cannot be run"'
    whole = list(hits(world.services, query))
    paged = list(hits(world.services, query, limit=3))
    assert paged == whole == sorted(whole)
    page = search.search(world.services, query, "size-", 3)
    assert [h.sha256 for h in page.hits] == whole[:3]
    with pytest.raises(InvalidArgumentError):
        search.search(world.services, 'content:"other query!!"', None, 3, page.cursor)


def test_snippet_marks_the_match(world: World) -> None:
    from kinfile.content_search import snippet

    found = hits(world.services, 'content:"This program cannot be run"')
    context = next(iter(found.values()))
    chunks = snippet(world.services, context["snippet"])
    text = "\n".join(chunks)
    assert "\x1c" in text and "\x1d" in text
    assert re.match(r"^[0-9A-F]{8}: ", text)
    marked = re.findall(r"\x1c(.*?)\x1d", text.split("\n")[0] + text)
    assert marked


def test_deleting_a_file_removes_it_from_results(world: World, tmp_path: Path) -> None:
    services = world.services
    services.content.update()
    unique = b"kinfile-content-delete-test \x01\x02\x03\xfe"
    path = tmp_path / "sample.bin"
    path.write_bytes(b"\x00" * 100 + unique + b"\x00" * 100)
    run_ingest(services.settings, [str(path)], jobs=1)
    query = "content:{" + unique.hex() + "}"
    sha = next(iter(hits(services, query)))
    services.content.update()
    assert set(hits(services, query)) == {sha}
    assert services.delete_files([sha]) == [sha]
    assert hits(services, query) == {}
    assert services.store.get_file(sha) is None and not services.blobs.exists(sha)
    services.content.compact(full=True)
    assert hits(services, query) == {}
    assert services.content.status()["tombstones"] == 0


def test_large_file_match_in_a_later_chunk_and_long_jumps(world: World, tmp_path: Path) -> None:
    from kinfile.content_search import snippet

    services = world.services
    rng = random.Random(21)
    data = bytearray(rng.randbytes(2_600_000))
    data[1_500_000:1_500_020] = b"kinfile-chunk-test-1"
    data[2_400_000:2_400_020] = b"kinfile-chunk-test-2"
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(data))
    run_ingest(services.settings, [str(path)], jobs=1)
    services.content.update()
    found = hits(services, 'content:"kinfile-chunk-test-1"')
    assert len(found) == 1
    text = "\n".join(snippet(services, next(iter(found.values()))["snippet"]))
    assert "0016E360: " in text and "\x1c" in text  # 1_500_000 = 0x16E360
    # a 1 MB jump is longer than a chunk's overlap: planned per file, verified whole
    assert (
        len(hits(services, "content:{6b 69 6e 66 69 6c 65 2d 63 68 [800000-1000000] 74 65 73 74 2d 32}")) == 1
    )
    assert hits(services, "content:{6b 69 6e 66 69 6c 65 2d 63 68 [1-3] 74 65 73 74 2d 32}") == {}


def test_compaction_during_queries_changes_no_result(world: World, tmp_path: Path) -> None:
    import threading

    services = world.services
    for n in range(3):  # more small segments to merge
        path = tmp_path / f"extra{n}.bin"
        path.write_bytes(b"kinfile extra segment %d \x00\x01" % n * 50)
        run_ingest(services.settings, [str(path)], jobs=1)
        services.content.update()
    world.data = World(services).data
    world.children = World(services).children
    chosen = literals(world, random.Random(13), 12)
    expected = [world.expected(lit) for lit in chosen]
    before = services.content.status()["segments"]
    assert before > services.content.index.partitions
    errors: list[BaseException] = []

    def merge() -> None:
        try:
            services.content.compact(full=True)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=merge)
    thread.start()
    rounds = 0
    while thread.is_alive() or rounds < 2:
        for lit, want in zip(chosen, expected, strict=True):
            found = hits(services, "content:{" + lit.hex(" ") + "}")
            assert {s: c["match_in_subfile"] for s, c in found.items()} == want
        rounds += 1
    thread.join()
    assert not errors
    assert services.content.status()["segments"] <= services.content.index.partitions


def test_hostile_jumps_are_verified_without_backtracking(world: World, tmp_path: Path) -> None:
    """``A [0-1048576] B [0-1048576] C`` over megabytes of ``A``: a backtracking regex would run
    for hours; yara-x answers in seconds, and the answers stay exact."""
    import time

    services = world.services
    path = tmp_path / "hostile.bin"
    path.write_bytes(b"MZ\x90\x00" * 600_000 + b"BBBB" + b"\x00" * 100 + b"CCCQ")
    run_ingest(services.settings, [str(path)], jobs=1)
    started = time.monotonic()
    absent = hits(services, "content:{4D 5A 90 00 [0-1048576] 42 42 42 42 [0-1048576] 43 43 43 43}")
    present = hits(services, "content:{4D 5A 90 00 [0-1048576] 42 42 42 42 [0-200] 43 43 43 51}")
    assert time.monotonic() - started < 60
    assert absent == {}
    assert len(present) == 1
    context = next(iter(present.values()))
    from kinfile.content_search import snippet

    lines = snippet(services, context["snippet"])[0].split("\n")  # not splitlines: \x1c is a break
    assert sum("\x1c" in line for line in lines) >= 1
    assert len(lines) <= (32 + 256 + 32) // 16 + 2  # a 2 MB match shows its first 256 bytes
