"""File-type identification on real files (tests/data/detect, see its README.md)."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinfile.formats import detect
from kinfile.formats.types import FORMATS, TYPES

DATA = Path(__file__).resolve().parents[1] / "data" / "detect"
CORPUS = Path("/work/shared/corpus")

# file -> (type_tag, type_description, format, magika label, extra VT tags expected in ``tags``)
EXPECTED: dict[str, tuple[str, str, str | None, str, tuple[str, ...]]] = {
    "cli-32.exe_": ("peexe", "Win32 EXE", "pe", "PEBIN", ("peexe",)),
    "mshta-upx64.exe_": ("peexe", "Win64 EXE", "pe", "PEBIN", ("peexe", "64bits")),
    "msimsg32.dll_": ("pedll", "Win32 DLL", "pe", "PEBIN", ("pedll",)),
    "msimsg64.dll_": ("pedll", "Win64 DLL", "pe", "PEBIN", ("pedll", "64bits")),
    "ClrLoader-x86.dll_": ("pedll", "Win32 DLL", "pe", "PEBIN", ("pedll",)),
    "libanl-riscv64.so.1_": ("elf", "ELF", "elf", "ELF", ("elf", "64bits")),
    "libanl-armhf.so.1_": ("elf", "ELF", "elf", "ELF", ("elf",)),
    "_operand_flag_tests-arm64.so_": ("macho", "Mach-O", "macho", "MACHO", ("macho", "64bits")),
    "_speedups-universal2.so_": ("macho", "Mach-O", "macho", "MACHO", ("macho",)),
    "livecycle.pdf_": ("pdf", "PDF", "pdf", "PDF", ("pdf",)),
    "visitor_text_position.pdf_": ("pdf", "PDF", "pdf", "PDF", ("pdf",)),
    "lab-protocol_v1.doc_": ("doc", "MS Word Document", "ole", "DOC", ("doc",)),
    "unicode1.xls_": ("xls", "MS Excel Spreadsheet", "ole", "XLS", ("xls",)),
    "encrypted.ppt_": ("ppt", "MS PowerPoint Presentation", "ole", "PPT", ("ppt",)),
    "docs-only-1.0.0.msi_": ("msi", "Windows Installer", "ole", "DOC", ("msi",)),
    "encrypted.docx_": ("msoffice", "MS Office Document", "ole", "DOC", ("encrypted",)),
    "rtf_ddeauto_field.rtf_": ("rtf", "Rich Text Format", "rtf", "RTF", ("rtf",)),
    "issue_251.rtf_": ("rtf", "Rich Text Format", "rtf", "RTF", ("rtf",)),
    "meeting-minutes_v1.docx_": ("docx", "Office Open XML Document", "ooxml", "DOCX", ("docx",)),
    "text_bar.xlsx_": ("xlsx", "Office Open XML Spreadsheet", "ooxml", "XLSX", ("xlsx",)),
    "embedded-simple-2007.pptx_": ("pptx", "Office Open XML Presentation", "ooxml", "PPTX", ("pptx",)),
    "clam.zip_": ("zip", "ZIP", "archive", "ZIP", ("zip",)),
    "clam.7z_": ("7zip", "7ZIP", "archive", "SEVENZIP", ("7zip",)),
    "clam.tar.gz_": ("gzip", "GZIP", "archive", "GZIP", ("gzip",)),
    "clam.cab_": ("cab", "CAB", "archive", "CAB", ("cab",)),
    "embedded-simple-2007.odt_": ("odt", "OpenDocument Text", "archive", "ODT", ("odt",)),
    "debugTest.vbs_": ("vbs", "VBScript", None, "VBA", ()),
    "compile_linux.sh_": ("shell", "Shell script", None, "SHELL", ()),
    "testxslt.js_": ("javascript", "JavaScript", None, "JAVASCRIPT", ()),
    "win-download-qpdf.ps1_": ("powershell", "Powershell", None, "POWERSHELL", ()),
    "test.pys_": ("python", "Python", None, "PYTHON", ()),
    "compile_windows.bat_": ("batch", "Batch", None, "BATCH", ()),
    "calc.htm_": ("html", "HTML", None, "HTML", ()),
    "text_": ("text", "Text", None, "TXT", ()),
}

# file -> start of libmagic's description (file 5.44 in Debian 12)
EXPECTED_MAGIC = {
    "cli-32.exe_": "PE32 executable (console) Intel 80386, for MS Windows",
    "msimsg64.dll_": "PE32+ executable (DLL) (console) x86-64",
    "libanl-armhf.so.1_": "ELF 32-bit LSB shared object, ARM",
    "livecycle.pdf_": "PDF document, version 1.7",
    "meeting-minutes_v1.docx_": "Microsoft Word 2007+",
    "clam.7z_": "7-zip archive data",
    "unicode1.xls_": "CDFV2 Microsoft Excel",
}


def _read(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.fixture
def no_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend libmagic and Magika cannot be loaded (fresh per-process engine cache)."""

    def missing() -> Any:
        raise ImportError("not installed")

    monkeypatch.setattr(detect, "_engines", {"pid": None})
    monkeypatch.setattr(detect, "_new_libmagic", missing)
    monkeypatch.setattr(detect, "_new_magika", missing)


