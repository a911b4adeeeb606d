"""RTF analyser: VT rtf_info shape, OLE objects checked against oletools' rtfobj, hostile input."""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinfile.formats import rtf
from kinfile.formats.common import AnalysisTimeout, Deadline

DATA = Path(__file__).parent.parent / "data" / "rtf"
CORPUS = Path("/work/shared/corpus")
VT_REPORT = Path("/work/shared/vt/vt_v3_file_report_rtf.json")


def lp_string(text: bytes) -> bytes:
    return struct.pack("<I", len(text) + 1) + text + b"\x00" if text else struct.pack("<I", 0)


def ole1(class_name: bytes, native: bytes, format_id: int = 2) -> bytes:
    head = struct.pack("<II", 0x0501, format_id) + lp_string(class_name) + lp_string(b"") + lp_string(b"")
    return head + (struct.pack("<I", len(native)) + native if format_id == 2 else b"")


def package(filename: bytes, content: bytes) -> bytes:
    temp = b"C:\\Temp\\" + filename
    return (
        struct.pack("<H", 2)
        + filename
        + b"\x00C:\\src\\"
        + filename
        + b"\x00"
        + struct.pack("<II", 0x00030000, len(temp) + 1)
        + temp
        + b"\x00"
        + struct.pack("<I", len(content))
        + content
        + b"\x00\x00"
    )


def hexlines(data: bytes, width: int = 64) -> bytes:
    text = data.hex().encode()
    return b"\r\n".join(text[i : i + width] for i in range(0, len(text), width))


VT_LIKE_HEADER = (
    rb"{\rtf1\adeflang1025\ansi\ansicpg936\uc2\adeff0\deff0\stshfdbch13\deflang1033\deflangfe2052"
    rb"{\fonttbl{\f0\froman\fcharset0 Times New Roman;}}"
    rb"{\info{\author Tatyana}{\operator apcach E}{\creatim\yr2020\mo3\dy16\hr22\min31}"
    rb"{\revtim\yr2020\mo3\dy16\hr22\min31}{\version2}{\edmins1}{\nofpages1}{\nofwords332}"
    rb"{\nofchars1896}{\nofcharsws2224}{\vern57433}}"
    rb"{\*\xmlnstbl {\xmlns1 http://schemas.microsoft.com/office/word/2003/wordml}}"
)


