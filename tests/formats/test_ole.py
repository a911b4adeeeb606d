"""OLE2 analyser on real files, with olefile / olevba / msodde as oracles."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import olefile
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinfile.formats import ole

DATA = Path(__file__).resolve().parents[1] / "data" / "ole"
CORPUS = Path("/work/shared/corpus")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def load(name: str) -> bytes:
    return (DATA / f"{name}_").read_bytes()


def run(name: str) -> dict[str, Any]:
    result = ole.analyse(load(name))
    assert isinstance(result["office_info"], dict)
    return result


def olevba_keywords(data: bytes, name: str) -> tuple[bool, set[str], set[str]]:
    from oletools.olevba import VBA_Parser

    logging.getLogger("olevba").setLevel(logging.CRITICAL)
    parser = VBA_Parser(name, data=data)
    found = parser.detect_macros()
    results = parser.analyze_macros() or [] if found else []
    auto = {kw for kind, kw, _ in results if kind == "AutoExec"}
    suspicious = {kw for kind, kw, _ in results if kind == "Suspicious"}
    return bool(found), auto, suspicious


def _decoded(value: Any) -> Any:
    return value.decode("cp1252") if isinstance(value, bytes) else value


@pytest.mark.parametrize("name", ["test-ole-file.doc", "tool-1.0.0.msi", "excel4_sample_macro.xls"])
def test_summary_info_matches_olefile_metadata(name: str) -> None:
    summary = run(name)["office_info"]["summary_info"]
    meta = olefile.OleFileIO(io.BytesIO(load(name))).get_metadata()
    pairs = {
        "title": meta.title, "subject": meta.subject, "author": meta.author, "keywords": meta.keywords,
        "comments": meta.comments, "template": meta.template, "last_author": meta.last_saved_by,
        "revision_number": meta.revision_number, "application_name": meta.creating_application,
        "page_count": meta.num_pages, "word_count": meta.num_words, "character_count": meta.num_chars,
        "security": meta.security,
    }  # fmt: skip
    for key, expected in pairs.items():
        expected = _decoded(expected)
        if expected in (None, ""):
            assert key not in summary
        else:
            assert summary[key] == expected, key
    for key, stamp in (("creation_datetime", meta.create_time), ("last_saved", meta.last_saved_time)):
        assert summary[key] == stamp.strftime("%Y-%m-%d %H:%M:%S")


def test_word_document_report() -> None:
    result = run("test-ole-file.doc")
    info, exif = result["office_info"], result["exiftool"]
    assert info["file_type"] == "doc"
    assert result["tags"] == ["doc"]
    root = info["entries"][0]
    assert root["type_literal"] == "root"
    assert root["clsid"] == "00020906-0000-0000-C000-000000000046"
    assert "Word.Document.8" in root["clsid_literal"]
    streams = {e["name"]: e for e in info["entries"] if e["type_literal"] == "stream"}
    assert streams["WordDocument"]["size"] == 4096 and streams["1Table"]["size"] == 6438
    assert info["summary_info"]["author"] == "Laurence Ipsum"
    assert info["summary_info"]["code_page"] == "Windows Latin 1 (Western European)"
    assert info["document_summary_info"]["characters_with_spaces"] == 46
    assert info["document_summary_info"]["version"] == 917504
    assert exif["FileType"] == "DOC" and exif["MIMEType"] == "application/msword"
    assert exif["Author"] == "Laurence Ipsum" and exif["LastModifiedBy"] == "Laurence Ipsum"
    assert exif["CreateDate"] == "2014:04:11 11:15:00" and exif["AppVersion"] == "14.0000"
    assert exif["Words"] == 7 and exif["Characters"] == 40 and exif["Template"] == "Normal.dotm"
    assert "macros" not in info and result["children"] == [] and result["anomalies"] == []


def test_libreoffice_doc_zero_timestamps_are_absent() -> None:
    info = run("incident-report_v1.doc")["office_info"]
    assert info["summary_info"]["title"] == "Incident Review: Mail Gateway Outage"
    assert "creation_datetime" not in info["summary_info"]


def test_vba_in_powerpoint_agrees_with_olevba() -> None:
    result = run("sample_with_vba.ppt")
    info = result["office_info"]
    _, auto, suspicious = olevba_keywords(load("sample_with_vba.ppt"), "x.ppt")
    assert {a["keyword"] for a in info["auto_exec"]} == auto == {"Action_Click"}
    assert {s["keyword"] for s in info.get("suspicious", [])} == suspicious
    (macro,) = info["macros"]
    assert macro["name"] == "Module1" and macro["type"] == "standard" and macro["code_size"] == 1145
    assert {"ppt", "macros", "auto-open"} <= set(result["tags"])
    source = next(c for c in result["children"] if c["name"] == "vba/Module1.bas")
    assert source["relationship"] == "embedded_files"
    assert b"Attribute VB_Name" in source["data"] and len(source["data"]) == macro["length"]


def test_encrypted_xls_with_default_password() -> None:
    data = load("autostart-encrypt-standardpassword.xls")
    result = ole.analyse(data)
    info = result["office_info"]
    assert info["encryption"] == {
        "encrypted": True,
        "method": "excel-rc4",
        "default_password": "VelvetSweatshop",
    }
    from oletools import crypto

    assert crypto.is_encrypted(olefile.OleFileIO(io.BytesIO(data)))
    types = {m["name"]: m["type"] for m in info["macros"]}
    assert types == {"Modul1": "standard", "DieseArbeitsmappe": "document", "Tabelle1": "document"}
    _, auto, suspicious = olevba_keywords(data, "x.xls")
    assert {a["keyword"] for a in info["auto_exec"]} == auto == {"Auto_Open"}
    assert {s["keyword"] for s in info["suspicious"]} == suspicious
    assert {"xls", "encrypted", "macros", "auto-open"} <= set(result["tags"])
    decrypted = next(c for c in result["children"] if c["name"] == "decrypted.xls")
    assert decrypted["data"][:8] == OLE_MAGIC
    assert ole.analyse(decrypted["data"])["office_info"].get("encryption") is None


@pytest.mark.parametrize("name", ["excel4_sample_macro.xls", "excel4_sample_macro_excel5_format.xls"])
def test_xlm_macro_sheet_agrees_with_olevba(name: str) -> None:
    result = run(name)
    info = result["office_info"]
    assert info["xlm_macros"]["sheets"] == [{"name": "Macro1", "type": "macro sheet", "state": "visible"}]
    found, auto, suspicious = olevba_keywords(load(name), name)
    assert found
    assert {a["keyword"] for a in info["auto_exec"]} == auto == {"Auto_Open"}
    assert {s["keyword"] for s in info["suspicious"]} == suspicious == {"XLM macro"}
    assert {"xls", "macros", "xlm-macros", "auto-open"} <= set(result["tags"])


def test_dde_fields_agree_with_msodde() -> None:
    from oletools import msodde

    result = run("dde-test-from-office2016.doc")
    path = DATA / "dde-test-from-office2016.doc_"
    expected = [line.strip() for line in msodde.process_file(str(path)).splitlines()]
    assert result["office_info"]["dde"][:2] == expected[:2]
    assert result["office_info"]["dde"][0] == 'DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"'
    assert len(result["office_info"]["dde"]) == len(expected) == 3
    assert "dde" in result["tags"]


def test_ole10native_payload_is_a_child() -> None:
    result = run("embedded-simple-2007.doc")
    assert "ole-embedded" in result["tags"]
    (child,) = result["children"]
    assert child["name"] == "ole10native/simple-text-file.txt"
    assert child["relationship"] == "embedded_files"
    assert child["data"] == b"This is the contents of a simple ascii text file."
    paths = [o["path"] for o in result["office_info"]["embedded_objects"]]
    assert "ObjectPool/_1577691201" in paths


def test_msi_cabinet_child_and_names() -> None:
    result = run("tool-1.0.0.msi")
    info = result["office_info"]
    assert info["file_type"] == "msi" and result["tags"] == ["msi"]
    assert result["exiftool"]["FileType"] == "MSI"
    (cab,) = result["children"]
    assert cab["name"] == "msi/data.cab" and cab["data"][:4] == b"MSCF"
    decoded = {e.get("decoded_name") for e in info["entries"]}
    assert {"!File", "!Component", "!_Tables"} <= decoded


@pytest.mark.parametrize("blob", [b"", OLE_MAGIC, OLE_MAGIC + b"\x00" * 600, b"PK\x03\x04junk"])
def test_garbage_never_raises(blob: bytes) -> None:
    result = ole.analyse(blob)
    assert result["anomalies"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutations_never_raise(data: st.DataObject) -> None:
    original = load(
        data.draw(st.sampled_from(["test-ole-file.doc", "sample_with_vba.ppt", "excel4_sample_macro.xls"]))
    )
    blob = bytearray(original)
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    for _ in range(data.draw(st.integers(0, 16))):
        if blob:
            index = data.draw(st.integers(0, len(blob) - 1))
            blob[index] = data.draw(st.integers(0, 255))
    result = ole.analyse(bytes(blob))
    json.dumps({k: v for k, v in result.items() if k != "children"}, default=str)


def _corpus(kind: str) -> list[dict[str, Any]]:
    manifest = CORPUS / "manifest.jsonl"
    if not manifest.exists():
        pytest.skip("shared corpus not available")
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["kind"] == kind]


def test_corpus_ole2_files() -> None:
    """Every corpus OLE2 file: no exception, < 2 s, and macro detection agrees with olevba."""
    for row in _corpus("ole2"):
        data = (CORPUS / "files" / row["sha256"]).read_bytes()
        start = time.perf_counter()
        result = ole.analyse(data)
        elapsed = time.perf_counter() - start
        assert elapsed < 2.0, (row["name"], elapsed)
        assert "office_info" in result, row["name"]
        if "oletools" in row["source"]:
            info = result["office_info"]
            found, auto, _ = olevba_keywords(data, row["name"])
            assert bool(info.get("macros") or info.get("xlm_macros")) == found, row["name"]
            assert {a["keyword"] for a in info.get("auto_exec", [])} == auto, row["name"]
