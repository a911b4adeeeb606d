"""Hostile files (both backends): each case was a 500 or a lost batch before, found by
ingesting ~2,000 mutants of real corpus files. A clear 4xx or a stored report now."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kinfile.ingest import run_ingest
from kinfile.jsontext import dumps_report
from kinfile.settings import Settings
from kinfile.storage.store import Store
from tests.api.test_files_api import assert_error, make_client

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def client(backend_settings: Settings) -> TestClient:
    return make_client(backend_settings)[0]


def _flip(path: Path, marker: bytes, offset: int, value: int) -> bytes:
    data = bytearray(path.read_bytes())
    data[data.index(marker) + offset] = value
    return bytes(data)


def _report(client: TestClient, data: bytes, name: str) -> dict[str, Any]:
    r = client.post("/api/v3/files", files={"file": (name, data)})
    assert r.status_code == 200, r.text
    r = client.get(f"/api/v3/files/{hashlib.sha256(data).hexdigest()}")
    assert r.status_code == 200, r.text
    return r.json()["data"]["attributes"]  # type: ignore[no-any-return]


def test_symbol_names_that_are_not_utf8(client: TestClient) -> None:
    """LIEF gives ``bytes`` for such a name; the report held them and could not be stored."""
    elf = _flip(DATA / "elf" / "libmemusage-amd64.so_", b"__cxa_finalize\x00", 3, 0xF0)
    imports = [e["name"] for e in _report(client, elf, "lib.so")["elf_info"]["import_list"]]
    assert "__c\ufffda_finalize" in imports and "__cxa_finalize" not in imports
    macho = _flip(DATA / "macho" / "_psutil_osx-x86_64.so_", b"_mach_task_self_\x00", 1, 0x92)
    attrs = _report(client, macho, "psutil.so")
    assert "\ufffd" in json.dumps(attrs, ensure_ascii=False)


def test_member_names_that_are_not_text(client: TestClient) -> None:
    """A TAR member name that is not UTF-8 (lone surrogates in Python) names the child relation."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, errors="surrogateescape") as tar:
        info = tarfile.TarInfo("\udcffname\x00.bin")
        payload = b"a member with a hostile name"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    attrs = _report(client, buffer.getvalue(), "hostile.tar")
    assert attrs["type_tag"] in ("tar", "archive") or "bundle_info" in attrs
    child = hashlib.sha256(b"a member with a hostile name").hexdigest()
    assert client.get(f"/api/v3/files/{child}").status_code == 200


def _zip(name: str, payload: bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        zf.writestr(name, payload)
    return buffer.getvalue()


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_password_uploads_of_corrupt_members_are_bad_requests(client: TestClient, method: int) -> None:
    good = _zip("a.exe", b"MZ" + bytes(range(256)) * 64, method)
    start = good.index(b"PK\x03\x04") + 30 + len("a.exe")  # the member's compressed stream
    corrupt = good[:start] + bytes(b ^ 0x5A for b in good[start : start + 40]) + good[start + 40 :]
    r = client.post("/api/v3/files", files={"file": ("s.zip", corrupt)}, data={"password": "infected"})
    assert_error(r, 400, "BadRequestError")


def test_password_uploads_keep_the_member_name_not_its_path(client: TestClient) -> None:
    payload = b"MZ member with a path"
    r = client.post(
        "/api/v3/files",
        files={"file": ("s.zip", _zip("../../dir\\evil.exe", payload))},
        data={"password": "infected"},
    )
    assert r.status_code == 200, r.text
    attrs = client.get(f"/api/v3/files/{hashlib.sha256(payload).hexdigest()}").json()["data"]["attributes"]
    assert attrs["names"] == ["evil.exe"]
    r = client.post(
        "/api/v3/files",
        files={"file": ("s.zip", _zip("Xhidden", payload).replace(b"Xhidden", b"\x00hidden"))},
        data={"password": "x"},
    )
    assert_error(r, 400, "BadRequestError")  # its name reads as "": no file in it


def test_a_file_that_cannot_be_stored_fails_alone(
    settings: Settings, tmp_path: Path, monkeypatch: Any
) -> None:
    """A batch whose rows fail to store is stored file by file: the others are kept and the one
    that fails is reported (before: a traceback, and the whole batch was lost)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("hello_exec.elf_", "hello_pie.elf_", "libmemusage-amd64.so_"):
        (folder / name).write_bytes((DATA / "elf" / name).read_bytes())
    bad = hashlib.sha256((DATA / "elf" / "hello_pie.elf_").read_bytes()).hexdigest()
    save = Store.save

    def failing(self: Store, items: Any, runs: Any = ()) -> Any:
        items = list(items)
        if any(item.sha256 == bad for item in items):
            raise ValueError("rows this database cannot hold")
        return save(self, items, runs)

    monkeypatch.setattr(Store, "save", failing)
    summary = run_ingest(settings, [str(folder)], jobs=1)
    assert (summary.new, summary.failed) == (2, 1)
    assert summary.failures[0][1] == "cannot store: ValueError: rows this database cannot hold"
    store = Store(settings.db)
    assert store.get_file(bad) is None and len(store.get_reports([bad])) == 0
    store.close()


def test_undecoded_bytes_are_stored_as_text() -> None:
    """The last resort of the report writer: bytes a parser left undecoded become text."""
    assert dumps_report({"b": b"ok\xff", "s": {"x"}}) == '{"b":"ok\ufffd","s":["x"]}'