def test_test_data_is_complete() -> None:
    on_disk = {p.name for p in DATA.iterdir() if p.name != "README.md"}
    assert on_disk == set(EXPECTED) | {"empty_"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_files(name: str) -> None:
    type_tag, description, format_, magika, tags = EXPECTED[name]
    result = detect.identify(_read(name), name.rstrip("_"))
    assert result["type_tag"] == type_tag
    assert result["type_description"] == description
    assert result["format"] == format_
    assert result["magika"] == magika
    assert set(tags) <= set(result["tags"])
    assert result["type_tags"] == list(TYPES[type_tag].type_tags)  # Win64 rows share Win32's type_tags
    if name in EXPECTED_MAGIC:
        assert result["magic"].startswith(EXPECTED_MAGIC[name])


def test_vt_pe_type_tags() -> None:
    dll = detect.identify(_read("msimsg32.dll_"))
    assert dll["type_tags"] == ["executable", "windows", "win32", "pe", "pedll"]
    assert dll["type_extension"] == "dll"
    exe64 = detect.identify(_read("mshta-upx64.exe_"))
    assert exe64["type_tags"] == ["executable", "windows", "win32", "pe", "peexe"]
    assert exe64["type_extension"] == "exe"
    assert "64bits" not in detect.identify(_read("cli-32.exe_"))["tags"]


def test_empty_input() -> None:
    result = detect.identify(b"")
    assert result["type_tag"] == "empty"
    assert result["format"] is None
    assert "magika" not in result
    assert detect.identify(_read("empty_")) == result


def test_text_named_by_extension_without_magika() -> None:
    plain = b"Set x = 1\r\nMsgBox x\r\n"
    assert detect.identify(plain, "a.vbs", magika="off")["type_tag"] == "vbs"
    assert detect.identify(plain, None, magika="off")["type_tag"] == "text"
    assert detect.identify(b"#!/usr/bin/env python3\nprint(1)\n", magika="off")["type_tag"] == "python"
    assert detect.identify(b"\xef\xbb\xbf<?xml version='1.0'?><a/>", magika="off")["type_tag"] == "xml"


def test_pdf_header_within_first_kib() -> None:
    assert detect.identify(b"\n" * 1000 + b"%PDF-1.4\n%%EOF\n")["format"] == "pdf"
    assert detect.identify(b" " * 1030 + b"%PDF-1.4\n%%EOF\n")["format"] is None


def test_fallback_without_libmagic_and_magika(no_engines: None) -> None:
    exe = detect.identify(_read("msimsg64.dll_"))
    assert exe["magic"] == "PE32+ executable (DLL) (console) x86-64, for MS Windows"
    assert "magika" not in exe
    assert (exe["type_tag"], exe["format"]) == ("pedll", "pe")
    elf = detect.identify(_read("libanl-riscv64.so.1_"))
    assert elf["magic"] == "ELF 64-bit LSB shared object, UCB RISC-V"
    assert detect.identify(_read("livecycle.pdf_"))["magic"] == "PDF document, version 1.7"
    assert detect.identify(_read("text_"))["magic"] == "ASCII text"
    script = detect.identify(_read("win-download-qpdf.ps1_"), "win-download-qpdf.ps1")
    assert script["type_tag"] == "powershell"
    assert isinstance(detect.identify(b"\x00\x01\x02garbage\xff" * 10)["magic"], str)


def _identify_in_child(data: bytes) -> str | None:
    return detect.identify(data).get("magika")


def test_works_after_fork() -> None:
    data = _read("livecycle.pdf_")
    assert detect.identify(data)["magika"] == "PDF"  # engines loaded in the parent first
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        assert pool.apply(_identify_in_child, (data,)) == "PDF"


def test_speed_without_magika() -> None:
    samples = [_read(name) for name in sorted(EXPECTED)]
    detect.identify(samples[0], magika="off")
    started = time.perf_counter()
    for _ in range(5):
        for data in samples:
            detect.identify(data, magika="off")
    per_file = (time.perf_counter() - started) / (5 * len(samples))
    assert per_file < 0.005  # ~0.15 ms measured; generous bound for a shared CI machine


def test_every_format_is_known() -> None:
    assert {row.format for row in TYPES.values()} - {None} == set(FORMATS)


HEADERS = [_read(name)[:4096] for name in sorted(EXPECTED)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(data: bytes) -> None:
    result = detect.identify(data, magika="off")
    assert isinstance(result["type_tag"], str) and isinstance(result["magic"], str)
    assert result["format"] in (*FORMATS, None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(HEADERS), st.integers(0, 4096), st.binary(max_size=64), st.integers(0, 4096))
def test_fuzz_truncated_and_mutated_headers(header: bytes, cut: int, patch: bytes, at: int) -> None:
    data = header[:cut]
    data = data[:at] + patch + data[at + len(patch) :]
    result = detect.identify(data, "x.bin", magika="off")
    assert result["format"] in (*FORMATS, None)


# --- whole corpus -------------------------------------------------------------------------

KIND_FORMATS = {
    "pe": "pe",
    "pe_dotnet": "pe",
    "pdf": "pdf",
    "ole2": "ole",
    "rtf": "rtf",
    "ooxml": "ooxml",
    "elf": "elf",
    "macho": "macho",
    "script": None,
    "archive": "archive",
    "other": None,
}
# Deliberate: zip-based "other" files go to the archive analyser (their members are listed).
OTHER_ZIP_CONTAINERS = {"odt", "ods", "odp", "xps"}


@pytest.mark.skipif(not (CORPUS / "manifest.jsonl").exists(), reason="shared corpus not available")
def test_corpus_kinds_map_to_formats() -> None:
    records = [json.loads(line) for line in (CORPUS / "manifest.jsonl").read_text().splitlines() if line]
    mismatches = []
    for record in records:
        data = (CORPUS / "files" / record["sha256"]).read_bytes()
        result = detect.identify(data, record["name"], magika="off")
        expected = KIND_FORMATS[record["kind"]]
        if record["kind"] == "other" and result["type_tag"] in OTHER_ZIP_CONTAINERS:
            expected = "archive"
        if result["format"] != expected:
            mismatches.append((record["name"], record["kind"], result["type_tag"], result["format"]))
    assert len(records) == 1083
    assert mismatches == []


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        ("testxslt.js_", "javascript"),
        ("win-download-qpdf.ps1_", "powershell"),
        ("compile_linux.sh_", "shell"),
        ("compile_windows.bat_", "batch"),
        ("test.pys_", "python"),
        ("calc.htm_", "html"),
    ],
)
def test_scripts_carry_their_language_as_a_tag(name: str, tag: str) -> None:
    result = detect.identify((DATA / name).read_bytes())
    assert result["type_tag"] == tag
    assert tag in result["tags"]


def test_magika_auto_runs_the_model_only_where_structure_cannot_decide() -> None:
    pe = (DATA / "cli-32.exe_").read_bytes()
    script = (DATA / "testxslt.js_").read_bytes()
    assert "magika" not in detect.identify(pe, magika="auto")
    assert detect.identify(pe, magika="all")["magika"] == "PEBIN"
    assert detect.identify(script, magika="auto")["magika"] == "JAVASCRIPT"
    assert "magika" not in detect.identify(script, magika="off")
    assert detect.identify(pe, magika="auto")["type_tag"] == detect.identify(pe)["type_tag"]