def vt_like_document() -> bytes:
    equation = ole1(b"Equation.3", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    return (
        VT_LIKE_HEADER
        + rb"\pard text {\object\objemb\objupdate\objw100\objh100{\*\objdata "
        + hexlines(equation)
        + rb"}}{\object\objocx\objw10\objh10{\*\objdata 01050000020000001b000000}}"
        + rb"{\*\datastore 0105000002000000180000004d73786d6c322e534158584d4c"
        + rb"5265616465722e352e3000000000000000}"
        + b"}"
    )


def test_vt_shape_and_values() -> None:
    report = rtf.analyse(vt_like_document())
    properties = report["rtf_info"]["document_properties"]
    assert properties["rtf_header"] == "rtf1"
    assert properties["default_ansi_codepage"] == "Simplified Chinese"
    assert properties["default_character_set"] == "ANSI"
    # the exact list and order of the real VT report
    assert properties["default_languages"] == [
        "English - United States",
        "Arabic - Saudi Arabia",
        "Chinese - People's Republic of China",
    ]
    assert properties["custom_xml_data_properties"] == 1
    assert (properties["dos_stubs"], properties["embedded_pictures"], properties["non_ascii_characters"]) == (
        0,
        0,
        0,
    )
    assert (properties["read_only_protection"], properties["user_protection"]) == (False, False)
    assert properties["longest_hex_string"] == 2 * 547  # the Equation.3 object, line breaks ignored
    assert [(o["class"], o["type"]) for o in properties["objects"]] == [
        ("Equation.3", "OLE embedded"),
        (None, "OLE control"),
    ]
    # summary_info is exactly the real report's for the same \info group
    assert report["rtf_info"]["summary_info"] == {
        "author": "Tatyana",
        "creation_time": "2020-03-16 22:31:00",
        "editing_time": 1,
        "number_of_characters": 1896,
        "number_of_non_whitespace_characters": 2224,
        "number_of_pages": 1,
        "number_of_words": 332,
        "operator": "apcach E",
        "revision_time": "2020-03-16 22:31:00",
        "version": 2,
        "version_number": 57433,
    }
    exif = report["exiftool"]
    assert exif == {
        "FileType": "RTF",
        "FileTypeExtension": "rtf",
        "MIMEType": "text/rtf",
        "Author": "Tatyana",
        "LastModifiedBy": "apcach E",
        "CreateDate": "2020:03:16 22:31:00",
        "ModifyDate": "2020:03:16 22:31:00",
        "RevisionNumber": "2",
        "TotalEditTime": "1 minute",
        "Pages": 1,
        "Words": 332,
        "Characters": 1896,
        "CharactersWithSpaces": 2224,
        "InternalVersionNumber": "57433",
    }
    assert report["tags"] == ["rtf", "ole-embedded", "ole-control"]
    assert [c["name"] for c in report["children"]] == ["Equation.3_0.bin", "objdata_1.bin"]
    assert report["children"][0]["data"].startswith(b"\xd0\xcf\x11\xe0")


@pytest.mark.skipif(not VT_REPORT.exists(), reason="VT sample report not available")
def test_key_sets_and_types_match_real_vt_report() -> None:
    real = json.loads(VT_REPORT.read_text())["data"]["attributes"]
    ours = rtf.analyse(vt_like_document())
    real_props, our_props = real["rtf_info"]["document_properties"], ours["rtf_info"]["document_properties"]
    assert set(our_props) == set(real_props)
    for key, value in real_props.items():
        assert type(our_props[key]) is type(value), key
    for entry in our_props["objects"]:
        assert {"class", "type"} <= set(entry)
    real_summary, our_summary = real["rtf_info"]["summary_info"], ours["rtf_info"]["summary_info"]
    assert our_summary == {k: v for k, v in real_summary.items()}
    for key in (
        "Author",
        "LastModifiedBy",
        "CreateDate",
        "RevisionNumber",
        "TotalEditTime",
        "Pages",
        "Words",
    ):
        assert ours["exiftool"][key] == real["exiftool"][key]
    assert {"rtf", "ole-embedded", "ole-control"} <= set(real["tags"])


def test_package_object_child_and_dos_stub() -> None:
    exe = (
        b"MZ\x90\x00"
        + bytes(60)
        + b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21This program cannot be run in DOS mode.\r\r\n$"
    )
    obj = ole1(b"Package", package(b"drop.exe", exe))
    doc = rb"{\rtf1\ansi{\object\objemb{\*\objclass Package}{\*\objdata " + hexlines(obj) + rb"}{\result x}}}"
    report = rtf.analyse(doc)
    properties = report["rtf_info"]["document_properties"]
    assert properties["objects"] == [
        {
            "class": "Package",
            "type": "OLE embedded",
            "ole1_class": "Package",
            "native_data_size": len(package(b"drop.exe", exe)),
        }
    ]
    assert properties["dos_stubs"] == 1
    assert report["children"] == [{"relationship": "embedded_files", "name": "drop.exe", "data": exe}]
    assert report["tags"] == ["rtf", "ole-embedded", "dos-stub"]
    assert report["rtf_info"]["summary_info"] == {}


def test_linked_object_stray_objdata_and_protection() -> None:
    link = ole1(b"Word.Document.8", b"", format_id=1)
    doc = (
        rb"{\rtf1\mac\readprot{\*\protusertbl{x}}{\object\objautlink{\*\objdata "
        + link.hex().encode()
        + rb"}}{\*\objdata "
        + ole1(b"Excel.Sheet.8", b"abc").hex().encode()
        + b"}}"
    )
    report = rtf.analyse(doc)
    properties = report["rtf_info"]["document_properties"]
    assert [(o["class"], o["type"]) for o in properties["objects"]] == [
        ("Word.Document.8", "OLE autolink"),
        ("Excel.Sheet.8", "OLE embedded"),
    ]
    assert properties["default_character_set"] == "Apple Macintosh"
    assert properties["default_ansi_codepage"] is None
    assert (properties["read_only_protection"], properties["user_protection"]) == (True, True)
    assert [c["data"] for c in report["children"]] == [b"abc"]
    assert any("outside an \\object group" in a for a in report["anomalies"])


def test_info_text_decoding() -> None:
    doc = (
        rb"{\rtf1\ansi\ansicpg1251{\info{\title \'cf\'f0\'e8\'e2\'e5\'f2 {\*\bookmark x}world\u8364?}"
        rb"{\author A\{b\}\\c}{\doccomm  note }}}"
    )
    summary = rtf.analyse(doc)["rtf_info"]["summary_info"]
    assert summary == {"title": "Привет world€", "author": "A{b}\\c", "comments": "note"}


# --------------------------------------------------------------------------- rtfobj as an oracle


def rtfobj_objects(data: bytes) -> list[tuple[str, str | None]]:
    rtfobj = pytest.importorskip("oletools.rtfobj")
    logging.getLogger("rtfobj").setLevel(logging.CRITICAL)
    parser = rtfobj.RtfObjParser(data)
    parser.parse()
    return [
        (
            hashlib.md5(o.rawdata).hexdigest(),
            o.class_name.decode("latin-1") if o.is_ole and o.class_name else None,
        )
        for o in parser.objects
    ]


def our_objects(data: bytes) -> list[tuple[str, str | None]]:
    scan = rtf.parse(data, Deadline(60))
    result = []
    for obj in scan.objects:
        if obj.raw is None:
            continue
        ole = obj.ole1
        complete = ole is not None and ole.native is not None and len(ole.native) == ole.native_size
        result.append((hashlib.md5(obj.raw).hexdigest(), ole.class_name if complete and ole else None))
    return result


@pytest.mark.parametrize("path", sorted(DATA.glob("*.rtf_")), ids=lambda p: p.name)
def test_real_files_agree_with_rtfobj(path: Path) -> None:
    data = path.read_bytes()
    assert our_objects(data) == rtfobj_objects(data)


def test_real_file_values() -> None:
    report = rtf.analyse((DATA / "clam.exe.rtf_").read_bytes())
    summary = report["rtf_info"]["summary_info"]
    assert (summary["author"], summary["creation_time"], summary["version_number"]) == (
        "edwin",
        "2006-11-19 19:25:00",
        24689,
    )
    assert [(c["name"], len(c["data"]), c["data"][:2]) for c in report["children"]] == [
        ("Clam.exe", 544, b"MZ")
    ]
    report = rtf.analyse((DATA / "issue_251.rtf_").read_bytes())
    properties = report["rtf_info"]["document_properties"]
    assert properties["rtf_header"] == "rtf2"
    assert (
        properties["objects"][0]["class"] == "Equation.3"
        and properties["objects"][0]["ole1_class"] == "equation.3"
    )
    assert properties["default_languages"] == ["Punjabi - India"]
    report = rtf.analyse((DATA / "incident-report_v1.rtf_").read_bytes())
    assert report["tags"] == ["rtf"] and report["children"] == []
    assert report["rtf_info"]["summary_info"] == {"title": "Incident Review: Mail Gateway Outage"}


OBFUSCATIONS = st.sampled_from(
    [
        b" ",
        b"\r\n",
        b"\t",
        rb"\par ",
        rb"\rsid12345",
        rb"\objw9",
        b"{}",
        rb"{\*\junk}",
        rb"{\title 4142}",
        rb"\'41",
    ]
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 400), OBFUSCATIONS), max_size=12), st.booleans(), st.booleans())
def test_obfuscated_objdata_agrees_with_rtfobj(
    inserts: list[tuple[int, bytes]], odd: bool, use_bin: bool
) -> None:
    original = ole1(b"Package", package(b"a.txt", b"hello world" * 5)).hex().encode()
    hexdata, previous = b"", 0  # insert at positions of the original text, never inside other junk
    for pos, junk in sorted(inserts, key=lambda insert: insert[0]):
        pos = min(pos, len(original))
        hexdata, previous = hexdata + original[previous:pos] + junk, pos
    hexdata += original[previous:]
    tail = b"7" if odd else b""
    binpart = rb"\bin4 " + b"\x01\x02}{" if use_bin else b""
    doc = rb"{\rtf1{\object\objemb{\*\objdata " + bytes(hexdata) + binpart + tail + b"}}}"
    assert our_objects(doc) == rtfobj_objects(doc)


