"""Content-addressed, write-once blob store addressed by an fsspec URL.

Layout: ``<root>/<aa>/<bb>/<sha256>`` (two levels of fan-out). A put writes to a temporary name
beside the target and renames it into place, so a reader never sees a partial blob and a crash
leaves at most a stray ``.tmp-*`` file. ``file://`` is the default; any fsspec filesystem (for
example ``s3://`` with s3fs) works through the same calls.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import fsspec

from kinfile.errors import ConfigurationError

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024


class BlobStore:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise ConfigurationError(f"cannot open blob store {url!r}: {exc}") from exc
        self.root = self.root.rstrip("/")
        self.local = self.fs.protocol in ("file", "local") or "file" in tuple(self.fs.protocol)
        self._made: set[str] = set()
        if self.local:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    def _parent_dir(self, target: str) -> None:
        parent = target.rsplit("/", 1)[0]
        if parent not in self._made:
            Path(parent).mkdir(parents=True, exist_ok=True)
            self._made.add(parent)

    def path(self, sha256: str) -> str:
        return f"{self.root}/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def exists(self, sha256: str) -> bool:
        target = self.path(sha256)
        if self.local:
            return os.path.exists(target)
        return bool(self.fs.exists(target))

    def put_bytes(self, sha256: str, data: bytes) -> bool:
        """Store ``data`` under ``sha256`` (atomically). Returns False if it was already there."""
        if self.exists(sha256):
            return False
        target = self.path(sha256)
        tmp = f"{target}.tmp-{secrets.token_hex(6)}"
        if self.local:
            self._parent_dir(target)
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            return True
        with self.fs.open(tmp, "wb") as fh:
            fh.write(data)
        self.fs.mv(tmp, target)
        return True

    def delete(self, sha256: str) -> bool:
        """Remove a blob (its file was deleted). Returns False if it was not there."""
        target = self.path(sha256)
        try:
            if self.local:
                os.unlink(target)
            else:
                self.fs.rm(target)
        except FileNotFoundError:
            return False
        return True

    def open(self, sha256: str) -> IO[bytes]:
        handle: Any = self.fs.open(self.path(sha256), "rb")
        return handle  # type: ignore[no-any-return]

    def read(self, sha256: str) -> bytes:
        with self.open(sha256) as fh:
            return fh.read()

    def iter_chunks(self, sha256: str, chunk: int = CHUNK) -> Iterator[bytes]:
        with self.open(sha256) as fh:
            while block := fh.read(chunk):
                yield block

    def size(self, sha256: str) -> int:
        return int(self.fs.size(self.path(sha256)))

    def local_path(self, sha256: str) -> str | None:
        return self.path(sha256) if self.local else None
