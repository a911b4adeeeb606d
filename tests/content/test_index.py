"""The content index on its own: codec, segments, partitions, tombstones and merges."""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path

import numpy as np
import pytest

from kinfile.contentindex.grams import (
    decode_postings,
    decode_varints,
    distinct_grams,
    encode_postings,
    encode_varints,
    gram,
)
from kinfile.contentindex.index import CHUNK, ContentIndex, chunk_starts, chunk_window
from kinfile.contentindex.segment import Segment, SegmentError, write_segment
from tests.conftest import DATA


def _docs() -> list[tuple[str, bytes]]:
    out = []
    for path in sorted(DATA.rglob("*_")):
        data = path.read_bytes()
        if data:
            out.append((hashlib.sha256(data).hexdigest(), data))
    return sorted(dict(out).items())


def _plan(literal: bytes) -> list[list[frozenset[int]]]:
    return [[frozenset(gram(literal[i : i + 3]) for i in range(len(literal) - 2))]]


def _literals(docs: list[tuple[str, bytes]], rng: random.Random, count: int, length: int) -> list[bytes]:
    """``count`` substrings of ``length`` bytes cut at random from random documents."""
    out = []
    for _ in range(count):
        _sha, data = rng.choice(docs)
        at = rng.randrange(0, max(1, len(data) - length))
        out.append(data[at : at + length])
    return out


def _brute(docs: list[tuple[str, bytes]], literal: bytes) -> set[str]:
    return {sha for sha, data in docs if literal in data}


def test_varints_round_trip_every_length() -> None:
    values = np.array([0, 1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**28, 2**34 + 3], dtype=np.int64)
    data, lengths = encode_varints(values)
    assert lengths.tolist() == [1, 1, 1, 2, 2, 3, 3, 4, 5, 5]
    assert decode_varints(data.tobytes()).tolist() == values.tolist()
    docs = np.array([0, 5, 6, 900_000, 3, 4], dtype=np.int64)
    data, per = encode_postings(docs, np.array([0, 4]))
    assert decode_postings(data[: per[0]]).tolist() == [0, 5, 6, 900_000]
    assert decode_postings(data[per[0] :]).tolist() == [3, 4]


def test_distinct_trigrams_match_python_on_real_files() -> None:
    for _sha, data in _docs()[:40]:
        expected = sorted({int.from_bytes(data[i : i + 3], "little") for i in range(len(data) - 2)})
        assert distinct_grams(data).tolist() == expected


def test_segment_lists_exactly_the_documents_holding_a_trigram(tmp_path: Path) -> None:
    docs = _docs()
    write_segment(tmp_path / "s.kfs", [(sha, 0, distinct_grams(data)) for sha, data in docs], 0)
    seg = Segment(tmp_path / "s.kfs")
    assert seg.n_docs == len(docs)
    rng = random.Random(1)
    for _ in range(200):
        sha, data = rng.choice(docs)
        at = rng.randrange(0, len(data) - 3)
        g = data[at : at + 3]
        listed = {seg.sha256(i) for i in seg.postings(gram(g)).tolist()}
        assert listed == {s for s, d in docs if g in d}


def test_a_damaged_segment_is_an_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "bad.kfs").write_bytes(b"KFCONT01\xff\xff\xff\x7fjunk")
    with pytest.raises(SegmentError):
        Segment(tmp_path / "bad.kfs")
    (tmp_path / "empty.kfs").write_bytes(b"")
    with pytest.raises(SegmentError):
        Segment(tmp_path / "empty.kfs")


def test_candidates_never_miss_and_deletes_hide(tmp_path: Path) -> None:
    docs = _docs()
    index = ContentIndex(tmp_path / "ix", partitions=3)
    half = len(docs) // 2
    index.add(docs[:half])
    index.add(docs[half:])
    literals = _literals(docs, random.Random(7), 60, 12)
    for lit in literals:
        assert _brute(docs, lit) <= index.candidates(_plan(lit)).sha256s
    gone = docs[0][0]
    index.delete([gone])
    lit = docs[0][1][:12]
    assert gone not in index.candidates(_plan(lit)).sha256s
    index.add([docs[0]])  # indexed again later: visible again
    assert gone in index.candidates(_plan(lit)).sha256s
    index.delete([gone])
    assert index.compact(full=True) >= 1
    status = index.status()
    assert status["documents"] == len(docs) - 1
    assert status["segments"] <= 3 and status["tombstones"] == 0
    for literal in literals:
        assert _brute(docs[1:], literal) <= index.candidates(_plan(literal)).sha256s
        assert gone not in index.candidates(_plan(literal)).sha256s


