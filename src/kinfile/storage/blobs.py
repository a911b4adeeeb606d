"""Content-addressed, write-once blob store addressed by an fsspec URL.

Layout: ``<root>/<aa>/<bb>/<sha256>`` (two levels of fan-out). A put writes to a temporary name
beside the target and renames it into place, so a reader never sees a partial blob and a crash
leaves at most a stray ``.tmp-*`` file. ``file://`` is the default; any fsspec filesystem (for
example ``s3://`` with s3fs) works through the same calls.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import fsspec

from kinfile.errors import ConfigurationError

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
BLOB_NAME = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class BlobEntry:
    """A file under the blob root: a blob (``sha256``) or a temporary file a crash left (``None``)."""

    path: str
    sha256: str | None
    mtime: float | None  # seconds since the epoch; None when the file system does not say
    size: int


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
        """Store ``data`` under ``sha256`` (atomically). Returns False if it was already there
        (then, on a local folder, its modification time is renewed: ``kinfile gc-blobs`` leaves
        a blob alone while a file using it may still be on its way to the database)."""
        target = self.path(sha256)
        there = _renewed(target) if self.local else self.fs.exists(target)
        if there:
            return False
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
        return self.remove(self.path(sha256))

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

    def entries(self) -> Iterator[BlobEntry]:
        """Every file under the root, blobs and leftovers alike (``kinfile gc-blobs``)."""
        if self.local:
            yield from self._local_entries()
            return
        for path, info in self.fs.find(self.root, detail=True).items():
            name = path.rsplit("/", 1)[-1]
            yield BlobEntry(path, _blob_name(name), _modified(info), int(info.get("size") or 0))

    def _local_entries(self) -> Iterator[BlobEntry]:
        for folder in (sub for top in _subdirs(self.root) for sub in _subdirs(top)):
            with os.scandir(folder) as found:
                for entry in found:
                    if entry.is_file(follow_symlinks=False):
                        stat = entry.stat(follow_symlinks=False)
                        yield BlobEntry(entry.path, _blob_name(entry.name), stat.st_mtime, stat.st_size)

    def mtime(self, path: str) -> float | None:
        """The modification time of a file under the root now (``None``: gone or not known)."""
        try:
            if self.local:
                return os.stat(path).st_mtime
            return _modified(self.fs.info(path))
        except FileNotFoundError:
            return None

    def remove(self, path: str) -> bool:
        """Remove a file under the root (an unreferenced blob or a leftover)."""
        try:
            if self.local:
                os.unlink(path)
            else:
                self.fs.rm(path)
        except FileNotFoundError:
            return False
        return True


def _renewed(path: str) -> bool:
    """Whether a local file is there, its modification time renewed where allowed."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError:  # there, but not ours to touch
        pass
    return True


def _modified(info: dict[str, Any]) -> float | None:
    """An fsspec file's modification time (local ``mtime``, S3 ``LastModified``, else its
    creation), in seconds since the epoch; ``None`` when the file system gives none."""
    stamp = info.get("mtime", info.get("LastModified", info.get("created")))
    if isinstance(stamp, datetime):
        return stamp.timestamp()
    return float(stamp) if isinstance(stamp, int | float) else None


def _blob_name(name: str) -> str | None:
    return name if BLOB_NAME.fullmatch(name) else None


def _subdirs(path: str) -> list[str]:
    """The two-hex-digit fan-out folders of a folder, sorted."""
    with os.scandir(path) as found:
        return sorted(e.path for e in found if len(e.name) == 2 and e.is_dir(follow_symlinks=False))
