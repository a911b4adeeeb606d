"""Use-cases shared by the API and the CLI. The only module (with ``ingest``) that holds a Store."""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from kinfile import blob_gc
from kinfile.analysis.pipeline import analyse_bytes
from kinfile.content import ContentService
from kinfile.engines.base import empty_stats
from kinfile.errors import BadRequestError, InvalidArgumentError, NotFoundError, PayloadTooLargeError
from kinfile.hashing.digests import is_hash
from kinfile.ingest import build_items, limits_from
from kinfile.models import INTERNAL_KEYS, Submission
from kinfile.settings import Settings
from kinfile.storage import content_queue, deletion
from kinfile.storage.blobs import BlobStore
from kinfile.storage.store import AnalysisRow, FileRow, Store
from kinfile.tokens import Signer, parse_analysis_id
from kinfile.verdicts import Verdicts

logger = logging.getLogger(__name__)

SUBMISSION_KEYS = frozenset(
    {"first_submission_date", "last_submission_date", "times_submitted", "unique_sources", "meaningful_name"}
)


@dataclass
class Page:
    """One page of a collection: items plus the cursor of the next page (``None`` at the end)."""

    items: list[dict[str, Any]]
    cursor: str | None
    count: int | None = None


def load_secret(settings: Settings) -> bytes:
    """The signing secret: the setting, or ``<home>/secret.key`` (created 0600 on first use)."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.home / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
        except FileExistsError:  # pragma: no cover - another process created it first
            pass
        finally:
            os.close(fd)
    return path.read_bytes().strip()


class Services:
    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        blobs: BlobStore | None = None,
        migrate: bool = True,
    ) -> None:
        self.settings = settings
        self.store = store or Store(settings.db)
        if migrate:
            self.store.migrate()
        self.blobs = blobs or BlobStore(settings.blobs)
        self.signer = Signer(load_secret(settings))
        self.verdicts = Verdicts(settings)

    def close(self) -> None:
        self.store.close()

    @cached_property
    def content(self) -> ContentService:
        """The content (n-gram) index behind ``content:`` searches."""
        return ContentService(self.settings, self.store, self.blobs)

    def delete_files(self, file_hashes: list[str]) -> list[str]:
        """Delete stored files, and their sub-files that nothing else holds; returns sha256s.

        A sub-file goes with its container when every container it has is deleted and it was
        never submitted on its own (all its submissions are extractions).
        """
        doomed = {self.resolve(h) for h in file_hashes}
        level = set(doomed)
        for _depth in range(self.settings.max_child_depth):  # level by level: holders go first
            below = {c for cs in content_queue.children(self.store, level).values() for c in cs} - doomed
            holders = content_queue.parents(self.store, below)
            level = {
                c
                for c in below
                if holders.get(c, set()) <= doomed and content_queue.only_extracted(self.store, c)
            }
            if not level:
                break
            doomed |= level
        deleted = deletion.delete_files(self.store, sorted(doomed))
        self.content.delete(deleted)
        for sha256 in deleted:
            self.blobs.delete(sha256)
        return deleted

    def collect_blobs(
        self, grace: float, dry_run: bool = False, progress: Callable[[int], None] | None = None
    ) -> blob_gc.Collected:
        """Remove the blobs no stored file uses, older than ``grace`` seconds (kinfile gc-blobs)."""
        return blob_gc.collect(self.store, self.blobs, grace, dry_run, progress)

    # -- files ---------------------------------------------------------------------------
    def resolve(self, file_hash: str) -> str:
        if is_hash(file_hash) is None:
            raise InvalidArgumentError(f"{file_hash!r} is not a valid file hash (md5, sha1 or sha256)")
        sha256 = self.store.resolve(file_hash)
        if sha256 is None:
            raise NotFoundError(f'File "{file_hash}" not found')
        return sha256

    def get_file(self, file_hash: str) -> FileRow:
        sha256 = self.resolve(file_hash)
        row = self.store.get_file(sha256)
        if row is None:
            raise NotFoundError(f'File "{file_hash}" not found')
        return row

    def file_attributes(self, row: FileRow) -> dict[str, Any]:
        """The VirusTotal ``attributes`` of a stored file: report plus live columns."""
        attrs = {k: v for k, v in row.report.items() if k not in INTERNAL_KEYS}
        c = row.columns
        own_submissions = bool(c.get("times_submitted"))
        for key in (
            "first_submission_date",
            "last_submission_date",
            "last_analysis_date",
            "last_modification_date",
            "times_submitted",
            "unique_sources",
            "meaningful_name",
        ):
            if c.get(key) is None:
                continue
            if key in SUBMISSION_KEYS and not own_submissions and key in attrs:
                continue  # a report-only (imported) file: VirusTotal's counters stand
            attrs[key] = c[key]
        imported_names = [n for n in attrs.get("names") or [] if n not in row.names]
        attrs["names"] = row.names + imported_names
        attrs["downloadable"] = bool(c.get("downloadable"))
        attrs.setdefault("last_analysis_results", {})
        attrs.setdefault("last_analysis_stats", empty_stats())
        attrs.setdefault("reputation", 0)
        attrs.setdefault("total_votes", {"harmless": 0, "malicious": 0})
        return attrs

    def submit_bytes(
        self, data: bytes, name: str | None, source_key: str, interface: str = "api", date: int | None = None
    ) -> tuple[str, str]:
        """Analyse and store an uploaded file. Returns ``(sha256, analysis id)``."""
        size = len(data)
        if size == 0:
            raise BadRequestError("the file is empty (0 bytes)")
        if size > self.settings.max_upload_size:
            raise PayloadTooLargeError(
                f"file of {size} bytes exceeds the maximum of {self.settings.max_upload_size} bytes"
            )
        when = int(date if date is not None else time.time())
        node = analyse_bytes(data, name, limits_from(self.settings))
        sha256 = node.record.sha256
        known = self.store.known([sha256]).get(sha256)
        submission = Submission(date=when, name=name, source_key=source_key, interface=interface)
        run = self._scan(node)
        item = build_items(node, submission, self.blobs, known)
        item.replace_report = known is not None
        self.store.save([item], [run])
        return sha256, run.id

    def reanalyse(self, file_hash: str) -> str:
        """Re-run analysis and the engines on the stored bytes (a rescan); returns the analysis id."""
        sha256 = self.resolve(file_hash)
        if not self.blobs.exists(sha256):
            raise NotFoundError(f'the content of file "{sha256}" is not stored (report only)')
        data = self.blobs.read(sha256)
        node = analyse_bytes(data, None, limits_from(self.settings))
        run = self._scan(node)
        self.store.save([_report_only_item(node, self.blobs)], [run])
        return run.id

    rescan = reanalyse

    def _scan(self, node: Any) -> AnalysisRow:
        """Run the engines over an analysed tree; the analysis row of the submitted file."""
        runs = self.verdicts.scan_tree(node)
        if runs:
            return runs[0].analysis()
        return AnalysisRow(node.record.sha256, int(time.time()), "completed", empty_stats(), {})

    def get_analysis(self, ident: str) -> dict[str, Any]:
        sha256 = parse_analysis_id(ident)
        found = self.store.get_analysis(sha256, ident) if sha256 else None
        if found is None:
            raise NotFoundError(f'Analysis "{ident}" not found')
        return found

    # -- downloads -----------------------------------------------------------------------
    def open_blob(self, file_hash: str) -> tuple[str, int]:
        sha256 = self.resolve(file_hash)
        if not self.blobs.exists(sha256):
            raise NotFoundError(f'the content of file "{sha256}" is not available')
        return sha256, self.blobs.size(sha256)

    def iter_blob(self, sha256: str) -> Iterator[bytes]:
        yield from self.blobs.iter_chunks(sha256)

    def download_token(self, sha256: str) -> str:
        return self.signer.sign({"s": sha256, "e": int(time.time()) + self.settings.download_url_ttl})

    def verify_download_token(self, token: str) -> str:
        payload = self.signer.verify(token, "download token")
        sha256, expires = payload.get("s"), payload.get("e")
        # the signer also signs cursors and upload URLs: only a download token names a file
        if not isinstance(sha256, str) or is_hash(sha256) != "sha256" or not isinstance(expires, int):
            raise InvalidArgumentError("not a download token")
        if expires < time.time():
            raise InvalidArgumentError("download URL expired")
        return sha256

    # -- cursors -------------------------------------------------------------------------
    def encode_cursor(self, payload: dict[str, Any]) -> str:
        return self.signer.sign(payload)

    def decode_cursor(self, cursor: str | None) -> dict[str, Any]:
        return self.signer.verify(cursor) if cursor else {}

    # -- API keys ------------------------------------------------------------------------
    def api_key_owner(self, key: str) -> str | None:
        return self.store.api_key_name(key)


def _report_only_item(node: Any, blobs: BlobStore) -> Any:
    item = build_items(node, None, blobs, known_version=node.record.schema_version)
    item.replace_report = True
    return item
