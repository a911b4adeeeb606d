"""The content index as a service: feeding it from the store, deleting, rebuilding, status.

New files reach the index through the ``content_pending`` queue (written with the file). The
server drains it every ``content_index_interval`` seconds in a background thread
(:class:`ContentIndexer`), ``kinfile ingest`` drains it when it finishes, and ``kinfile index
update`` does it by hand. Until a queued file is indexed, content searches scan its bytes
directly, so results never miss it. Tiered merges run in the same thread after each update.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinfile.contentindex.index import Buffer, ContentIndex, IndexError_
from kinfile.settings import Settings
from kinfile.storage import content_queue
from kinfile.storage.blobs import BlobStore
from kinfile.storage.store import Store

logger = logging.getLogger(__name__)

QUEUE_PAGE = 1000


@dataclass
class UpdateResult:
    documents: int = 0
    bytes: int = 0
    missing: int = 0
    seconds: float = 0.0


@contextmanager
def mapped_blob(blobs: BlobStore, sha256: str) -> Iterator[Buffer | None]:
    """The stored bytes (mapped when the blob is a local file), or None when it is gone."""
    path = blobs.local_path(sha256)
    try:
        if path is None:
            data: Buffer = blobs.read(sha256)
            yield data
            return
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                yield b""
                return
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                yield mapped
    except (FileNotFoundError, OSError):
        yield None


class ContentService:
    def __init__(self, settings: Settings, store: Store, blobs: BlobStore) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        root = Path(settings.content_index)
        try:
            self.index = ContentIndex(root, settings.content_partitions)
        except IndexError_ as exc:  # an older kinfile wrote it, or it is damaged: derived data
            logger.warning("%s; rebuilding the content index", exc)
            shutil.rmtree(root)
            self.index = ContentIndex(root, settings.content_partitions)
            content_queue.enqueue_all(store)
        self._update_lock = threading.Lock()

    @contextmanager
    def _draining(self, wait: bool) -> Iterator[bool]:
        """One drainer of the queue at a time, across threads and processes (server workers,
        the CLI): yields False when another one is at work and ``wait`` is false."""
        if not self._update_lock.acquire(blocking=wait):
            yield False
            return
        try:
            with open(self.index.root / "update.lock", "a+") as fh:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                except BlockingIOError:
                    yield False
                    return
                try:
                    yield True
                finally:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        finally:
            self._update_lock.release()

    def update(
        self,
        max_documents: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        wait: bool = True,
    ) -> UpdateResult:
        """Index queued files in segments of ``content_batch_bytes``; returns what was done.

        ``wait=False`` returns at once when another thread or process is indexing.

        ``progress(documents, bytes)`` is called after each segment.
        """
        result = UpdateResult()
        started = time.perf_counter()
        with self._draining(wait) as mine:
            if mine:
                self._drain(result, max_documents, progress)
        result.seconds = time.perf_counter() - started
        return result

    def _drain(
        self, result: UpdateResult, max_documents: int | None, progress: Callable[[int, int], None] | None
    ) -> None:
        after: tuple[int, str] | None = None
        while max_documents is None or result.documents < max_documents:
            page = content_queue.pending(self.store, QUEUE_PAGE, after)
            if not page:
                return
            after = page[-1][:2]
            batch = [(sha, size) for _q, sha, size in page]
            if max_documents is not None:
                batch = batch[: max_documents - result.documents]
            self._index_batch(batch, result, progress)

    def _index_batch(
        self, batch: list[tuple[str, int]], result: UpdateResult, progress: Callable[[int, int], None] | None
    ) -> None:
        limit = max(1, self.settings.content_batch_bytes)
        chunk: list[str] = []
        size = 0
        for sha, file_size in batch:
            chunk.append(sha)
            size += file_size
            if size >= limit:
                self._index_chunk(chunk, result, progress)
                chunk, size = [], 0
        if chunk:
            self._index_chunk(chunk, result, progress)

    def _index_chunk(
        self, chunk: list[str], result: UpdateResult, progress: Callable[[int, int], None] | None
    ) -> None:
        missing: list[str] = []

        def documents() -> Iterator[tuple[str, Buffer]]:
            for sha in chunk:
                with mapped_blob(self.blobs, sha) as data:
                    if data is None:
                        missing.append(sha)  # report-only or removed: nothing to index
                        continue
                    yield sha, data  # the index reads it before asking for the next one

        count, total = self.index.add(documents())
        content_queue.mark_indexed(self.store, chunk)  # after the segments are committed
        result.documents += count
        result.bytes += total
        result.missing += len(missing)
        if progress:
            progress(result.documents, result.bytes)

    def delete(self, sha256s: list[str]) -> None:
        self.index.delete(sha256s)

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> UpdateResult:
        """Drop the index and index every stored file again (searches stay exact meanwhile)."""
        with self._draining(wait=True):
            content_queue.enqueue_all(self.store)
            self.index.clear()
        result = self.update(progress=progress)
        self.index.compact(full=True)
        return result

    def compact(self, full: bool = True) -> int:
        return self.index.compact(full=full)

    def pending(self) -> int:
        """Files queued for the index."""
        return content_queue.pending_count(self.store)

    def status(self) -> dict[str, Any]:
        return {**self.index.status(), "pending": self.pending()}


class ContentIndexer:
    """Background thread of the server: index queued files, then merge small segments."""

    def __init__(self, service: ContentService, interval: float) -> None:
        self.service = service
        self.interval = interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="kinfile-content-index", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout=30)

    def run_once(self) -> UpdateResult:
        result = self.service.update(wait=False)
        self.service.index.compact()
        return result

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.run_once()
            except Exception:  # the thread must survive; the next round retries
                logger.exception("content indexing failed")
            self.stop_event.wait(self.interval)
