"""The ClamAV engine against a real clamd started with a signature database written here.

No freshclam, no internet: the database holds a hash (.hdb) and a body (.ndb) signature for
chosen test files. Without ClamAV installed these tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinfile.engines.base import Target
from kinfile.engines.clamav import ClamAVEngine, Clamd, parse_version
from tests.conftest import FOUNDATION

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CLAMD = shutil.which("clamd") or ("/usr/sbin/clamd" if Path("/usr/sbin/clamd").exists() else None)


def _need_clamav() -> None:
    if CLAMD is None or shutil.which("clamscan") is None:
        if IN_CI:
            pytest.fail("CI must run the ClamAV tests: apt-get install clamav clamav-daemon")
        pytest.skip("ClamAV not installed (apt-get install clamav clamav-daemon)")


def _members(name: str) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO((FOUNDATION / name).read_bytes())) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need_clamav()
    db = tmp_path_factory.mktemp("clamdb")
    wmasf = (FOUNDATION / "wmasf.dll_").read_bytes()
    inner = next(iter(_members("clam.zip_").values()))
    (db / "kinfile.hdb").write_text(
        f"{hashlib.md5(wmasf).hexdigest()}:{len(wmasf)}:Kinfile.Test.WmasfHash\n"
        f"{hashlib.md5(inner).hexdigest()}:{len(inner)}:Kinfile.Test.ClamExe\n"
    )
    xslt = (FOUNDATION / "testxslt.js_").read_bytes()
    (db / "kinfile.ndb").write_text(f"Kinfile.Test.XsltBody:0:*:{xslt[100:132].hex()}\n")
    return db


@pytest.fixture(scope="module")
def clamd_socket(database: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    run = tmp_path_factory.mktemp("clamd")
    sock = run / "clamd.sock"
    conf = run / "clamd.conf"
    lines = [
        f"LocalSocket {sock}",
        f"DatabaseDirectory {database}",
        "Foreground yes",
        f"TemporaryDirectory {run}",
        f"LogFile {run / 'clamd.log'}",
    ]
    if os.geteuid() == 0:
        lines.append("User root")
    conf.write_text("\n".join(lines) + "\n")
    assert CLAMD is not None
    proc = subprocess.Popen([CLAMD, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"clamd exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                if sock.exists() and Clamd(str(sock), 5).command("PING") == "PONG":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "clamd did not start"
            time.sleep(0.2)
        yield str(sock)
    finally:
        proc.terminate()
        proc.wait(20)


def test_clamd_verdicts_from_written_signatures(clamd_socket: str) -> None:
    engine = ClamAVEngine(clamd_socket, timeout=30)
    info = engine.info()
    assert info.available and info.name == "ClamAV" and info.version.count(".") >= 1
    expected = {
        "wmasf.dll_": ("malicious", "Kinfile.Test.WmasfHash"),
        "testxslt.js_": ("malicious", "Kinfile.Test.XsltBody"),
        "clam.zip_": ("malicious", "Kinfile.Test.ClamExe"),  # clamd looks inside the ZIP
        "lab-protocol_v5.rtf_": ("undetected", None),
        "I18N.MidEast.dll_": ("undetected", None),
    }
    for name, (category, label) in expected.items():
        res = engine.scan(Target((FOUNDATION / name).read_bytes())).results["ClamAV"]
        assert (res["category"], res["result"]) == (category, label), name
        assert res["engine_version"] == info.version and res["method"] == "blacklist"


def test_clamscan_without_daemon(database: Path) -> None:
    engine = ClamAVEngine(f"clamscan:{database}", timeout=60)
    assert engine.info().available, engine.info().detail
    res = engine.scan(Target((FOUNDATION / "wmasf.dll_").read_bytes())).results["ClamAV"]
    assert (res["category"], res["result"]) == ("malicious", "Kinfile.Test.WmasfHash")
    res = engine.scan(Target(b"nothing to see here")).results["ClamAV"]
    assert res["category"] == "undetected"


def test_unreachable_clamd_is_unavailable_not_an_error(tmp_path: Path) -> None:
    engine = ClamAVEngine(str(tmp_path / "missing.sock"))
    info = engine.info()
    assert not info.available and "missing.sock" in info.detail
    assert engine.scan(Target(b"data")).results == {}
    assert not ClamAVEngine("off").info().available


def test_version_line_parsing() -> None:
    assert parse_version("ClamAV 1.4.6/27400/Mon Sep 29 08:21:11 2025") == ("1.4.6", "20250929")
    assert parse_version("ClamAV 1.4.6")[0] == "1.4.6"
