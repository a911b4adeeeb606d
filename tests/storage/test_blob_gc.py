"""``kinfile gc-blobs`` (kinfile/blob_gc.py): blobs no stored file uses, and temporary files of
interrupted writes, go once older than the grace period; everything a stored file uses stays.
Both backends."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from kinfile import blob_gc
from kinfile.cli import main
from kinfile.importer import Importer
from kinfile.services import Services
from kinfile.settings import Settings

PE = Path(__file__).resolve().parents[1] / "data" / "pe" / "ClrLoader-x86.dll_"
DAY = 86400.0


@pytest.fixture
def services(backend_settings: Settings) -> Iterator[Services]:
    found = Services(backend_settings)
    yield found
    found.close()


def _age(path: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _orphan(services: Services, data: bytes, age: float) -> str:
    sha = hashlib.sha256(data).hexdigest()
    assert services.blobs.put_bytes(sha, data)
    _age(services.blobs.path(sha), age)
    return sha


def test_unused_blobs_and_leftovers_go_used_ones_stay(services: Services) -> None:
    data = PE.read_bytes()
    stored, _analysis = services.submit_bytes(data, "ClrLoader.dll", "test")  # a file with its bytes
    _age(services.blobs.path(stored), 3 * DAY)
    old = _orphan(services, b"rows failed to store" * 10, 2 * DAY)
    young = _orphan(services, b"being ingested right now", 60)
    report_only = hashlib.sha256(b"report only").hexdigest()  # its bytes' submission failed
    line = {"sha256": report_only, "av_labels": [["Kaspersky", "Trojan.Win32.Agent.a"]]}
    assert Importer(services.store, "t").import_lines([json.dumps(line)]).created == 1
    assert services.blobs.put_bytes(report_only, b"report only")
    _age(services.blobs.path(report_only), 2 * DAY)
    leftover = services.blobs.path(old) + ".tmp-0123456789ab"
    Path(leftover).write_bytes(b"half a write")
    _age(leftover, 2 * DAY)

    dry = services.collect_blobs(DAY, dry_run=True)
    assert (dry.scanned, dry.unreferenced, dry.leftovers, dry.young) == (5, 2, 1, 1)
    assert (
        all(services.blobs.exists(s) for s in (stored, old, young, report_only)) and Path(leftover).exists()
    )

    seen: list[int] = []
    done = services.collect_blobs(DAY, progress=seen.append)
    assert (done.unreferenced, done.leftovers, done.young) == (2, 1, 1) and sum(seen) == 5
    assert done.freed == len(b"rows failed to store" * 10) + len(b"report only") + len(b"half a write")
    assert not services.blobs.exists(old) and not services.blobs.exists(report_only)
    assert not Path(leftover).exists()
    assert services.blobs.exists(young)  # within the grace period
    assert services.blobs.read(stored) == data  # still downloadable
    assert services.collect_blobs(DAY).unreferenced == 0
    assert services.collect_blobs(0).unreferenced == 1  # no grace: the young one goes too


def test_a_blob_used_again_meanwhile_is_kept(services: Services) -> None:
    """The check right before removal: a blob whose file reached the database after the listing,
    or that a submission re-used (put_bytes renews its time), stays."""
    data = PE.read_bytes()
    sha = _orphan(services, data, 2 * DAY)
    [entry] = [e for e in services.blobs.entries() if e.sha256 == sha]
    services.submit_bytes(data, "ClrLoader.dll", "test")  # stored now, re-using the blob
    renewed = services.blobs.mtime(entry.path)
    assert renewed is not None and renewed > time.time() - 60  # by put_bytes
    assert not blob_gc._remove(services.store, services.blobs, entry, time.time() - DAY)
    _age(entry.path, 2 * DAY)
    assert not blob_gc._remove(services.store, services.blobs, entry, time.time() - DAY)  # in use
    assert services.blobs.read(sha) == data


def test_cli(services: Services, backend_settings: Settings) -> None:
    _orphan(services, b"unused", 2 * DAY)
    base = ["--home", str(backend_settings.home), "--db", backend_settings.db]
    result = CliRunner().invoke(main, [*base, "gc-blobs", "--dry-run"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout.startswith("would remove 1 unreferenced blob(s) and 0 leftover temporary file(s)")
    result = CliRunner().invoke(main, [*base, "gc-blobs", "--grace", "1"], catch_exceptions=False)
    assert result.exit_code == 0 and result.stdout.startswith("removed 1 unreferenced blob(s)")
    result = CliRunner().invoke(main, [*base, "gc-blobs", "--grace", "-1"])
    assert result.exit_code == 2 and "--grace" in result.output


def test_an_fsspec_blob_store(tmp_path: Path) -> None:
    """A remote blob store (fsspec; here the in-memory one) is listed with its files' times."""
    from kinfile.storage.blobs import BlobStore
    from kinfile.storage.store import Store

    store = Store(f"sqlite:///{tmp_path / 'k.db'}")
    store.migrate()
    blobs = BlobStore(f"memory://gc-{tmp_path.name}")
    sha = hashlib.sha256(b"remote orphan").hexdigest()
    assert blobs.put_bytes(sha, b"remote orphan") and not blobs.local
    [entry] = list(blobs.entries())
    assert entry.sha256 == sha and entry.size == 13 and entry.mtime and entry.mtime > time.time() - 60
    assert blob_gc.collect(store, blobs, DAY).young == 1 and blobs.exists(sha)
    assert blob_gc.collect(store, blobs, 0).unreferenced == 1 and not blobs.exists(sha)
    store.close()
