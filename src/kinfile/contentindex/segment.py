"""One immutable segment file of the content index: documents, gram directory, posting lists.

Layout (little-endian)::

    b"KFCONT01"  uint32 header length  header (JSON)  sections...

The JSON header gives ``docs`` (count), ``grams`` (distinct trigrams), ``source_bytes`` (bytes
indexed) and the ``[offset, length]`` of four sections:

* ``docs``: per document 32 raw bytes (the file's sha256) and the little-endian uint32 number
  of the chunk of the file it holds (see :mod:`.index`); a document's number is its position;
* ``keys``: the distinct trigrams in ascending order as varints of their gaps;
* ``lengths``: per trigram, the byte length of its posting list (varint);
* ``postings``: the posting lists one after the other (see :mod:`.grams`).

A reader maps the file and decodes only the directory (``keys`` and ``lengths``) into memory.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kinfile.contentindex.grams import (
    I64,
    U32,
    decode_postings,
    decode_varints,
    encode_postings,
    encode_varints,
    run_starts,
)
from kinfile.errors import KinfileError

MAGIC = b"KFCONT02"
DOC = 36  # bytes per document entry: sha256 + chunk number
_HEAD = struct.Struct("<8sI")


class SegmentError(KinfileError):
    """A segment file that cannot be read (truncated, foreign or corrupt)."""


def _build(
    keys: npt.NDArray[np.uint64],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Sorted ``gram << 32 | doc`` keys → (keys section, lengths section, postings section)."""
    if len(keys) == 0:
        empty = np.empty(0, dtype=np.uint8)
        return empty, empty, empty
    pairs = keys.view(np.uint32).reshape(-1, 2)  # little-endian: [doc, gram]
    docs, grams = pairs[:, 0], pairs[:, 1]
    starts = np.flatnonzero(run_starts(grams))
    postings, per_gram = encode_postings(docs, starts)
    distinct = grams[starts]
    gaps = np.empty(len(distinct), dtype=np.uint32)
    gaps[0] = distinct[0]
    np.subtract(distinct[1:], distinct[:-1], out=gaps[1:])
    key_bytes, _ = encode_varints(gaps)
    length_bytes, _ = encode_varints(per_gram)
    return key_bytes, length_bytes, postings


def _write(path: Path, doc_ids: Sequence[bytes], keys: npt.NDArray[np.uint64], source_bytes: int) -> None:
    """``doc_ids``: the 36-byte document entries in document order."""
    key_bytes, length_bytes, postings = _build(keys)
    sections = [b"".join(doc_ids), key_bytes.tobytes(), length_bytes.tobytes(), postings.tobytes()]
    names = ["docs", "keys", "lengths", "postings"]
    header = {"docs": len(doc_ids), "grams": 0, "source_bytes": source_bytes, "sections": {}}
    header["grams"] = int(np.count_nonzero(key_bytes < 0x80))
    # offsets depend on the header length: fix the header size by padding
    body = 0
    placed = {}
    for name, blob in zip(names, sections, strict=True):
        placed[name] = [body, len(blob)]
        body += len(blob)
    header["sections"] = placed
    raw = json.dumps(header, sort_keys=True).encode()
    base = _HEAD.size + len(raw) + 32
    header["sections"] = {k: [v[0] + base, v[1]] for k, v in placed.items()}
    raw = json.dumps(header, sort_keys=True).encode().ljust(len(raw) + 32)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(_HEAD.pack(MAGIC, len(raw)))
        fh.write(raw)
        for blob in sections:
            fh.write(blob)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def write_segment(path: Path, docs: Iterable[tuple[str, int, U32]], source_bytes: int) -> int:
    """Write a segment of ``(sha256, chunk, distinct trigrams)`` documents; returns its size."""
    ids: list[bytes] = []
    grams: list[U32] = []
    for sha256, chunk, found in docs:
        ids.append(bytes.fromhex(sha256) + struct.pack("<I", chunk))
        grams.append(found)
    counts = np.fromiter((len(g) for g in grams), dtype=np.int64, count=len(grams))
    keys = np.empty(int(counts.sum()), dtype=np.uint64)
    pairs = keys.view(np.uint32).reshape(-1, 2)  # little-endian: [doc, gram]
    if len(keys):
        pairs[:, 1] = np.concatenate(grams)
        pairs[:, 0] = np.repeat(np.arange(len(grams), dtype=np.uint32), counts)
    keys.sort()
    _write(path, ids, keys, source_bytes)
    return path.stat().st_size