# --------------------------------------------------------------------------- hostile input

SAMPLE = vt_like_document()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, len(SAMPLE)),
    st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.integers(1, 255)), max_size=8),
)
def test_truncations_and_bit_flips_never_raise(cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(SAMPLE[:cut])
    for pos, mask in flips:
        if pos < len(data):
            data[pos] ^= mask
    report = rtf.analyse(bytes(data))
    assert isinstance(report["anomalies"], list) and "rtf" in report["tags"]
    json.dumps({k: v for k, v in report.items() if k != "children"})


def test_hostile_structures_are_bounded() -> None:
    cases = [
        b"",
        b"not rtf",
        b"{" * 200_000,
        b"}" * 1000 + rb"{\rtf1",
        rb"{\rtf1{\object\objdata \bin99999999999999999999 abc}",
        rb"{\rtf1{\object\objdata 0105" + rb"\'41" * 50_000 + b"}}",
        rb"{\rtf1" + rb"{\object{\*\objdata 01050000}}" * 200 + b"}",
        rb"{\rtf1{\info{\title " + b"{" * 50_000 + b"}}",
        rb"{\rtf1\ansicpg99999{\info{\author \'ff\u-5?}}}",
    ]
    for data in cases:
        started = time.monotonic()
        report = rtf.analyse(data)
        assert time.monotonic() - started < 2
        assert len(report["rtf_info"]["document_properties"]["objects"]) <= 256
        assert len(report["children"]) <= 32
    with pytest.raises(AnalysisTimeout):
        rtf.analyse(rb"{\rtf1{\object{\*\objdata " + b"41 " * 100_000 + b"}}}", Deadline(-1))


# --------------------------------------------------------------------------- whole corpus


@pytest.mark.skipif(not (CORPUS / "manifest.jsonl").exists(), reason="shared corpus not available")
def test_whole_corpus_against_rtfobj() -> None:
    rows = [json.loads(line) for line in (CORPUS / "manifest.jsonl").read_text().splitlines() if line.strip()]
    files = [CORPUS / "files" / r["sha256"] for r in rows if r["kind"] == "rtf"]
    assert len(files) >= 40
    for path in files:
        data = path.read_bytes()
        started = time.monotonic()
        report = rtf.analyse(data)
        assert time.monotonic() - started < 2, path.name
        assert report["rtf_info"]["document_properties"]["rtf_header"].startswith("rt")
        assert our_objects(data) == rtfobj_objects(data), path.name


def test_ignorable_destination_inside_objdata_is_skipped_unlike_rtfobj() -> None:
    """Word ignores ``{\\*\\unknown ...}`` groups; rtfobj feeds their text into the object data."""
    hexdata = ole1(b"Package", package(b"a.txt", b"hello")).hex().encode()
    doc = rb"{\rtf1{\object\objemb{\*\objdata " + hexdata[:21] + rb"{\*\junk 41}" + hexdata[21:] + b"}}}"
    assert our_objects(doc)[0][1] == "Package"
    assert rtfobj_objects(doc)[0][1] is None


def test_objdata_tokenizer_is_bounded() -> None:
    """3 MB of empty groups: linear work (~3 s of CPU here); a quadratic tokenizer would take
    hours. CPU time, not wall time, so a loaded machine does not fail it."""
    started = time.process_time()
    report = rtf.analyse(rb"{\rtf1{\object{\*\objdata " + b"{}" * 1_500_000 + b"}}")
    assert time.process_time() - started < 10
    assert report["rtf_info"]["document_properties"]["objects"][0]["type"] == "unknown"
