"""ELF analyser and telfhash on real files, against readelf, LIEF and the telfhash package."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinfile.formats import elf
from kinfile.hashing.telfhash import telfhash

DATA = Path(__file__).resolve().parent.parent / "data" / "elf"
ELF_FILES = sorted(DATA.glob("*_"))
CORPUS = Path("/work/shared/corpus")
AMD64 = DATA / "libmemusage-amd64.so_"

# Reference values: telfhash 0.9.8 (Trend Micro's package) on these files.
TELFHASH = {
    "libmemusage-amd64.so_": "t1d0c02b0207200e0052",
    "libmemusage-armhf.so_": "t1e9c02b0207200f0052",
    "calls_static_stripped.elf_": "t18fe0922204592183b35f2419db24b633144200f508b43ad9bbbbaefcfd02f803dd6023",
}


def corpus_elfs() -> list[Path]:
    manifest = CORPUS / "manifest.jsonl"
    if not manifest.exists():
        return []
    rows = (json.loads(line) for line in manifest.read_text().splitlines() if line.strip())
    return [CORPUS / "files" / r["sha256"] for r in rows if r["kind"] == "elf"]


def readelf(path: Path) -> str:
    return subprocess.run(["readelf", "-hlSW", str(path)], capture_output=True, text=True, check=True).stdout


def readelf_header(out: str) -> dict[str, object]:
    def field(name: str) -> str:
        match = re.search(rf"^\s+{re.escape(name)}:\s+(.*)$", out, re.M)
        assert match, name
        return match.group(1).strip()

    versions = re.findall(r"^\s+Version:\s+(.*)$", out, re.M)
    return {
        "class": field("Class"),
        "data": field("Data"),
        "hdr_version": versions[0].strip(),
        "os_abi": field("OS/ABI"),
        "abi_version": int(field("ABI Version")),
        "type": field("Type"),
        "machine": field("Machine"),
        "obj_version": versions[1].strip(),
        "entrypoint": int(field("Entry point address"), 16),
        "flags": field("Flags"),
        "num_prog_headers": int(field("Number of program headers")),
        "num_section_headers": int(field("Number of section headers")),
    }


def check_against_readelf(path: Path) -> None:
    out = readelf(path)
    info = elf.analyse(path.read_bytes())["elf_info"]
    assert info["header"] == readelf_header(out)
    rows = re.findall(
        r"^\s+\[\s*\d+\]\s(.*?)\s+(\S+)\s+([0-9a-f]{8,16})\s([0-9a-f]{6,})\s([0-9a-f]{6,})\s[0-9a-f]{2}\s(.{3})\s",
        out,
        re.M,
    )
    expected = [(n, t, int(a, 16), int(o, 16), int(s, 16), f.strip()) for n, t, a, o, s, f in rows]
    got = [
        (s["name"], s["section_type"], s["virtual_address"], s["physical_offset"], s["size"], s["flags"])
        for s in info["section_list"]
    ]
    assert got == expected
    if "Section to Segment mapping" in out:
        lines = out.split("Section to Segment mapping:")[1].splitlines()[2:]
        types = re.findall(r"^  ([A-Z_][A-Za-z_0-9+]*)\s+0x", out, re.M)
        for i, segment in enumerate(info["segment_list"]):
            assert segment["resources"] == lines[i].split()[1:]
            assert segment["segment_type"].startswith(types[i])  # readelf cuts names at 14 chars


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils readelf not installed")
@pytest.mark.parametrize("path", ELF_FILES, ids=lambda p: p.name)
def test_tables_match_readelf(path: Path) -> None:
    check_against_readelf(path)


def test_amd64_shared_library_values() -> None:
    result = elf.analyse(AMD64.read_bytes())
    header = result["elf_info"]["header"]
    assert header["class"] == "ELF64"
    assert header["data"] == "2's complement, little endian"
    assert header["machine"] == "Advanced Micro Devices X86-64"
    assert header["type"] == "DYN (Shared object file)"
    assert header["os_abi"] == "UNIX - System V"
    assert result["elf_info"]["shared_libraries"] == ["libc.so.6", "ld-linux-x86-64.so.2"]
    assert result["tags"] == ["64bits", "elf", "shared-lib"]
    assert result["exiftool"] == {
        "FileType": "ELF shared library",
        "FileTypeExtension": "so",
        "MIMEType": "application/octet-stream",
        "CPUArchitecture": "64 bit",
        "CPUByteOrder": "Little endian",
        "ObjectFileType": "Shared object file",
        "CPUType": "AMD x86-64",
    }
    assert result["telfhash"].startswith(TELFHASH[AMD64.name])
    assert "anomalies" not in result


def test_header_flags_per_architecture() -> None:
    flags = {p.name: elf.analyse(p.read_bytes())["elf_info"]["header"]["flags"] for p in ELF_FILES}
    assert flags["libmemusage-armhf.so_"] == "0x5000400, Version5 EABI, hard-float ABI"
    assert flags["libmemusage-riscv64.so_"] == "0x5, RVC, double-float ABI"
    assert flags["libmemusage-mips64el.so_"] == "0x80000007, noreorder, pic, cpic, mips64r2"
    assert flags["libmemusage-ppc64el.so_"] == "0x2, abiv2"
    big = elf.analyse((DATA / "libmemusage-s390x.so_").read_bytes())
    assert big["elf_info"]["header"]["data"] == "2's complement, big endian"
    assert big["exiftool"]["CPUByteOrder"] == "Big endian"


def test_executables() -> None:
    exe = elf.analyse((DATA / "hello_exec.elf_").read_bytes())
    assert exe["elf_info"]["header"]["type"] == "EXEC (Executable file)"
    assert exe["exiftool"]["FileType"] == "ELF executable"
    assert "shared-lib" not in exe["tags"]
    imports = {i["name"]: i["type"] for i in exe["elf_info"]["import_list"]}
    assert imports["printf"] == "FUNC" and imports["getenv"] == "FUNC"
    pie = elf.analyse((DATA / "hello_pie.elf_").read_bytes())
    assert pie["elf_info"]["header"]["type"] == "DYN (Position-Independent Executable file)"
    assert "shared-lib" not in pie["tags"]
    assert {"name": "main", "type": "FUNC"} in pie["elf_info"]["export_list"]


@pytest.mark.parametrize("path", ELF_FILES, ids=lambda p: p.name)
def test_symbols_and_libraries_match_lief(path: Path) -> None:
    import lief

    binary = lief.ELF.parse(str(path))
    assert binary is not None
    info = elf.analyse(path.read_bytes())["elf_info"]
    assert info.get("shared_libraries", []) == list(binary.libraries)
    lief_imports = list(dict.fromkeys(s.name for s in binary.imported_symbols if s.name))[:256]
    assert [i["name"] for i in info.get("import_list", [])] == lief_imports
    lief_exports = list(dict.fromkeys(s.name for s in binary.exported_symbols if s.name))[:256]
    assert [e["name"] for e in info.get("export_list", [])] == lief_exports


def test_telfhash_pinned_values() -> None:
    for name, prefix in TELFHASH.items():
        if name.startswith("calls_"):
            pytest.importorskip("capstone")
        value = telfhash((DATA / name).read_bytes())
        assert value is not None and value.startswith(prefix), name
    assert telfhash((DATA / "hello_exec.elf_").read_bytes()) is None  # too few symbols: TNULL


def reference_telfhash(path: Path) -> str | None:
    ref = pytest.importorskip("telfhash")
    value = ref.telfhash(str(path))[0]["telfhash"]
    return None if value in ("-", "tnull") else value


@pytest.mark.parametrize("path", ELF_FILES, ids=lambda p: p.name)
def test_telfhash_equals_reference_package(path: Path) -> None:
    assert telfhash(path.read_bytes()) == reference_telfhash(path)


def test_upx_marker_is_reported() -> None:
    data = (
        DATA / "hello_exec.elf_"
    ).read_bytes() + b"$Info: This file is packed with the UPX executable packer $"
    result = elf.analyse(data)
    assert result["elf_info"]["packers"] == ["upx"]
    assert "upx" in result["tags"]


def test_not_elf_and_empty() -> None:
    assert "anomalies" in elf.analyse(b"")
    assert "anomalies" in elf.analyse(b"MZ" + bytes(100))
    assert telfhash(b"\x7fELF") is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=AMD64.stat().st_size))
def test_truncation_never_raises(cut: int) -> None:
    data = AMD64.read_bytes()[:cut]
    result = elf.analyse(data)
    assert isinstance(result, dict)
    telfhash(data)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 7)), min_size=1, max_size=8))
def test_bit_flips_in_headers_never_raise(flips: list[tuple[int, int]]) -> None:
    data = bytearray(AMD64.read_bytes())
    for offset, bit in flips:
        data[offset] ^= 1 << bit
    result = elf.analyse(bytes(data))
    assert isinstance(result, dict)
    telfhash(bytes(data))


@pytest.mark.skipif(not corpus_elfs(), reason="shared corpus not available")
def test_corpus_elfs_analyse_quickly_and_agree_with_readelf() -> None:
    have_readelf = shutil.which("readelf") is not None
    for path in corpus_elfs():
        data = path.read_bytes()
        started = time.monotonic()
        result = elf.analyse(data)
        assert time.monotonic() - started < 2.0, path.name
        assert "elf_info" in result, path.name
        if have_readelf:
            check_against_readelf(path)


@pytest.mark.skipif(not corpus_elfs(), reason="shared corpus not available")
def test_corpus_telfhash_agrees_with_reference() -> None:
    pytest.importorskip("telfhash")
    paths = corpus_elfs()
    agree = sum(telfhash(p.read_bytes()) == reference_telfhash(p) for p in paths)
    assert agree == len(paths)
