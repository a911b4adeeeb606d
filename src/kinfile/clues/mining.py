"""Mining clue rules from a month of integer-coded features (pure numpy, no storage).

Input: the month's files as a CSR layout (``offsets``, ``codes``: each file's sorted unique
64-bit feature codes) and each file's detection band (0 = ``P0``, 1 = ``P1_TO_P19``,
2 = ``P20_PLUS``). Output: :class:`Mined` conjunctions of one to three features whose files
have a share of one band ≥ ``min_rate`` and that occur in ≥ ``min_support`` files.

Algorithm (docs/clues.md): every step is a sort, ``np.unique`` or ``np.bincount`` over arrays
of occurrences; nothing loops over files or pairs of files in Python.

1. Singles: ``np.unique`` codes → feature ids; per-band counts with one ``bincount``.
2. Pairs, per band: *seeds* are frequent features that are not a clue of that band, have
   enough files of the band and a band share ≥ the seed threshold
   (``max(seed_rate, (1 + base share) / 2)``). Each file's seeds (its ``max_seeds`` best) are
   expanded into all pairs inside the file (ragged index arithmetic), then counted.
3. Triples, per band: seeds are numbered by decreasing band share; each occurrence of a
   *promising* pair (a, b) (frequent, share ≥ the seed threshold, not a clue) is extended with
   its file's seeds after b, so a triple grows once per file from its two best members' pair.

Redundancy: a conjunction is kept only when no proper subset is a clue of the same band
(which also drops any conjunction whose subset matches exactly the same files).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

LABELS = ("P0", "P1_TO_P19", "P20_PLUS")
MIN_RATE = 0.98
MAX_SEEDS = 2_000_000  # seed ids must fit three to an int64 key


@dataclass(frozen=True)
class Mined:
    codes: tuple[int, ...]  # sorted feature codes
    label: int  # index in LABELS
    support: int  # files of the month with all the features
    in_label: int  # of which in the label's band
    example: int  # index of one file with all the features (to name the features)
    supports: tuple[int, ...] = ()  # files of the month with each feature (same order as codes)

    @property
    def rate(self) -> float:
        return self.in_label / self.support


def band_of(positives: np.ndarray) -> np.ndarray:
    """Detection band of each positives count: 0 (p=0), 1 (1..19), 2 (20+)."""
    return np.where(positives <= 0, 0, np.where(positives < 20, 1, 2)).astype(np.int8)


def _ragged_pairs(group_end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ``(i, j)`` with ``i < j < group_end[i]`` (positions inside the same file)."""
    m = len(group_end)
    counts = group_end - np.arange(m) - 1
    total = int(counts.sum())
    left = np.repeat(np.arange(m, dtype=np.int64), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    right = left + 1 + (np.arange(total, dtype=np.int64) - starts)
    return left, right


def _group_bounds(files: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a file-sorted occurrence array: each occurrence's group start and end."""
    m = len(files)
    if m == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.flatnonzero(np.diff(files)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [m]))
    sizes = ends - starts
    return np.repeat(starts, sizes), np.repeat(ends, sizes)


def _count(keys: np.ndarray, in_band: np.ndarray, files: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct keys with their support, in-band count, one file having them, and each key's index."""
    uniq, first, inverse, support = np.unique(
        keys, return_index=True, return_inverse=True, return_counts=True
    )
    in_label = np.bincount(inverse, weights=in_band, minlength=len(uniq)).astype(np.int64)
    return uniq, support, in_label, files[first], inverse


class _Month:
    def __init__(self, offsets: np.ndarray, codes: np.ndarray, bands: np.ndarray) -> None:
        self.bands = bands.astype(np.int8)
        sizes = np.diff(offsets)
        self.occ_file = np.repeat(np.arange(len(bands), dtype=np.int64), sizes)
        self.uniq, first, self.inv = np.unique(codes, return_index=True, return_inverse=True)[:3]
        self.example = self.occ_file[first]
        occ_band = self.bands[self.occ_file]
        counts = np.bincount(self.inv * 3 + occ_band, minlength=3 * len(self.uniq))
        self.counts = counts.reshape(-1, 3).astype(np.int64)
        self.support = self.counts.sum(axis=1)


def mine(
    offsets: np.ndarray,
    codes: np.ndarray,
    bands: np.ndarray,
    min_support: int = 10,
    min_rate: float = MIN_RATE,
    seed_rate: float = 0.5,
    max_seeds: int = 12,
    max_length: int = 3,
) -> list[Mined]:
    """Clue candidates of a month (see the module docstring). ``offsets`` has ``len(bands) + 1``."""
    if len(bands) == 0 or len(codes) == 0:
        return []
    month = _Month(offsets, codes, bands)
    frequent = month.support >= min_support
    out: list[Mined] = []
    for label in range(3):
        in_label = month.counts[:, label]
        single = frequent & (in_label >= min_rate * month.support)
        for fid in np.flatnonzero(single):
            out.append(
                Mined(
                    (int(month.uniq[fid]),),
                    label,
                    int(month.support[fid]),
                    int(in_label[fid]),
                    int(month.example[fid]),
                    (int(month.support[fid]),),
                )
            )
        if max_length >= 2:
            out += _conjunctions(
                month, label, single, frequent, min_support, min_rate, seed_rate, max_seeds, max_length
            )
    return out


def _conjunctions(
    month: _Month,
    label: int,
    single: np.ndarray,
    frequent: np.ndarray,
    min_support: int,
    min_rate: float,
    seed_rate: float,
    max_seeds: int,
    max_length: int,
) -> list[Mined]:
    in_label = month.counts[:, label]
    base = float(np.mean(month.bands == label))
    threshold = max(seed_rate, (1.0 + base) / 2.0)
    need = math.ceil(min_rate * min_support)
    share = in_label / np.maximum(month.support, 1)
    seed = frequent & ~single & (in_label >= need) & (share >= threshold)
    seed_ids = np.flatnonzero(seed)
    if len(seed_ids) < 2:
        return []
    if len(seed_ids) > MAX_SEEDS:  # keep the most supported
        seed_ids = np.sort(seed_ids[np.argsort(-month.support[seed_ids], kind="stable")[:MAX_SEEDS]])
        seed = np.zeros_like(seed)
        seed[seed_ids] = True
    # local seed ids in order of decreasing band share: inside a file the seeds are then sorted
    # best first, the cap keeps the best, and a triple grows from its two best members' pair
    seed_ids = seed_ids[np.lexsort((month.uniq[seed_ids], -share[seed_ids]))]
    local = np.full(len(seed), -1, dtype=np.int64)
    local[seed_ids] = np.arange(len(seed_ids))
    n_seeds = len(seed_ids)

    occ = np.flatnonzero(seed[month.inv])
    files = month.occ_file[occ]
    seeds = local[month.inv[occ]]
    order = np.lexsort((seeds, files))
    files, seeds = files[order], seeds[order]
    starts, _ends = _group_bounds(files)
    keep = (np.arange(len(files)) - starts) < max_seeds  # at most max_seeds (the best) per file
    files, seeds = files[keep], seeds[keep]
    starts, ends = _group_bounds(files)

    left, right = _ragged_pairs(ends)
    pair_files = files[left]
    pair_keys = seeds[left] * n_seeds + seeds[right]
    pair_band = (month.bands[pair_files] == label).astype(np.float64)
    keys, support, in_band, example, pair_index = _count(pair_keys, pair_band, pair_files)
    frequent_pair = support >= min_support
    is_clue = frequent_pair & (in_band >= min_rate * support)
    out = [
        Mined(*_codes(month, seed_ids, k, n_seeds, 2, label, int(s), int(c), int(e)))
        for k, s, c, e in zip(
            keys[is_clue], support[is_clue], in_band[is_clue], example[is_clue], strict=True
        )
    ]
    if max_length < 3:
        return out
    promising = frequent_pair & ~is_clue & (in_band >= need) & (in_band >= threshold * support)
    if not promising.any():
        return out
    occ_promising = promising[pair_index]
    p_files = pair_files[occ_promising]
    p_keys = pair_keys[occ_promising]
    p_left, p_right = left[occ_promising], right[occ_promising]
    # extend each promising pair occurrence (a, b) with the file's seeds c after b (worse share)
    counts = ends[p_left] - p_right - 1
    idx = np.repeat(p_right + 1, counts) + (
        np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    t_files = np.repeat(p_files, counts)
    t_keys = np.repeat(p_keys, counts) * n_seeds + seeds[idx]
    del idx
    t_band = (month.bands[t_files] == label).astype(np.float64)
    keys3, support3, in_band3, example3, _index = _count(t_keys, t_band, t_files)
    clue3 = (support3 >= min_support) & (in_band3 >= min_rate * support3)
    if not clue3.any():
        return out
    x, rest = keys3 // (n_seeds * n_seeds), keys3 % (n_seeds * n_seeds)
    y, z = rest // n_seeds, rest % n_seeds
    pair_clues = keys[is_clue]
    for sub in (x * n_seeds + y, x * n_seeds + z, y * n_seeds + z):
        clue3 &= ~np.isin(sub, pair_clues)
    for k, s, c, e in zip(keys3[clue3], support3[clue3], in_band3[clue3], example3[clue3], strict=True):
        out.append(Mined(*_codes(month, seed_ids, int(k), n_seeds, 3, label, int(s), int(c), int(e))))
    return out


def _codes(
    month: _Month, seed_ids: np.ndarray, key: int, n_seeds: int, length: int, *counts: int
) -> tuple[Any, ...]:
    """``Mined`` fields of a conjunction key: sorted codes, counts, and each feature's support."""
    features = []
    for _ in range(length):
        fid = int(seed_ids[key % n_seeds])
        features.append((int(month.uniq[fid]), int(month.support[fid])))
        key //= n_seeds
    features.sort()
    return (tuple(c for c, _ in features), *counts, tuple(s for _, s in features))
