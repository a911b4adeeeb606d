"""OOXML analyser on real files and on packages built here, with olevba / msodde as oracles."""

from __future__ import annotations

import io
import json
import logging
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinfile.formats import ole, ooxml

DATA = Path(__file__).resolve().parents[1] / "data" / "ooxml"
CORPUS = Path("/work/shared/corpus")

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
    'wordprocessingml.document.main+xml"/>'
    '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.'
    'core-properties+xml"/></Types>'
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="word/document.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/'
    'core-properties" Target="docProps/core.xml"/></Relationships>'
)
SETTINGS_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'attachedTemplate" Target="http://203.0.113.7/templates/invoice.dotm" TargetMode="External"/>'
    "</Relationships>"
)
DOCUMENT = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body><w:p><w:r><w:t>Quarterly invoice</w:t></w:r></w:p></w:body></w:document>"
)
CORE = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<dc:title>Invoice</dc:title><dc:creator>Alice</dc:creator><cp:lastModifiedBy>Bob</cp:lastModifiedBy>"
    '<dcterms:created xsi:type="dcterms:W3CDTF">2024-03-01T10:20:30Z</dcterms:created>'
    "</cp:coreProperties>"
)


def build_docx(extra: Mapping[str, str | bytes] | None = None, core: str = CORE) -> bytes:
    parts: dict[str, str | bytes] = {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": ROOT_RELS,
        "word/document.xml": DOCUMENT,
        "word/_rels/settings.xml.rels": SETTINGS_RELS,
        "word/settings.xml": '<w:settings xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"/>',
        "docProps/core.xml": core,
        **(extra or {}),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def load(name: str) -> bytes:
    return (DATA / f"{name}_").read_bytes()


def run(name: str) -> dict[str, Any]:
    result = ooxml.analyse(load(name))
    assert isinstance(result["openxml_info"], dict)
    return result


def test_external_attached_template_is_reported() -> None:
    result = ooxml.analyse(build_docx())
    info = result["openxml_info"]
    assert info["file_type"] == "docx"
    (link,) = info["external_links"]
    assert link == {"source": "word/settings.xml", "id": "rId1", "type": "attachedTemplate",
                    "target": "http://203.0.113.7/templates/invoice.dotm", "external": True}  # fmt: skip
    assert {"docx", "external-link", "remote-template"} <= set(result["tags"])
    assert info["docprops"]["core"] == {"title": "Invoice", "creator": "Alice", "lastModifiedBy": "Bob",
                                        "created": "2024-03-01T10:20:30Z"}  # fmt: skip
    exif = result["exiftool"]
    assert exif["FileType"] == "DOCX" and exif["Creator"] == "Alice" and exif["LastModifiedBy"] == "Bob"
    assert exif["CreateDate"] == "2024:03:01 10:20:30Z"
    assert result["anomalies"] == []


def test_doctype_and_entities_are_refused() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><x>&lol2;</x>'
    )
    result = ooxml.analyse(build_docx(core=bomb))
    assert "docprops" not in result["openxml_info"]
    assert any("DTD" in a for a in result["anomalies"])


def test_high_ratio_member_is_not_inflated() -> None:
    result = ooxml.analyse(build_docx({"word/embeddings/oleObject1.bin": b"\x00" * (4 * 1024 * 1024)}))
    assert any("compression ratio" in a for a in result["anomalies"])
    assert result["children"] == []


def test_member_count_cap() -> None:
    extra = {f"junk/{i}.xml": "" for i in range(ooxml.MAX_ITEMS * 40)}
    from kinfile.formats import ooxml_parts

    old = ooxml_parts.MAX_MEMBERS
    ooxml_parts.MAX_MEMBERS = 5_000
    try:
        result = ooxml.analyse(build_docx(extra))
    finally:
        ooxml_parts.MAX_MEMBERS = old
    assert any("zip members" in a for a in result["anomalies"])