class Segment:
    """A mapped segment: look up posting lists by trigram."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        except OSError as exc:
            raise SegmentError(f"cannot open {path}: {exc}") from exc
        if self._map is None or size < _HEAD.size:
            raise SegmentError(f"{path} is not a content index segment")
        magic, hlen = _HEAD.unpack_from(self._map, 0)
        if magic != MAGIC or _HEAD.size + hlen > size:
            raise SegmentError(f"{path} is not a content index segment")
        try:
            self.header = json.loads(bytes(self._map[_HEAD.size : _HEAD.size + hlen]))
        except ValueError as exc:
            raise SegmentError(f"{path}: bad header") from exc
        self.n_docs = int(self.header["docs"])
        self._owners: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None
        self.source_bytes = int(self.header["source_bytes"])
        view = memoryview(self._map)
        sec = self.header["sections"]
        self._docs = view[sec["docs"][0] : sec["docs"][0] + sec["docs"][1]]
        self._postings = view[sec["postings"][0] : sec["postings"][0] + sec["postings"][1]]
        keys = decode_varints(view[sec["keys"][0] : sec["keys"][0] + sec["keys"][1]])
        self.keys = np.cumsum(keys).astype(np.uint32)
        lengths = decode_varints(view[sec["lengths"][0] : sec["lengths"][0] + sec["lengths"][1]])
        self.offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.offsets[1:])
        if (
            len(self.keys) != len(lengths)
            or (len(lengths) and self.offsets[-1] != len(self._postings))
            or len(self._docs) != self.n_docs * DOC
        ):
            raise SegmentError(f"{path}: directory and postings disagree")

    @property
    def file_bytes(self) -> int:
        return len(self._map) if self._map is not None else 0

    def _slot(self, g: int) -> int:
        i = int(np.searchsorted(self.keys, np.uint32(g)))  # same dtype: no conversion of keys
        return i if i < len(self.keys) and int(self.keys[i]) == g else -1

    def weights(self, grams: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Bytes of each trigram's posting list (0: absent), a cheap proxy for its length."""
        if len(self.keys) == 0:
            return np.zeros(len(grams), dtype=np.int64)
        needles = grams.astype(np.uint32)
        slots = np.minimum(np.searchsorted(self.keys, needles), len(self.keys) - 1)
        present = self.keys[slots] == needles
        return np.where(present, self.offsets[slots + 1] - self.offsets[slots], 0)

    def postings(self, g: int) -> I64:
        i = self._slot(g)
        if i < 0:
            return np.empty(0, dtype=np.int64)
        return decode_postings(self._postings[int(self.offsets[i]) : int(self.offsets[i + 1])])

    def sha256(self, number: int) -> str:
        return bytes(self._docs[number * DOC : number * DOC + 32]).hex()

    def owners(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Per document the ordinal of its file in the segment, and each file's first document
        (the documents of a file are consecutive)."""
        if self._owners is None:
            raw = np.frombuffer(self._docs, dtype=np.uint8).reshape(-1, DOC)[:, :32]
            change = np.ones(self.n_docs, dtype=bool)
            if self.n_docs > 1:
                change[1:] = (raw[1:] != raw[:-1]).any(axis=1)
            self._owners = (np.cumsum(change) - 1, np.flatnonzero(change))
        return self._owners

    def chunk(self, number: int) -> int:
        return int.from_bytes(self._docs[number * DOC + 32 : number * DOC + DOC], "little")

    def all_sha256(self) -> list[str]:
        """The file of every document, in document order (a file may hold several)."""
        raw = bytes(self._docs)
        return [raw[i : i + 32].hex() for i in range(0, len(raw), DOC)]

    def all_keys(self) -> npt.NDArray[np.uint64]:
        """Every ``gram << 32 | doc`` of the segment, sorted (for merging)."""
        gaps = decode_varints(self._postings)
        if len(gaps) == 0:
            return np.empty(0, dtype=np.uint64)
        value_ends = np.flatnonzero(np.frombuffer(self._postings, dtype=np.uint8) < 0x80)
        first_value = np.searchsorted(value_ends, self.offsets[:-1])  # first value of each gram
        counts = np.diff(np.append(first_value, len(gaps)))
        running = np.cumsum(gaps + 1)
        base = np.where(first_value > 0, running[np.maximum(first_value - 1, 0)], 0)
        docs = running - np.repeat(base, counts) - 1
        grams = np.repeat(self.keys.astype(np.uint64), counts)
        return (grams << np.uint64(32)) | docs.astype(np.uint64)

    def close(self) -> None:
        if self._map is not None:
            with contextlib.suppress(BufferError):  # a view is still alive; the GC closes it later
                self._map.close()


def merge_segments(path: Path, parts: Sequence[tuple[Segment, npt.NDArray[np.bool_]]]) -> int:
    """Write one segment holding the kept documents of ``parts`` (segment, keep-mask) in order."""
    ids: list[bytes] = []
    chunks: list[npt.NDArray[np.uint64]] = []
    source = 0
    for seg, keep in parts:
        renumber = np.full(seg.n_docs, -1, dtype=np.int64)
        kept = np.flatnonzero(keep)
        renumber[kept] = np.arange(len(ids), len(ids) + len(kept))
        ids.extend(bytes(seg._docs[i * DOC : i * DOC + DOC]) for i in kept)
        keys = seg.all_keys()
        docs = renumber[(keys & np.uint64(0xFFFFFFFF)).astype(np.int64)]
        live = docs >= 0
        chunks.append((keys[live] & ~np.uint64(0xFFFFFFFF)) | docs[live].astype(np.uint64))
        if seg.n_docs:
            source += int(seg.source_bytes * len(kept) / seg.n_docs)
    keys = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.uint64)
    keys.sort(kind="stable")
    _write(path, ids, keys, source)
    return path.stat().st_size
