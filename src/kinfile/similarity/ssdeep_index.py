"""The exact ssdeep index: every 7-gram of both signature parts, keyed by its block size.

Why it is exact (libfuzzy ``fuzzy.c``, SIMILARITY_NOTES §1.1-1.2): ``compare(a, b)`` is 0 unless
the block sizes are equal or one is twice the other, and then it scores one *pair of
signatures at the same block size* (``sig1``@b against ``sig1``@b or ``sig2``@2b against
``sig1``@2b...), which is 0 unless those two strings share a 7-character substring after runs
of more than 3 identical characters are collapsed to 3. Indexing every 7-gram of ``sig1``
under ``b`` and of ``sig2`` under ``2b`` and looking up the query's grams the same way therefore
finds every candidate that can score above 0 (block sizes b, 2b and b/2 are covered by the
keys). Identical digests score 100 even when shorter than 7 characters: a small exact map
covers those. Candidates are then rescored with the real ``pydeep.compare``.

Layout: a sorted ``uint64`` key array (``blocksize_index << 42 | gram``) with a parallel
``uint32`` row array (searchsorted lookups), plus a dict for rows added since the last merge.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 1
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
GRAM = 7
SIG_MAX = 64
RUNS = re.compile(r"(.)\1{3,}")
DIGEST = re.compile(r"(\d+):([A-Za-z0-9+/]*):([A-Za-z0-9+/]*)(?:,.*)?")
LUT = np.zeros(256, dtype=np.uint64)
for _i, _c in enumerate(ALPHABET):
    LUT[ord(_c)] = _i
BUILD_CHUNK = 50_000
MERGE_AT = 200_000  # postings in the delta dict before it is merged into the arrays


def parse_ssdeep(digest: str) -> tuple[int, str, str] | None:
    """``(blocksize, sig1, sig2)`` with runs collapsed, or ``None`` when not an ssdeep digest."""
    m = DIGEST.fullmatch(digest.strip())
    if not m:
        return None
    blocksize = int(m.group(1))
    if blocksize < 3 or blocksize % 3 or (blocksize // 3) & (blocksize // 3 - 1):
        return None
    return blocksize, RUNS.sub(r"\1\1\1", m.group(2)), RUNS.sub(r"\1\1\1", m.group(3))


def _bs_index(blocksize: int) -> int:
    return (blocksize // 3).bit_length() - 1


def _gram_int(gram: str) -> int:
    value = 0
    for ch in gram:
        value = (value << 6) | ALPHABET.index(ch)
    return value


def digest_keys(parsed: tuple[int, str, str]) -> set[int]:
    """The index keys of one parsed digest (used for queries and incremental adds)."""
    blocksize, sig1, sig2 = parsed
    keys: set[int] = set()
    for index, sig in ((_bs_index(blocksize), sig1), (_bs_index(blocksize) + 1, sig2)):
        for i in range(len(sig) - GRAM + 1):
            keys.add((index << 42) | _gram_int(sig[i : i + GRAM]))
    return keys


def _bulk_keys(indexes: np.ndarray, sigs: list[str], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised keys of many signatures: a (N, 64) table of 6-bit values, 7 shifted adds."""
    n = len(sigs)
    if n == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint32)
    buf = "".join(s[:SIG_MAX].ljust(SIG_MAX, "A") for s in sigs).encode("ascii")
    table = LUT[np.frombuffer(buf, dtype=np.uint8)].reshape(n, SIG_MAX)
    lengths = np.fromiter((min(len(s), SIG_MAX) for s in sigs), dtype=np.int64, count=n)
    width = SIG_MAX - GRAM + 1
    grams = np.zeros((n, width), dtype=np.uint64)
    for j in range(GRAM):
        grams = (grams << np.uint64(6)) | table[:, j : j + width]
    valid = np.arange(width)[None, :] + GRAM <= lengths[:, None]
    keys = (indexes.astype(np.uint64)[:, None] << np.uint64(42)) | grams
    return keys[valid], np.broadcast_to(rows[:, None], (n, width))[valid].astype(np.uint32)


