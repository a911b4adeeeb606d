"""Both fuzzy-hash indexes, kept in step with the store (the only truth).

Start-up: the first search builds both indexes from every stored ``(sha256, ssdeep, tlsh)``.
Afterwards, at most once per ``refresh_interval`` seconds, a search first reads the rows whose
``stored_at`` (write time) is at or after the previous read's start minus ``OVERLAP`` seconds
and adds the sha256s it has not seen. A file's fuzzy hashes never change (they are hashes of
its bytes) and files are never deleted, so adding is all maintenance needs; the overlap
absorbs transactions that committed after a read although they stamped an earlier time. A
full rebuild also runs every ``rebuild_interval`` seconds as a safety net.

``fetch(since)`` is injected (``since`` = ``None`` for everything) so this module stays pure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kinfile.similarity.ssdeep_index import SsdeepIndex
from kinfile.similarity.tlsh_index import TlshIndex

logger = logging.getLogger(__name__)

OVERLAP = 120
FuzzyRow = tuple[str, str | None, str | None]  # sha256, ssdeep, tlsh
Fetch = Callable[[int | None], Iterable[FuzzyRow]]


class FuzzyIndexes:
    def __init__(self, fetch: Fetch, refresh_interval: float = 1.0, rebuild_interval: float = 3600.0) -> None:
        self.fetch = fetch
        self.refresh_interval = refresh_interval
        self.rebuild_interval = rebuild_interval
        self.ssdeep_index = SsdeepIndex()
        self.tlsh_index = TlshIndex()
        self.seen: set[str] = set()
        self.read_from: int | None = None
        self.checked = 0.0
        self.built = 0.0
        self.lock = threading.RLock()

    def rebuild(self) -> None:
        with self.lock:
            started = int(time.time())
            rows = list(self.fetch(None))
            self.ssdeep_index.build((sha, s) for sha, s, _t in rows if s)
            self.tlsh_index.build((sha, t) for sha, _s, t in rows if t)
            self.seen = {sha for sha, _s, _t in rows}
            self.read_from = started
            self.built = self.checked = time.monotonic()
            logger.info("fuzzy indexes built: %d files", len(self.seen))

    def refresh(self, force: bool = False) -> None:
        with self.lock:
            now = time.monotonic()
            if self.read_from is None or now - self.built > self.rebuild_interval:
                self.rebuild()
                return
            if not force and now - self.checked < self.refresh_interval:
                return
            started = int(time.time())
            for sha256, ssdeep, tlsh in self.fetch(self.read_from - OVERLAP):
                if sha256 in self.seen:
                    continue
                self.seen.add(sha256)
                if ssdeep:
                    self.ssdeep_index.add(sha256, ssdeep)
                if tlsh:
                    self.tlsh_index.add(sha256, tlsh)
            self.read_from = started
            self.checked = now

    def ssdeep(self, digest: str, threshold: int, deadline: Any = None) -> dict[str, int]:
        self.refresh()
        with self.lock:
            return self.ssdeep_index.search(digest, threshold, deadline)

    def tlsh(self, digest: str, max_distance: int, deadline: Any = None) -> dict[str, int]:
        self.refresh()
        with self.lock:
            return self.tlsh_index.search(digest, max_distance, deadline)
