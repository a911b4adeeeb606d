"""The exact TLSH index: a lossless header prefilter and a vectorised numpy distance kernel.

Distance (``tlsh_impl.cpp`` ``totalDiff``, SIMILARITY_NOTES §2.1) = L term + Q1 term + Q2 term
+ checksum term + body term, every term ≥ 0. So ``d ≤ T`` implies an L difference of at most
``max(1, T // 12)`` (mod 256) - rows are kept sorted by L and only that window is read - and
then the header terms alone must be ≤ T; the 32-byte body distance (a 256×256 table of
per-byte costs, one column ``take`` per byte) is computed only for rows that pass. Nothing that
could be within T is ever skipped, so results equal brute-force ``tlsh.diff``.

``similarity_score`` (documented in docs/similarity.md) is a fixed, query-independent mapping
``max(0, 1 - distance / 200)``: 1.0 for identical digests, 0.85 at distance 30, 0.65 at 70,
0 from 200 on (where TLSH's published false-positive rate reaches 50 %).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np

DEFAULT_MAX_DISTANCE = 70
SCORE_SCALE = 200
HEX = re.compile(r"(?:T1)?([0-9A-Fa-f]{70})")
CODE_SIZE = 32


def similarity_score(distance: int, _max_distance: int | None = None) -> float:
    return round(max(0.0, 1.0 - distance / SCORE_SCALE), 4)


def _swap(byte: int) -> int:
    return ((byte & 0x0F) << 4) | (byte >> 4)


def parse_tlsh(digest: str) -> tuple[int, int, int, int, bytes] | None:
    """``(checksum, L, Q1, Q2, body)`` of a ``T1`` + 70 hex digest (or the old 70 hex form)."""
    m = HEX.fullmatch(digest.strip())
    if not m:
        return None
    raw = bytes.fromhex(m.group(1))
    q = raw[2]
    return _swap(raw[0]), _swap(raw[1]), q & 0x0F, q >> 4, raw[3:]


def _pair_table() -> np.ndarray:
    """``table[a, b]`` = TLSH body distance of two bytes (4 buckets of 2 bits; |Δ|=3 costs 6)."""
    a = np.arange(256)[:, None]
    b = np.arange(256)[None, :]
    total = np.zeros((256, 256), dtype=np.int32)
    for shift in (0, 2, 4, 6):
        d = np.abs(((a >> shift) & 3) - ((b >> shift) & 3))
        total += np.where(d == 3, 6, d)
    return total.astype(np.uint8)


PAIR = _pair_table()


def _mod_diff(x: np.ndarray, y: int, r: int) -> np.ndarray:
    d = np.abs(x.astype(np.int32) - y)
    return np.minimum(d, r - d)


def _q_term(x: np.ndarray, y: int) -> np.ndarray:
    d = _mod_diff(x, y, 16)
    return np.where(d <= 1, d, (d - 1) * 12)


class _Segment:
    """Rows sorted by L, as parallel numpy arrays."""

    def __init__(self, rows: list[tuple[str, tuple[int, int, int, int, bytes]]]) -> None:
        rows = sorted(rows, key=lambda r: r[1][1])
        n = len(rows)
        self.sha256s = [r[0] for r in rows]
        self.checksum = np.fromiter((r[1][0] for r in rows), dtype=np.uint8, count=n)
        self.lvalue = np.fromiter((r[1][1] for r in rows), dtype=np.uint8, count=n)
        self.q1 = np.fromiter((r[1][2] for r in rows), dtype=np.uint8, count=n)
        self.q2 = np.fromiter((r[1][3] for r in rows), dtype=np.uint8, count=n)
        body = b"".join(r[1][4] for r in rows)
        self.body = (
            np.frombuffer(body, dtype=np.uint8).reshape(n, CODE_SIZE)
            if n
            else np.zeros((0, CODE_SIZE), np.uint8)
        )

    def window(self, lvalue: int, width: int) -> list[tuple[int, int]]:
        """Index ranges whose L is within ``width`` of ``lvalue`` (mod 256)."""
        if width >= 128:
            return [(0, len(self.sha256s))]
        lo, hi = lvalue - width, lvalue + width
        spans = [(max(lo, 0), min(hi, 255))]
        if lo < 0:
            spans.append((256 + lo, 255))
        if hi > 255:
            spans.append((0, hi - 256))
        out = []
        for a, b in spans:
            start = int(np.searchsorted(self.lvalue, a, side="left"))
            end = int(np.searchsorted(self.lvalue, b, side="right"))
            if end > start:
                out.append((start, end))
        return out

    def search(self, q: tuple[int, int, int, int, bytes], max_distance: int, deadline: Any) -> dict[str, int]:
        checksum, lvalue, q1, q2, body = q
        hits: dict[str, int] = {}
        width = max(1, max_distance // 12)
        qbody = np.frombuffer(body, dtype=np.uint8)
        for start, end in self.window(lvalue, width):
            for a in range(start, end, 262_144):
                if deadline is not None:
                    deadline.check()
                b = min(end, a + 262_144)
                ld = _mod_diff(self.lvalue[a:b], lvalue, 256)
                head = np.where(ld <= 1, ld, ld * 12) + _q_term(self.q1[a:b], q1) + _q_term(self.q2[a:b], q2)
                head += (self.checksum[a:b] != checksum).astype(head.dtype)
                keep = np.nonzero(head <= max_distance)[0]
                if not len(keep):
                    continue
                total = head[keep].astype(np.int32)
                rows = self.body[a:b][keep]
                for j in range(CODE_SIZE):
                    total += PAIR[qbody[j]].take(rows[:, j])
                for i in np.nonzero(total <= max_distance)[0].tolist():
                    sha256 = self.sha256s[a + int(keep[i])]
                    d = int(total[i])
                    hits[sha256] = min(d, hits.get(sha256, d))
        return hits


class TlshIndex:
    """A large sorted segment plus a small one for rows added since the last merge."""

    MERGE_AT = 50_000

    def __init__(self) -> None:
        self.main = _Segment([])
        self.pending: list[tuple[str, tuple[int, int, int, int, bytes]]] = []
        self.delta = _Segment([])
        self.delta_stale = False
        self._all: list[tuple[str, tuple[int, int, int, int, bytes]]] = []

    def __len__(self) -> int:
        return len(self._all)

    def build(self, items: Iterable[tuple[str, str]]) -> None:
        self.__init__()  # type: ignore[misc]
        for sha256, digest in items:
            parsed = parse_tlsh(digest)
            if parsed is not None:
                self._all.append((sha256, parsed))
        self.main = _Segment(self._all)

    def add(self, sha256: str, digest: str) -> None:
        parsed = parse_tlsh(digest)
        if parsed is None:
            return
        self._all.append((sha256, parsed))
        self.pending.append((sha256, parsed))
        self.delta_stale = True
        if len(self.pending) >= self.MERGE_AT:
            self.main = _Segment(self._all)
            self.pending = []
            self.delta = _Segment([])
            self.delta_stale = False

    def search(
        self, digest: str, max_distance: int = DEFAULT_MAX_DISTANCE, deadline: Any = None
    ) -> dict[str, int]:
        """``{sha256: distance}`` of every indexed digest within ``max_distance``."""
        q = parse_tlsh(digest)
        if q is None:
            return {}
        if self.delta_stale:
            self.delta = _Segment(self.pending)
            self.delta_stale = False
        hits = self.main.search(q, max_distance, deadline)
        for sha256, d in self.delta.search(q, max_distance, deadline).items():
            hits[sha256] = min(d, hits.get(sha256, d))
        return hits


def brute_force(digest: str, items: Iterable[tuple[str, str]], max_distance: int) -> dict[str, int]:
    import tlsh

    out: dict[str, int] = {}
    for sha256, other in items:
        d = int(tlsh.diff(digest, other))
        if d <= max_distance:
            out[sha256] = min(d, out.get(sha256, d))
    return out
