"""``kinfile gc-blobs``: remove the blobs no stored file uses, and temporary files a crash left.

A blob is written before its file's rows (ingest puts it in the worker, the writer stores the
rows later), so a file whose rows failed to store leaves its blob behind: nothing is lost (the
bytes are unreferenced), but the disk fills. A blob is unreferenced when no stored file with
its bytes (``downloadable``) has its sha256: no row at all, or a report-only row whose
submission of the bytes failed.

Only files older than the grace period are touched: a file being ingested now has a fresh blob
(and ``BlobStore.put_bytes`` renews an existing blob's time). Right before removing a blob the
collector checks its time and the database again, so a submission that reached the database (or
re-used the blob) meanwhile keeps it. What remains is a window of microseconds on a local
folder between that check and the removal; a file whose blob went in it is stored without bytes
until they are submitted again (then the blob is written anew).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kinfile.storage.blobs import BlobEntry, BlobStore
from kinfile.storage.store import Store

BATCH = 1000  # blobs looked up in the database at a time


@dataclass
class Collected:
    scanned: int = 0  # files under the blob root
    unreferenced: int = 0  # blobs no stored file uses, older than the grace period
    leftovers: int = 0  # temporary files of interrupted writes, older than the grace period
    freed: int = 0  # bytes of both
    young: int = 0  # unreferenced blobs or leftovers within the grace period, kept


def collect(
    store: Store,
    blobs: BlobStore,
    grace: float,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Collected:
    """Remove (or with ``dry_run`` only count) what no stored file uses, older than ``grace``
    seconds."""
    out = Collected()
    cutoff = time.time() - grace
    for batch in _batches(blobs.entries()):
        out.scanned += len(batch)
        used = store.with_bytes([e.sha256 for e in batch if e.sha256])
        for entry in batch:
            if entry.sha256 in used:
                continue
            if entry.mtime is None or entry.mtime > cutoff:
                out.young += 1
                continue
            if not dry_run and not _remove(store, blobs, entry, cutoff):
                out.young += 1
                continue
            if entry.sha256:
                out.unreferenced += 1
            else:
                out.leftovers += 1
            out.freed += entry.size
        if progress:
            progress(len(batch))
    return out


def _remove(store: Store, blobs: BlobStore, entry: BlobEntry, cutoff: float) -> bool:
    """Remove one file if it is still old and, for a blob, still unused."""
    mtime = blobs.mtime(entry.path)
    if mtime is None or mtime > cutoff:
        return False  # gone, or used again (put_bytes renewed it)
    if entry.sha256 and store.with_bytes([entry.sha256]):
        return False  # its file reached the database meanwhile
    return blobs.remove(entry.path)


def _batches(entries: Iterator[BlobEntry]) -> Iterator[list[BlobEntry]]:
    while batch := list(itertools.islice(entries, BATCH)):
        yield batch