class SsdeepIndex:
    """Rows are ``(sha256, digest)``; :meth:`search` returns ``{sha256: score}``."""

    def __init__(self) -> None:
        self.sha256s: list[str] = []
        self.digests: list[str] = []
        self.keys = np.zeros(0, np.uint64)
        self.rows = np.zeros(0, np.uint32)
        self.delta: dict[int, list[int]] = defaultdict(list)
        self.delta_postings = 0
        self.short: dict[tuple[int, str, str], list[int]] = defaultdict(list)

    def __len__(self) -> int:
        return len(self.sha256s)

    def build(self, items: Iterable[tuple[str, str]]) -> None:
        """(Re)build from scratch: vectorised, about 1 s per 100k digests."""
        self.__init__()  # type: ignore[misc]
        parsed: list[tuple[int, str, str]] = []
        for sha256, digest in items:
            p = parse_ssdeep(digest)
            if p is None:
                continue
            self._remember(sha256, digest, p)
            parsed.append(p)
        if not parsed:
            return
        all_keys: list[np.ndarray] = []
        all_rows: list[np.ndarray] = []
        for start in range(0, len(parsed), BUILD_CHUNK):
            chunk = parsed[start : start + BUILD_CHUNK]
            rows = np.arange(start, start + len(chunk), dtype=np.uint32)
            bs = np.fromiter((_bs_index(p[0]) for p in chunk), dtype=np.int64, count=len(chunk))
            for offset, part in ((0, 1), (1, 2)):
                keys, key_rows = _bulk_keys(bs + offset, [str(p[part]) for p in chunk], rows)
                all_keys.append(keys)
                all_rows.append(key_rows)
        keys = np.concatenate(all_keys)
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.rows = np.concatenate(all_rows)[order]

    def _remember(self, sha256: str, digest: str, parsed: tuple[int, str, str]) -> int:
        row = len(self.sha256s)
        self.sha256s.append(sha256)
        self.digests.append(digest)
        if len(parsed[1]) < GRAM and len(parsed[2]) < GRAM:
            self.short[parsed].append(row)
        return row

    def add(self, sha256: str, digest: str) -> None:
        parsed = parse_ssdeep(digest)
        if parsed is None:
            return
        row = self._remember(sha256, digest, parsed)
        for key in digest_keys(parsed):
            self.delta[key].append(row)
            self.delta_postings += 1
        if self.delta_postings >= MERGE_AT:
            self._merge()

    def _merge(self) -> None:
        keys = np.fromiter((k for k, rows in self.delta.items() for _ in rows), dtype=np.uint64)
        rows = np.fromiter((r for rs in self.delta.values() for r in rs), dtype=np.uint32)
        merged = np.concatenate([self.keys, keys])
        order = np.argsort(merged, kind="stable")
        self.keys = merged[order]
        self.rows = np.concatenate([self.rows, rows])[order]
        self.delta = defaultdict(list)
        self.delta_postings = 0

    def candidates(self, digest: str) -> set[int]:
        parsed = parse_ssdeep(digest)
        if parsed is None:
            return set()
        query = np.fromiter(digest_keys(parsed), dtype=np.uint64)
        found: set[int] = set(self.short.get(parsed, ()))
        if len(query) and len(self.keys):
            lo = np.searchsorted(self.keys, query, side="left")
            hi = np.searchsorted(self.keys, query, side="right")
            spans = [self.rows[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True) if b > a]
            if spans:
                found.update(np.unique(np.concatenate(spans)).tolist())
        for key in query.tolist():
            found.update(self.delta.get(key, ()))
        return found

    def search(self, digest: str, threshold: int = DEFAULT_THRESHOLD, deadline: Any = None) -> dict[str, int]:
        """``{sha256: score}`` of every indexed digest with ``compare(digest, d) >= threshold``."""
        import pydeep

        query = digest.encode()
        hits: dict[str, int] = {}
        for n, row in enumerate(self.candidates(digest)):
            if deadline is not None and n % 512 == 0:
                deadline.check()
            score = int(pydeep.compare(query, self.digests[row].encode()))
            if score >= threshold:
                sha256 = self.sha256s[row]
                hits[sha256] = max(score, hits.get(sha256, 0))
        return hits


def brute_force(digest: str, items: Iterable[tuple[str, str]], threshold: int) -> dict[str, int]:
    """The reference answer (tests and the benchmark baseline)."""
    import pydeep

    query = digest.encode()
    out: dict[str, int] = {}
    for sha256, other in items:
        score = int(pydeep.compare(query, other.encode()))
        if score >= threshold:
            out[sha256] = max(score, out.get(sha256, 0))
    return out
