"""The numpy miner on constructed months: singles, pairs, triples, support, redundancy."""

from __future__ import annotations

import numpy as np

from kinfile.clues.features import vsize_range
from kinfile.clues.matching import Matcher
from kinfile.clues.mining import LABELS, Mined, band_of, mine


def csr(files: list[set[int]]) -> tuple[np.ndarray, np.ndarray]:
    rows = [np.array(sorted(f), dtype=np.int64) for f in files]
    offsets = np.concatenate(([0], np.cumsum([len(r) for r in rows]))).astype(np.int64)
    return offsets, np.concatenate(rows)


def constructed(seed: int = 1, n: int = 6000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    bands = rng.choice(3, size=n, p=[0.5, 0.15, 0.35]).astype(np.int8)
    files = []
    for i in range(n):
        f = set(rng.integers(0, 500, size=15).tolist())  # noise: every band everywhere
        if bands[i] == 2 and i % 10 == 0:
            f.add(1000)  # single P20_PLUS clue
        if bands[i] == 0 and i % 7 == 0:
            f |= {1001, 1002}  # pair: each alone also occurs in other bands
        if bands[i] == 1 and i % 25 == 0:
            f.add(1001)
        if bands[i] == 2 and i % 20 == 0:
            f.add(1002)
        if bands[i] == 1 and i % 3 == 0:
            f |= {2001, 2002, 2003}  # triple for P1_TO_P19
        if bands[i] == 0 and i % 41 == 0:
            f |= {2001, 2002}
        if bands[i] == 0 and i % 43 == 0:
            f |= {2002, 2003}
        if bands[i] == 0 and i % 47 == 0:
            f |= {2001, 2003}
        files.append(f)
    offsets, codes = csr(files)
    return offsets, codes, bands


def by_codes(found: list[Mined]) -> dict[tuple[int, ...], Mined]:
    return {m.codes: m for m in found}


def test_singles_pairs_and_triples_are_found_with_their_counts() -> None:
    offsets, codes, bands = constructed()
    found = by_codes(mine(offsets, codes, bands, min_support=10))
    assert LABELS[found[(1000,)].label] == "P20_PLUS" and found[(1000,)].rate == 1.0
    assert LABELS[found[(1001, 1002)].label] == "P0"
    assert (1001,) not in found and (1002,) not in found
    assert LABELS[found[(2001, 2002, 2003)].label] == "P1_TO_P19"
    assert not {(2001, 2002), (2001, 2003), (2002, 2003), (2001,)} & set(found)
    for m in found.values():  # every clue meets its band's rate and the support
        assert m.support >= 10 and m.in_label / m.support >= 0.98
        present = np.ones(len(bands), dtype=bool)
        for c in m.codes:
            has = np.zeros(len(bands), dtype=bool)
            rows = np.flatnonzero(codes == c)
            has[np.searchsorted(offsets, rows, side="right") - 1] = True
            present &= has
        assert int(present.sum()) == m.support
        assert (
            int((band_of(np.where(bands == 0, 0, np.where(bands == 1, 5, 30)))[present] == m.label).sum())
            == m.in_label
        )
        assert present[m.example]


def test_redundant_conjunctions_and_low_support_are_dropped() -> None:
    offsets, codes, bands = constructed()
    found = mine(offsets, codes, bands, min_support=10)
    clue_sets = [set(m.codes) for m in found]
    for m in found:
        for other in found:
            if other is not m and other.label == m.label:
                assert not set(other.codes) < set(m.codes), (m, other)
    assert all(len(s) <= 3 for s in clue_sets)
    assert not mine(offsets, codes, bands, min_support=100_000)


def test_deterministic_and_band_of() -> None:
    offsets, codes, bands = constructed(seed=3)
    assert mine(offsets, codes, bands) == mine(offsets, codes, bands)
    assert band_of(np.array([0, 1, 19, 20, 70])).tolist() == [0, 1, 1, 2, 2]
    assert mine(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8)) == []


def test_vsize_range_and_matcher() -> None:
    assert [vsize_range(v) for v in (0, 1, 4096, 142854, 265060)] == [
        "0-0",
        "1-1",
        "4096-8191",
        "131072-262143",
        "262144-524287",
    ]
    matcher = Matcher([("a", ["X:1"]), ("b", ["X:1", "Y:2"]), ("c", ["Z:3", "Y:2", "W:4"])])
    assert matcher.match(["X:1", "Y:2", "Q:9"]) == ["a", "b"]
    assert matcher.match(["W:4", "Z:3", "Y:2"]) == ["c"] and matcher.match([]) == []
