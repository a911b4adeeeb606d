"""The content index on disk: partitions of immutable segments, tombstones, background merges.

Layout under the index root (``<data dir>/content`` by default)::

    index.json          {"format": 1, "partitions": P}
    lock                writers (add, delete, the swap of a merge) hold an flock on it
    p00/manifest.json   {"next_seq": n, "segments": [...], "tombstones": {sha256: seq}}
    p00/seg-000001.kfs  segment files (see :mod:`.segment`)

A file's bytes are indexed as documents of at most :data:`CHUNK` + :data:`OVERLAP` bytes (chunk
``k`` covers ``[k·CHUNK, (k+1)·CHUNK + OVERLAP)``), so a large file is not a candidate for every
pattern (a 50 MB binary holds most of the 2^24 trigrams) and only the candidate chunks are
verified. A match no longer than ``OVERLAP`` lies inside one chunk with every trigram of the plan;
longer patterns are planned per file (the union of its chunks).

A file lives in partition ``int(sha256[:8], 16) % P``; a partition
is self-contained, so partitions can be served by different machines later. Readers never lock:
a manifest is replaced atomically (write + rename) and segment files are immutable; a reader
that finds a segment removed by a merge re-reads the manifest. A tombstone ``sha256 → seq``
hides the document in every segment numbered ``≤ seq``; a document indexed again later lives in
a newer segment and is visible.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kinfile.contentindex.grams import distinct_grams
from kinfile.contentindex.segment import Segment, SegmentError, merge_segments, write_segment
from kinfile.errors import KinfileError

FORMAT = 2
CHUNK = 1 << 20
OVERLAP = 8 << 10
MAX_SEGMENT_KEYS = 48_000_000  # ~400 MB of sort keys while a segment is built
Buffer = bytes | bytearray | memoryview | mmap.mmap
MAX_LISTS = 16  # posting lists read per alternative (the lightest ones)
FEW_DOCS = 2  # candidates left at which an alternative stops reading lists
Plan = Sequence[Sequence[frozenset[int]]]  # AND of requirements, each an OR of AND-ed trigram sets


class IndexError_(KinfileError):
    """The content index cannot be used (foreign format, unreadable manifest or segment): a
    server error (500, exit 1) whose message says how to repair it."""


class StaleFormatError(IndexError_):
    """The index was written by another version of kinfile: rebuild it."""


@dataclass
class Candidates:
    """Candidate files; ``chunks[sha256]`` is the set of chunk numbers that may hold a match, or
    None when the whole file must be verified (planned per file)."""

    chunks: dict[str, set[int] | None]

    @property
    def sha256s(self) -> set[str]:
        return set(self.chunks)


def chunk_starts(size: int) -> range:
    """Start offsets of the chunks of a file of ``size`` bytes (one chunk at least)."""
    return range(0, max(1, size - OVERLAP), CHUNK)


def chunk_window(chunk: int, size: int) -> tuple[int, int]:
    """``[start, end)`` of a chunk: where a match inside it must lie."""
    start = chunk * CHUNK
    return start, min(size, start + CHUNK + OVERLAP)


def _read_json(path: Path, default: dict[str, Any]) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            value = json.load(fh)
    except FileNotFoundError:
        return dict(default)
    except (OSError, ValueError) as exc:
        raise IndexError_(f"cannot read {path}: {exc}; run `kinfile index rebuild`") from exc
    if not isinstance(value, dict):
        raise IndexError_(f"{path} is not a JSON object; run `kinfile index rebuild`")
    return value


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(value, fh, separators=(",", ":"))
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def _empty_manifest() -> dict[str, Any]:
    return {"next_seq": 1, "segments": [], "tombstones": {}}


class ContentIndex:
    def __init__(self, root: str | Path, partitions: int = 4) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        meta_path = self.root / "index.json"
        meta = _read_json(meta_path, {})
        if not meta:
            meta = {"format": FORMAT, "partitions": max(1, int(partitions))}
            _write_json(meta_path, meta)
        if meta.get("format") != FORMAT:
            raise StaleFormatError(f"{self.root}: content index format {meta.get('format')!r}, not {FORMAT}")
        self.partitions = int(meta["partitions"])
        self._segments: dict[Path, Segment] = {}
        self._manifests: dict[int, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()
        self._merge_lock = threading.Lock()

    # -- layout -------------------------------------------------------------------------------
    def partition_of(self, sha256: str) -> int:
        return int(sha256[:8], 16) % self.partitions

    def _dir(self, part: int) -> Path:
        path = self.root / f"p{part:02d}"
        path.mkdir(exist_ok=True)
        return path

    def manifest(self, part: int) -> dict[str, Any]:
        path = self._dir(part) / "manifest.json"
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            return _empty_manifest()
        cached = self._manifests.get(part)
        if cached and cached[0] == stamp:
            return cached[1]
        value = _read_json(path, _empty_manifest())
        self._manifests[part] = (stamp, value)
        return value

    @contextmanager
    def _writer(self) -> Iterator[None]:
        with open(self.root / "lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _segment(self, part: int, name: str) -> Segment:
        path = self._dir(part) / name
        with self._cache_lock:
            seg = self._segments.get(path)
            if seg is None:
                seg = Segment(path)
                self._segments[path] = seg
            return seg

    def _forget(self, part: int, names: Iterable[str]) -> None:
        with self._cache_lock:
            for name in names:
                seg = self._segments.pop(self._dir(part) / name, None)
                if seg is not None:
                    seg.close()

    # -- writes -------------------------------------------------------------------------------
    def add(self, docs: Iterable[tuple[str, Buffer]]) -> tuple[int, int]:
        """Index ``(sha256, bytes)`` documents (bytes or a mapped file): a new segment per
        partition touched, or more: a segment is closed after the file that brings it to
        :data:`MAX_SEGMENT_KEYS` trigram postings.

        Returns ``(documents, bytes)`` indexed. Searchable once this returns.
        """
        per_part: dict[int, list[tuple[str, int, Any]]] = {}
        keys: dict[int, int] = {}
        sizes: dict[int, int] = {}
        count = total = 0
        for sha256, data in docs:
            part = self.partition_of(sha256)
            view = memoryview(data)  # type: ignore[arg-type]
            items = per_part.setdefault(part, [])
            for number, start in enumerate(chunk_starts(len(data))):
                grams = distinct_grams(view[start : start + CHUNK + OVERLAP])
                items.append((sha256, number, grams))
                keys[part] = keys.get(part, 0) + len(grams)
            view.release()  # a mapped file may be closed once we ask for the next document
            sizes[part] = sizes.get(part, 0) + len(data)
            count += 1
            total += len(data)
            if keys[part] >= MAX_SEGMENT_KEYS:  # bounded memory; a file's chunks stay together
                self._commit_segment(part, per_part.pop(part), sizes.pop(part))
                keys[part] = 0
        for part, items in sorted(per_part.items()):
            self._commit_segment(part, items, sizes[part])
        return count, total

    def _commit_segment(self, part: int, items: list[tuple[str, int, Any]], source_bytes: int) -> None:
        with self._writer():
            manifest = dict(_read_json(self._dir(part) / "manifest.json", _empty_manifest()))
            seq = int(manifest["next_seq"])
            name = f"seg-{seq:08d}.kfs"
            size = write_segment(self._dir(part) / name, items, source_bytes)
            manifest["segments"] = [
                *manifest["segments"],
                {
                    "seq": seq,
                    "file": name,
                    "docs": len(items),
                    "files": len({sha for sha, _chunk, _grams in items}),
                    "source_bytes": source_bytes,
                    "bytes": size,
                },
            ]
            manifest["next_seq"] = seq + 1
            _write_json(self._dir(part) / "manifest.json", manifest)

    def delete(self, sha256s: Iterable[str]) -> int:
        """Hide documents from every segment written so far. Returns how many were marked."""
        by_part: dict[int, list[str]] = {}
        for sha256 in sha256s:
            by_part.setdefault(self.partition_of(sha256), []).append(sha256)
        marked = 0
        with self._writer():
            for part, shas in by_part.items():
                path = self._dir(part) / "manifest.json"
                manifest = _read_json(path, _empty_manifest())
                if not manifest["segments"]:
                    continue
                last = max(s["seq"] for s in manifest["segments"])
                tomb = dict(manifest["tombstones"])
                for sha256 in shas:
                    tomb[sha256] = last
                    marked += 1
                manifest["tombstones"] = tomb
                _write_json(path, manifest)
        return marked

    def clear(self) -> None:
        """Drop every segment (a rebuild indexes the stored files again), damaged ones too."""
        with self._writer():
            for part in range(self.partitions):
                path = self._dir(part) / "manifest.json"
                try:
                    next_seq = int(_read_json(path, _empty_manifest())["next_seq"])
                except (IndexError_, KeyError, TypeError, ValueError):
                    next_seq = 1
                old = [p.name for p in self._dir(part).glob("seg-*.kfs*")]
                _write_json(path, {"next_seq": next_seq, "segments": [], "tombstones": {}})
                self._manifests.pop(part, None)
                self._remove_files(part, old)

    def _remove_files(self, part: int, names: Iterable[str]) -> None:
        names = list(names)
        self._forget(part, names)
        for name in names:
            (self._dir(part) / name).unlink(missing_ok=True)

    # -- merges -------------------------------------------------------------------------------
    def compact(self, full: bool = False, fan_in: int = 8) -> int:
        """Merge segments; ``full`` merges each partition into one. Returns merges done.

        Tiered otherwise: the smallest segments of a partition are merged once it holds more than
        ``fan_in`` of them. Queries and ``add`` go on during a merge: only the final manifest swap
        takes the writer lock.
        """
        if not self._merge_lock.acquire(blocking=False):
            return 0
        try:
            done = 0
            for part in range(self.partitions):
                done += self._compact_partition(part, full, fan_in)
            return done
        finally:
            self._merge_lock.release()

    def _compact_partition(self, part: int, full: bool, fan_in: int) -> int:
        path = self._dir(part) / "manifest.json"
        manifest = _read_json(path, _empty_manifest())
        segs = sorted(manifest["segments"], key=lambda s: s["seq"])
        tomb = manifest["tombstones"]
        if full:
            chosen = segs if (len(segs) > 1 or (segs and tomb)) else []
        elif len(segs) > fan_in:
            smallest = sorted(segs, key=lambda s: s["source_bytes"])[: len(segs) - fan_in + 1]
            chosen = sorted(smallest, key=lambda s: s["seq"])
        else:
            chosen = []
        if not chosen:
            return 0
        parts: list[tuple[Segment, npt.NDArray[np.bool_]]] = []
        seen: set[str] = set()
        for entry in reversed(chosen):  # newest first: an older copy of a document is dropped
            seg = self._segment(part, entry["file"])
            shas = seg.all_sha256()
            keep = np.array(
                [not (s in seen or tomb.get(s, -1) >= entry["seq"]) for s in shas], dtype=np.bool_
            )
            seen.update(shas)  # after the whole segment: a file's chunks are kept together
            parts.append((seg, keep))
        parts.reverse()
        seq = max(s["seq"] for s in chosen)
        name = f"seg-{seq:08d}-m{len(chosen)}-{os.getpid()}.kfs"
        size = merge_segments(self._dir(part) / name, parts)
        merged = Segment(self._dir(part) / name)
        with self._writer():
            current = _read_json(path, _empty_manifest())
            names = {s["file"] for s in chosen}
            if not names <= {s["file"] for s in current["segments"]}:  # someone else merged them
                merged.close()
                (self._dir(part) / name).unlink(missing_ok=True)
                return 0
            rest = [s for s in current["segments"] if s["file"] not in names]
            entry = {
                "seq": seq,
                "file": name,
                "docs": merged.n_docs,
                "files": len(merged.owners()[1]),
                "source_bytes": merged.source_bytes,
                "bytes": size,
            }
            segments = sorted([*rest, entry], key=lambda s: s["seq"])
            live: dict[str, int] = {}
            for s in segments:  # tombstones still hiding something stay
                if s["file"] == name:
                    seg_shas = merged.all_sha256()
                else:
                    seg_shas = self._segment(part, s["file"]).all_sha256()
                for sha in seg_shas:
                    live[sha] = min(live.get(sha, s["seq"]), s["seq"])
            tombstones = {k: v for k, v in current["tombstones"].items() if k in live and live[k] <= v}
            _write_json(path, {**current, "segments": segments, "tombstones": tombstones})
            merged.close()
            self._remove_files(part, names)
        return 1

    # -- reads --------------------------------------------------------------------------------
    def candidates(
        self, plan: Plan, per_file: bool = False, should_stop: Callable[[], bool] | None = None
    ) -> Candidates:
        """Files (and chunks) whose trigrams satisfy ``plan``: a superset of the true matches.

        ``per_file``: plan over each file's whole trigram set (patterns longer than OVERLAP).
        """
        found: dict[str, set[int] | None] = {}
        for part in range(self.partitions):
            for attempt in range(5):
                try:
                    self._candidates_in(part, plan, found, per_file)
                    break
                except (FileNotFoundError, SegmentError) as exc:
                    self._manifests.pop(part, None)  # a merge replaced a segment: read again
                    if attempt == 4:  # not a merge: the partition is damaged; never answer without it
                        raise IndexError_(
                            f"content index partition {part} cannot be read ({exc}); "
                            "run `kinfile index rebuild`"
                        ) from exc
            if should_stop and should_stop():
                break
        return Candidates(found)

    def _candidates_in(
        self, part: int, plan: Plan, found: dict[str, set[int] | None], per_file: bool
    ) -> None:
        manifest = self.manifest(part)
        tomb = manifest["tombstones"]
        for entry in manifest["segments"]:
            seg = self._segment(part, entry["file"])
            owners, firsts = seg.owners() if per_file else (None, None)
            for number in _evaluate(seg, plan, owners).tolist():
                sha = seg.sha256(int(firsts[number]) if firsts is not None else number)
                if tomb.get(sha, -1) >= entry["seq"]:
                    continue
                if per_file:
                    found[sha] = None
                    continue
                chunks = found.setdefault(sha, set())
                if chunks is not None:
                    chunks.add(seg.chunk(number))

    def status(self) -> dict[str, Any]:
        parts = []
        for part in range(self.partitions):
            m = self.manifest(part)
            parts.append(
                {
                    "partition": part,
                    "segments": len(m["segments"]),
                    "documents": sum(s.get("files", s["docs"]) for s in m["segments"]),
                    "chunks": sum(s["docs"] for s in m["segments"]),
                    "indexed_bytes": sum(s["source_bytes"] for s in m["segments"]),
                    "index_bytes": sum(s["bytes"] for s in m["segments"]),
                    "tombstones": len(m["tombstones"]),
                }
            )
        total = {
            k: sum(p[k] for p in parts)
            for k in ("segments", "documents", "chunks", "indexed_bytes", "index_bytes", "tombstones")
        }
        ratio = total["index_bytes"] / total["indexed_bytes"] if total["indexed_bytes"] else 0.0
        return {"root": str(self.root), "partitions": parts, **total, "size_ratio": round(ratio, 4)}


def _evaluate(seg: Segment, plan: Plan, owners: npt.NDArray[np.int64] | None = None) -> npt.NDArray[np.int64]:
    """Document numbers of ``seg`` satisfying ``plan``; with ``owners`` (document → file
    ordinal), the file ordinals satisfying it per file.

    Any subset of an alternative's trigrams is still a correct (looser) filter, so each
    alternative reads at most :data:`MAX_LISTS` of its lightest posting lists, and stops early
    once few documents are left.
    """
    if seg.n_docs == 0:
        return np.empty(0, dtype=np.int64)
    everything = seg.n_docs if owners is None else int(owners[-1]) + 1
    weighted = []
    for requirement in plan:
        alts = []
        for alt in requirement:
            grams = np.fromiter(alt, dtype=np.int64, count=len(alt))
            w = seg.weights(grams)
            order = np.argsort(w, kind="stable")
            alts.append((grams[order], w[order]))
        cost = max((int(w[0]) if len(w) else 0 for _g, w in alts), default=0)
        weighted.append((cost, alts))
    weighted.sort(key=lambda item: item[0])
    result: npt.NDArray[np.int64] | None = None
    for _cost, alts in weighted:
        union: npt.NDArray[np.int64] | None = None
        for grams, w in alts:
            inter: npt.NDArray[np.int64] | None = None if result is None else result
            if len(grams) and w[0] == 0:
                inter = np.empty(0, dtype=np.int64)  # a trigram no document has
            else:
                for g in grams[:MAX_LISTS].tolist():
                    docs = seg.postings(g)
                    if owners is not None:
                        docs = np.unique(owners[docs])
                    inter = docs if inter is None else np.intersect1d(inter, docs, assume_unique=True)
                    if len(inter) <= FEW_DOCS:
                        break
            if inter is None:  # an alternative without trigrams restricts nothing
                inter = np.arange(everything, dtype=np.int64)
            union = inter if union is None else np.union1d(union, inter)
        if union is None:
            continue
        result = union
        if len(result) == 0:
            break
    return np.arange(everything, dtype=np.int64) if result is None else result
