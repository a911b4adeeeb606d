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


def test_paths_that_cannot_be_read_fail_alone(settings: Settings, tmp_path: Path) -> None:
    """A name too long or holding NUL was a traceback that stopped the whole run."""
    good = tmp_path / "good.elf"
    good.write_bytes((DATA / "elf" / "hello_exec.elf_").read_bytes())
    summary = run_ingest(settings, [str(good), str(tmp_path / ("y" * 300)), "a\x00b"], jobs=1)
    assert (summary.new, summary.failed) == (1, 2)
    reasons = sorted(reason for _path, reason in summary.failures)
    assert reasons == ["cannot read: File name too long", "cannot read: embedded null byte"]


def test_engine_scans_share_the_submission_budget(settings: Settings) -> None:
    """Each sub-file got its engines' own timeout: a ZIP of N slow members took N timeouts."""
    import dataclasses
    import time

    from kinfile.analysis.pipeline import analyse_bytes
    from kinfile.engines.base import EngineInfo, Target, Verdict
    from kinfile.verdicts import Verdicts

    class Slow:
        name = "Slow"

        def info(self) -> EngineInfo:
            return EngineInfo("Slow", "1", "20260101", True)

        def scan(self, target: Target) -> Verdict:
            time.sleep(0.2)
            return Verdict()

    members = {f"m{i}.bin": b"member %d " % i * 50 for i in range(8)}
    node = analyse_bytes(_zip_members(members))
    assert len(node.children) == 8
    verdicts = Verdicts(dataclasses.replace(settings, submission_timeout=0.5), engines=[Slow()])
    started = time.monotonic()
    runs = verdicts.scan_tree(node)
    assert time.monotonic() - started < 1.2 and len(runs) == 9  # the submitted file first
    assert runs[0].sha256 == node.record.sha256
    skipped = [c for _, c in node.children if "anomalies" in c.record.attributes]
    assert 4 <= len(skipped) < 8
    budget = "not scanned: the submission's 0.5 s time budget ran out"
    assert skipped[0].record.attributes["anomalies"] == [budget]


def _zip_members(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return buffer.getvalue()


def test_an_undecodable_source_key_is_stored(settings: Settings, tmp_path: Path) -> None:
    """``kinfile ingest --source $'\\xff'`` failed every file (UnicodeEncodeError)."""
    good = tmp_path / "good.elf"
    good.write_bytes((DATA / "elf" / "hello_exec.elf_").read_bytes())
    summary = run_ingest(settings, [str(good)], source="\udcff", jobs=1)
    assert (summary.new, summary.failed) == (1, 0)


def test_a_bad_upload_url_says_so(client: TestClient) -> None:
    r = client.post("/api/v3/files/upload/garbage", files={"file": ("a.bin", b"data")})
    assert_error(r, 400, "InvalidArgumentError")
    assert r.json()["error"]["message"] == "invalid upload URL"