def test_merges_during_queries_change_no_answer(tmp_path: Path) -> None:
    """Candidates are a superset of the true matches whatever the segments are while a merge
    swaps them (which superset depends on the segments' list lengths, so only that is fixed)."""
    docs = _docs()
    index = ContentIndex(tmp_path / "ix", partitions=2)
    for i in range(0, len(docs), 8):  # many small segments
        index.add(docs[i : i + 8])
    literals = _literals(docs, random.Random(3), 30, 10)
    truth = [_brute(docs, lit) for lit in literals]
    errors: list[BaseException] = []
    reader = ContentIndex(tmp_path / "ix")  # another process's view: its own caches
    rounds = [0]

    def query() -> None:
        try:
            for _ in range(5):
                for lit, expected in zip(literals, truth, strict=True):
                    assert expected <= reader.candidates(_plan(lit)).sha256s
                rounds[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=query)
    thread.start()
    index.compact(fan_in=2)
    index.compact(full=True)
    thread.join()
    assert not errors and rounds[0] == 5
    assert index.status()["segments"] == 2
    assert index.status()["documents"] == len(docs)
    for lit, expected in zip(literals, truth, strict=True):
        assert expected <= index.candidates(_plan(lit)).sha256s


def test_large_files_are_chunked_and_matches_across_chunk_edges_are_kept(tmp_path: Path) -> None:
    """A 3 MB file is three chunks; a literal straddling the 1 MiB edge or lying in the overlap
    is found in a chunk holding all of it, and only that chunk is a candidate."""
    rng = random.Random(9)
    big = bytearray(rng.randbytes(3 * CHUNK))
    edge = b"kinfile-straddles-the-edge"
    at = CHUNK - len(edge) // 2
    big[at : at + len(edge)] = edge
    tail = b"kinfile-near-the-end!"
    big[-40 : -40 + len(tail)] = tail
    sha = hashlib.sha256(big).hexdigest()
    index = ContentIndex(tmp_path / "ix", partitions=1)
    index.add([(sha, bytes(big))])
    assert index.status()["chunks"] == len(chunk_starts(len(big))) == 3
    edge_chunks = index.candidates(_plan(edge)).chunks[sha]
    assert edge_chunks is not None and 0 in edge_chunks
    start, end = chunk_window(0, len(big))
    assert start <= at and at + len(edge) <= end
    assert index.candidates(_plan(tail)).chunks[sha] == {2}
    assert index.candidates(_plan(edge), per_file=True).chunks == {sha: None}


def test_segments_close_at_the_key_bound_between_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kinfile.contentindex import index as index_module

    monkeypatch.setattr(index_module, "MAX_SEGMENT_KEYS", 20_000)
    rng = random.Random(4)
    docs = _docs()[:30] + [("ab" * 32, rng.randbytes(2 * CHUNK + 100))]  # 2 chunks (the last one + overlap)
    index = ContentIndex(tmp_path / "ix", partitions=1)
    index.add(docs)
    status = index.status()
    assert status["segments"] > 2 and status["documents"] == len(docs)
    for part in range(index.partitions):
        for entry in index.manifest(part)["segments"]:
            shas = index._segment(part, entry["file"]).all_sha256()
            assert shas.count("ab" * 32) in (0, 2)  # all chunks of a file in one segment
    big = docs[-1][1]
    lit = big[CHUNK - 5 : CHUNK + 7]
    assert "ab" * 32 in index.candidates(_plan(lit)).sha256s
    for _sha, data in docs[:30]:
        lit = data[len(data) // 2 : len(data) // 2 + 10]
        assert _brute(docs, lit) <= index.candidates(_plan(lit)).sha256s
