"""The ssdeep and TLSH indexes return exactly what brute force returns.

Hashes come from real files: tests/data (always) plus deterministic mutated variants of them
(byte edits, inserted/deleted blocks, appended data) so that families at every distance exist;
the whole shared corpus when it is present.
"""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path

import pydeep
import pytest
import tlsh

from kinfile.similarity import ssdeep_index, tlsh_index
from kinfile.similarity.indexes import FuzzyIndexes
from kinfile.similarity.ssdeep_index import SsdeepIndex, parse_ssdeep
from kinfile.similarity.tlsh_index import TlshIndex, parse_tlsh, similarity_score

DATA = Path(__file__).resolve().parents[1] / "data"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "files"


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    op = rng.random()
    if op < 0.4:
        for _ in range(rng.randint(1, 30)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif op < 0.7:
        at = rng.randrange(len(buf))
        buf[at:at] = rng.randbytes(rng.randint(16, 1024))
    elif op < 0.85 and len(buf) > 4096:
        at = rng.randrange(len(buf) - 2048)
        del buf[at : at + rng.randint(16, 1024)]
    else:
        buf += rng.randbytes(rng.randint(64, 2048))
    return bytes(buf)


@cache
def hashes() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    rng = random.Random(4)
    ssdeeps: list[tuple[str, str]] = []
    tlshes: list[tuple[str, str]] = []
    for path in sorted(DATA.glob("*/*_")):
        data = path.read_bytes()
        if len(data) < 64:
            continue
        family = [data]
        for _ in range(5):
            family.append(mutate(rng.choice(family), rng))
        for i, member in enumerate(family):
            key = f"{path.parent.name}/{path.name}#{i}"
            ssdeeps.append((key, pydeep.hash_buf(member).decode()))
            t = tlsh.hash(member)
            if t and t != "TNULL":
                tlshes.append((key, t))
    return ssdeeps, tlshes


def test_ssdeep_index_equals_brute_force() -> None:
    items, _ = hashes()
    index = SsdeepIndex()
    index.build(items)
    pairs = 0
    for _key, digest in items:
        scores = ssdeep_index.brute_force(digest, items, 1)
        for threshold in (1, 30, 60, 90, 100):
            expected = {k: s for k, s in scores.items() if s >= threshold}
            assert index.search(digest, threshold) == expected, (digest, threshold)
        pairs += len(scores)
    assert pairs > 2 * len(items)  # the variants really are similar to something


def test_ssdeep_incremental_adds_and_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    items, _ = hashes()
    monkeypatch.setattr(ssdeep_index, "MERGE_AT", 500)  # several merges of the delta dict
    index = SsdeepIndex()
    index.build(items[: len(items) // 3])
    for key, digest in items[len(items) // 3 :]:
        index.add(key, digest)
    for _key, digest in items[::3]:
        assert index.search(digest, 1) == ssdeep_index.brute_force(digest, items, 1)


def test_ssdeep_short_and_identical_digests() -> None:
    index = SsdeepIndex()
    index.build([("a", "3:ab:cd"), ("b", "3:ab:cd"), ("c", "3:abcdefgh:ab"), ("bad", "not a digest")])
    assert (
        index.search("3:ab:cd", 1)
        == {"a": 100, "b": 100}
        == ssdeep_index.brute_force(
            "3:ab:cd", [("a", "3:ab:cd"), ("b", "3:ab:cd"), ("c", "3:abcdefgh:ab")], 1
        )
    )
    assert index.search("garbage", 1) == {}
    assert parse_ssdeep("5:abc:def") is None  # not a valid block size
    assert parse_ssdeep("3:aaaaaaab:c") == (3, "aaab", "c")  # runs collapse to three


def test_tlsh_index_equals_brute_force() -> None:
    _, items = hashes()
    index = TlshIndex()
    index.build(items)
    for _key, digest in items:
        for distance in (0, 30, 70, 150, 400):
            assert index.search(digest, distance) == tlsh_index.brute_force(digest, items, distance)


def test_tlsh_incremental_and_l_wraparound() -> None:
    _, items = hashes()
    index = TlshIndex()
    index.build(items[:20])
    for key, digest in items[20:]:
        index.add(key, digest)
    for _key, digest in items[::4]:
        assert index.search(digest, 100) == tlsh_index.brute_force(digest, items, 100)
    # L values 0x01 and 0xFE are 3 apart mod 256 (stored nibble-swapped in the hex)
    base = items[0][1]
    low = base[:4] + "10" + base[6:]
    high = base[:4] + "EF" + base[6:]
    assert parse_tlsh(low)[1] == 0x01 and parse_tlsh(high)[1] == 0xFE  # type: ignore[index]
    pair = [("low", low), ("high", high)]
    small = TlshIndex()
    small.build(pair)
    expected = {"low": 0, "high": tlsh.diff(low, high)}
    assert small.search(low, 60) == tlsh_index.brute_force(low, pair, 60) == expected


def test_tlsh_similarity_score_mapping() -> None:
    assert similarity_score(0) == 1.0
    assert similarity_score(30) == 0.85
    assert similarity_score(70) == 0.65
    assert similarity_score(250) == 0.0


def test_fuzzy_indexes_follow_the_store() -> None:
    items_s, items_t = hashes()
    tl = dict(items_t)
    rows = [(k, s, tl.get(k)) for k, s in items_s]
    table: list[tuple[str, str | None, str | None]] = list(rows[:30])

    def fetch(since: int | None) -> list[tuple[str, str | None, str | None]]:
        return list(table)  # a store whose rows are all "recent": duplicates must be ignored

    indexes = FuzzyIndexes(fetch, refresh_interval=0)
    query = rows[40][1]
    assert rows[40][0] not in indexes.ssdeep(query, 1)
    table.extend(rows[30:])
    assert indexes.ssdeep(query, 1) == ssdeep_index.brute_force(query, [(k, s) for k, s, _t in rows], 1)
    assert len(indexes.ssdeep_index) == len(rows)


@pytest.mark.skipif(not CORPUS.exists(), reason="shared corpus not present")
def test_whole_shared_corpus_exact() -> None:
    ssdeeps, tlshes = [], []
    for path in sorted(CORPUS.iterdir())[:1200]:
        data = path.read_bytes()
        ssdeeps.append((path.name, pydeep.hash_buf(data).decode()))
        t = tlsh.hash(data)
        if t and t != "TNULL":
            tlshes.append((path.name, t))
    s_index, t_index = SsdeepIndex(), TlshIndex()
    s_index.build(ssdeeps)
    t_index.build(tlshes)
    for _k, digest in ssdeeps[::7]:
        assert s_index.search(digest, 1) == ssdeep_index.brute_force(digest, ssdeeps, 1)
    for _k, digest in tlshes[::7]:
        assert t_index.search(digest, 70) == tlsh_index.brute_force(digest, tlshes, 70)
