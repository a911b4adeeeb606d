"""ExifTool integration: one stay_open process, merged output, failures contained."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kinfile.analysis.exiftool import ExifTool, get_exiftool, merge
from kinfile.analysis.pipeline import Limits, analyse_bytes
from tests.conftest import FOUNDATION

needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")


def test_merge_prefers_exiftool_values() -> None:
    assert merge({"FileType": "Win32 EXE", "A": 1}, {"FileType": "Win32 DLL", "B": 2}) == {
        "FileType": "Win32 DLL",
        "A": 1,
        "B": 2,
    }
    assert merge(None, {"B": 2}) == {"B": 2}


def test_off_and_missing_programs() -> None:
    assert get_exiftool("off") is None
    assert get_exiftool("/nonexistent/exiftool") is None


@needs_exiftool
def test_one_process_serves_many_files() -> None:
    tool = ExifTool(shutil.which("exiftool") or "exiftool")
    try:
        first = tool.metadata((FOUNDATION / "wmasf.dll_").read_bytes())
        pid = tool._proc.pid if tool._proc else None
        second = tool.metadata((FOUNDATION / "meeting-minutes_v2.doc_").read_bytes())
        assert tool._proc is not None and tool._proc.pid == pid
        assert first["FileType"] == "Win32 DLL"
        assert first["MIMEType"] == "application/octet-stream"
        assert "SourceFile" not in first and "FileName" not in first
        assert second["FileType"] == "DOC"
        assert tool.metadata(b"") == {} or "FileType" not in tool.metadata(b"")
    finally:
        tool.close()


@needs_exiftool
def test_pipeline_merges_exiftool_output() -> None:
    data = (FOUNDATION / "wmasf.dll_").read_bytes()
    with_tool = analyse_bytes(data, limits=Limits(exiftool="auto")).record.attributes["exiftool"]
    assert with_tool["FileType"] == "Win32 DLL"
    assert "LinkerVersion" in with_tool and "Subsystem" in with_tool


@needs_exiftool
def test_a_hung_exiftool_is_restarted(tmp_path) -> None:
    script = tmp_path / "fake-exiftool"
    script.write_text("#!/bin/sh\nsleep 30\n")
    script.chmod(0o755)
    tool = ExifTool(str(script), timeout=0.5)
    assert tool.metadata(b"abc") == {}
    assert tool._proc is None


@needs_exiftool
def test_exiftool_ends_with_its_parent() -> None:
    import os
    import subprocess
    import sys
    import time

    code = (
        "import os\n"
        "from kinfile.analysis.exiftool import get_exiftool\n"
        "t = get_exiftool('auto')\n"
        f"t.metadata(open({str(FOUNDATION / 'wmasf.dll_')!r}, 'rb').read())\n"
        "print(t._proc.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    child = int(out.split()[0])
    for _ in range(50):
        try:
            state = Path(f"/proc/{child}/stat").read_text().split(")")[1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":
            return
        time.sleep(0.1)
    os.kill(child, 9)
    raise AssertionError("exiftool outlived its parent")
