"""Mach-O analyser on real wheels' extension modules, against LIEF and ExifTool values."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinfile.formats import macho

DATA = Path(__file__).resolve().parent.parent / "data" / "macho"
FAT = DATA / "_speedups-universal2.so_"
X86 = DATA / "_psutil_osx-x86_64.so_"
ARM = DATA / "_psutil_osx-arm64.so_"
CORPUS = Path("/work/shared/corpus")


def corpus_machos() -> list[Path]:
    manifest = CORPUS / "manifest.jsonl"
    if not manifest.exists():
        return []
    rows = (json.loads(line) for line in manifest.read_text().splitlines() if line.strip())
    return [CORPUS / "files" / r["sha256"] for r in rows if r["kind"] == "macho"]


def test_fat_binary_has_one_entry_per_architecture() -> None:
    result = macho.analyse(FAT.read_bytes())
    entries = result["macho_info"]
    assert [e["headers"]["cpu_type"] for e in entries] == ["X86_64", "ARM64"]
    assert [e["headers"]["cpu_subtype"] for e in entries] == ["X86_64_ALL", "ARM64_ALL"]
    assert all(e["headers"]["file_type"] == "BUNDLE" for e in entries)
    assert entries[0]["headers"] == {
        "magic": "0xfeedfacf",
        "cpu_type": "X86_64",
        "cpu_subtype": "X86_64_ALL",
        "file_type": "BUNDLE",
        "num_cmds": 11,
        "size_cmds": 1216,
        "flags": ["NOUNDEFS", "DYLDLINK", "TWOLEVEL"],
    }
    assert entries[0]["min_version"] == {"platform": "MACOS", "version": "10.9.0", "sdk": "14.5.0"}
    assert entries[0]["exports"] == ["_PyInit__speedups"]
    assert result["tags"] == ["64bits", "macho", "signed", "universal"]
    assert result["exiftool"] == {
        "FileType": "Mach-O fat dynamic bound bundle",
        "FileTypeExtension": "dylib",
        "MIMEType": "application/octet-stream",
        "CPUCount": 2,
        "CPUType": ["x86 64-bit", "ARM 64-bit"],
        "CPUSubtype": ["i386 (all) 64-bit", "ARM (all) 64-bit"],
        "ObjectFileType": "Dynamically bound bundle",
    }
    assert "anomalies" not in result


def test_thin_arm64_signed_with_build_version() -> None:
    result = macho.analyse(ARM.read_bytes())
    (entry,) = result["macho_info"]
    assert entry["build_version"] == {"platform": "MACOS", "min_os": "11.0.0", "sdk": "15.5.0"}
    assert entry["signature"]["in_file"] is True
    assert {"type": "LC_CODE_SIGNATURE"} in entry["commands"]
    assert "/usr/lib/libSystem.B.dylib" in entry["libs"]
    assert result["tags"] == ["64bits", "macho", "signed"]
    assert result["exiftool"]["ObjectFlags"] == "No undefs, Dyld link, Two level"
    assert result["exiftool"]["CPUType"] == "ARM 64-bit"


@pytest.mark.parametrize("path", sorted(DATA.glob("*_")), ids=lambda p: p.name)
def test_values_match_lief(path: Path) -> None:
    import lief

    fat = lief.MachO.parse(str(path))
    assert fat is not None
    entries = macho.analyse(path.read_bytes())["macho_info"]
    assert len(entries) == fat.size
    for entry, binary in zip(entries, fat, strict=True):
        assert entry["headers"]["num_cmds"] == binary.header.nb_cmds
        assert entry["headers"]["size_cmds"] == binary.header.sizeof_cmds
        assert len(entry["commands"]) == len(binary.commands)
        assert [s["name"] for s in entry["segments"]] == [s.name for s in binary.segments]
        for seg, lief_seg in zip(entry["segments"], binary.segments, strict=True):
            assert int(seg["vmaddr"], 16) == lief_seg.virtual_address
            assert int(seg["vmsize"], 16) == lief_seg.virtual_size
            assert int(seg["fileoff"], 16) == lief_seg.file_offset
            assert [s["name"] for s in seg["sections"]] == [s.name for s in lief_seg.sections]
        assert entry.get("libs", []) == [lib.name for lib in binary.libraries]
        assert binary.uuid is not None
        assert entry["uuid"].replace("-", "").lower() == bytes(binary.uuid.uuid).hex()
        assert ("signature" in entry) == binary.has_code_signature


def test_truncated_load_commands_keep_the_header() -> None:
    data = X86.read_bytes()
    result = macho.analyse(data[:600])  # header + part of the load commands
    (entry,) = result["macho_info"]
    assert entry["headers"]["cpu_type"] == "X86_64"
    assert 0 < len(entry["commands"]) < entry["headers"]["num_cmds"]
    assert any("load command" in a for a in result["anomalies"])


def test_fat_slice_beyond_end_and_java_class() -> None:
    data = FAT.read_bytes()
    result = macho.analyse(data[:16000])  # the second slice starts at 16384
    assert len(result["macho_info"]) == 1
    assert any("beyond the end" in a or "truncated" in a for a in result["anomalies"])
    java = b"\xca\xfe\xba\xbe" + struct.pack(">HH", 0, 52) + bytes(64)
    assert "macho_info" not in macho.analyse(java)


def test_not_macho() -> None:
    assert "anomalies" in macho.analyse(b"")
    assert "anomalies" in macho.analyse(b"\xcf\xfa\xed\xfe")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=FAT.stat().st_size))
def test_truncation_never_raises(cut: int) -> None:
    assert isinstance(macho.analyse(FAT.read_bytes()[:cut]), dict)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 7)), min_size=1, max_size=8))
def test_bit_flips_in_load_commands_never_raise(flips: list[tuple[int, int]]) -> None:
    data = bytearray(X86.read_bytes())
    for offset, bit in flips:
        data[offset] ^= 1 << bit
    assert isinstance(macho.analyse(bytes(data)), dict)


@pytest.mark.skipif(not corpus_machos(), reason="shared corpus not available")
def test_corpus_machos_analyse_quickly() -> None:
    for path in corpus_machos():
        started = time.monotonic()
        result = macho.analyse(path.read_bytes())
        assert time.monotonic() - started < 2.0, path.name
        assert result["macho_info"] and "anomalies" not in result, path.name
