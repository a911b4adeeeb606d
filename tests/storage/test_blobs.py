"""The content-addressed blob store, on the local filesystem and through fsspec (memory://)."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest

from kinfile.errors import ConfigurationError
from kinfile.storage.blobs import BlobStore


@pytest.fixture(params=["file", "memory"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "file":
        return BlobStore(f"file://{tmp_path / 'blobs'}")
    return BlobStore(f"memory://kinfile-test-{secrets.token_hex(4)}")


def test_write_once_read_back_and_fan_out(blobs: BlobStore) -> None:
    data = secrets.token_bytes(3 * 1024 * 1024 + 17)
    sha = hashlib.sha256(data).hexdigest()
    assert not blobs.exists(sha)
    assert blobs.put_bytes(sha, data) is True
    assert blobs.put_bytes(sha, data) is False  # write-once
    assert blobs.exists(sha)
    assert blobs.read(sha) == data
    assert b"".join(blobs.iter_chunks(sha, 1024 * 1024)) == data
    assert blobs.size(sha) == len(data)
    assert blobs.path(sha).endswith(f"/{sha[:2]}/{sha[2:4]}/{sha}")


def test_no_temporary_files_are_left(tmp_path: Path) -> None:
    store = BlobStore(f"file://{tmp_path / 'b'}")
    for i in range(20):
        data = f"blob {i}".encode()
        store.put_bytes(hashlib.sha256(data).hexdigest(), data)
    names = [p.name for p in (tmp_path / "b").rglob("*") if p.is_file()]
    assert len(names) == 20 and not [n for n in names if ".tmp-" in n]


def test_unknown_protocol_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        BlobStore("nosuchproto://bucket/path")