def test_vba_project_agrees_with_olevba() -> None:
    from oletools.olevba import VBA_Parser

    logging.getLogger("olevba").setLevel(logging.CRITICAL)
    result = run("oleform-PR314.docm")
    info = result["openxml_info"]
    parser = VBA_Parser("x.docm", data=load("oleform-PR314.docm"))
    assert parser.detect_vba_macros()
    oracle = parser.analyze_macros()
    assert {a["keyword"] for a in info["auto_exec"]} == {k for t, k, _ in oracle if t == "AutoExec"}
    assert {s["keyword"] for s in info["suspicious"]} == {k for t, k, _ in oracle if t == "Suspicious"}
    modules = {m["name"]: m["type"] for m in info["macros"]}
    expected_names = {name.rsplit(".", 1)[0] for _, _, name, _ in parser.extract_macros()}
    assert set(modules) == expected_names
    assert modules == {"ThisDocument": "document", "UserFormTEST1": "form", "UserFormTest2": "form",
                       "NewMacros": "standard"}  # fmt: skip
    assert all(m["subfilename"] == "word/vbaProject.bin" for m in info["macros"])
    assert info["file_type"] == "docm" and result["exiftool"]["FileType"] == "DOCM"
    assert {"docx", "macros", "auto-open"} <= set(result["tags"])
    (child,) = result["children"]
    assert child["name"] == "word/vbaProject.bin" and child["data"][:4] == b"\xd0\xcf\x11\xe0"
    assert result["exiftool"]["Creator"] == "Vincent Brillault"
    assert result["exiftool"]["TotalEditTime"] == "137 min"


def test_external_ole_link() -> None:
    result = run("sample_with_external_link_to_doc.docx")
    (link,) = result["openxml_info"]["external_links"]
    assert link["type"] == "oleObject" and link["target"].endswith("/msodde/harmless-clean.doc")
    assert "external-link" in result["tags"] and "remote-template" not in result["tags"]


def test_dde_fields_agree_with_msodde() -> None:
    from oletools import msodde

    result = run("dde-test.docx")
    expected = [line.strip() for line in msodde.process_file(str(DATA / "dde-test.docx_")).splitlines()]
    expected = [e for e in expected if e.split(" ", 1)[0].upper() in ("DDE", "DDEAUTO")]
    assert result["openxml_info"]["dde"] == expected
    assert "dde" in result["tags"]
    xlsx = run("dde-test.xlsx")
    assert xlsx["openxml_info"]["dde"] == ["cmd /c calc.exe"]
    assert xlsx["openxml_info"]["file_type"] == "xlsx"


def test_xlm_macrosheet_in_xlsm() -> None:
    result = run("excel4_sample_macro.xlsm")
    info = result["openxml_info"]
    assert info["file_type"] == "xlsm"
    assert info["xlm_macros"]["sheets"][0]["type"] == "macro sheet"
    assert {"xlsx", "macros", "xlm-macros"} <= set(result["tags"])


def test_embedded_ole_object_end_to_end() -> None:
    result = run("embedded-simple-2007.docx")
    assert "ole-embedded" in result["tags"]
    (child,) = result["children"]
    assert child["name"] == "word/embeddings/oleObject1.bin"
    inner = ole.analyse(child["data"])
    assert [c["name"] for c in inner["children"]] == ["ole10native/simple-text-file.txt"]


def test_libreoffice_docx_properties() -> None:
    result = run("meeting-minutes_v1.docx")
    info = result["openxml_info"]
    assert info["docprops"]["core"]["title"] == "Steering Committee Minutes"
    assert info["docprops"]["app"]["Application"].startswith("LibreOffice/7.4.7.2")
    assert result["tags"] == ["docx"] and "macros" not in info and "external_links" not in info
    assert result["exiftool"]["Title"] == "Steering Committee Minutes"


@pytest.mark.parametrize("blob", [b"", b"PK\x05\x06" + b"\x00" * 18, b"PK\x03\x04junk", b"\xd0\xcf\x11\xe0"])
def test_garbage_never_raises(blob: bytes) -> None:
    assert ooxml.analyse(blob)["anomalies"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutations_never_raise(data: st.DataObject) -> None:
    blob = bytearray(load(data.draw(st.sampled_from(["oleform-PR314.docm", "dde-test.docx"]))))
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    for _ in range(data.draw(st.integers(0, 16))):
        if blob:
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    result = ooxml.analyse(bytes(blob))
    json.dumps({k: v for k, v in result.items() if k != "children"}, default=str)


def test_corpus_ooxml_files() -> None:
    """Every corpus OOXML file: no exception, < 2 s, VBA detection agrees with olevba."""
    manifest = CORPUS / "manifest.jsonl"
    if not manifest.exists():
        pytest.skip("shared corpus not available")
    from oletools.olevba import VBA_Parser

    logging.getLogger("olevba").setLevel(logging.CRITICAL)
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    for row in (r for r in rows if r["kind"] == "ooxml"):
        data = (CORPUS / "files" / row["sha256"]).read_bytes()
        start = time.perf_counter()
        result = ooxml.analyse(data)
        assert time.perf_counter() - start < 2.0, row["name"]
        assert "openxml_info" in result, row["name"]
        if "oletools" in row["source"]:
            found = VBA_Parser(row["name"], data=data).detect_vba_macros()
            assert bool(result["openxml_info"].get("macros")) == found, row["name"]
