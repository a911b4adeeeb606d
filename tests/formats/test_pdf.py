"""PDF analyser: hand-built PDFs with known content, real files checked against pdfid/pypdf, hostile input."""

from __future__ import annotations

import io
import json
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinfile.formats import pdf
from kinfile.formats.common import AnalysisTimeout, Deadline

DATA = Path(__file__).parent.parent / "data" / "pdf"
CORPUS = Path("/work/shared/corpus")


def build_pdf(
    objects: list[bytes], trailer: bytes = b"", version: bytes = b"1.7", xref_shift: int = 0
) -> bytes:
    """A valid PDF from object bodies (object i+1 = objects[i]) with a correct xref table."""
    out = bytearray(b"%PDF-" + version + b"\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R " % (len(objects) + 1) + trailer + b">>\n"
    out += b"startxref\n%d\n%%%%EOF\n" % (xref_at + xref_shift)
    return bytes(out)


def stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGES_1 = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"


def js_openaction_pdf() -> bytes:
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
            PAGES_1,
            PAGE,
            b"<< /Type /Action /S /JavaScript /JS (app.alert\\(1\\);) >>",
        ]
    )


def test_javascript_openaction_counts_and_tags() -> None:
    report = pdf.analyse(js_openaction_pdf())
    info = report["pdf_info"]
    assert info["header"] == "%PDF-1.7"
    assert (info["num_obj"], info["num_endobj"], info["num_stream"], info["num_endstream"]) == (4, 4, 0, 0)
    assert (info["xref"], info["trailer"], info["startxref"]) == (1, 1, 1)
    assert (info["js"], info["javascript"], info["openaction"], info["autoaction"]) == (1, 1, 1, 0)
    assert info["num_pages"] == 1
    assert info["encrypted"] == 0 and info["num_launch_actions"] == 0 and info["embedded_file"] == 0
    assert report["tags"] == ["pdf", "js-embedded", "autoaction"]
    assert report["children"] == [] and report["anomalies"] == []
    exif = report["exiftool"]
    assert exif["FileType"] == "PDF" and exif["MIMEType"] == "application/pdf"
    assert (exif["PDFVersion"], exif["Linearized"], exif["PageCount"]) == ("1.7", "No", 1)


def test_launch_action_and_page_aa() -> None:
    data = build_pdf(
        [
            CATALOG,
            PAGES_1,
            b"<< /Type /Page /Parent 2 0 R /AA << /O 4 0 R >> >>",
            b"<< /S /Launch /Win << /F (cmd.exe) /P (/c echo hi) >> >>",
        ]
    )
    report = pdf.analyse(data)
    assert report["pdf_info"]["num_launch_actions"] == 1
    assert report["pdf_info"]["autoaction"] == 1
    assert report["tags"] == ["pdf", "autoaction", "launch-action"]


def test_embedded_file_is_extracted_as_child() -> None:
    payload = b"MZ\x90\x00" + b"embedded payload " * 40
    data = build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(a.exe) 4 0 R] >> >> >>",
            PAGES_1,
            PAGE,
            b"<< /Type /Filespec /F (a.exe) /UF (\xfe\xff"
            + "drop.exe".encode("utf-16-be")
            + b") /EF << /F 5 0 R >> >>",
            stream(b"/Type /EmbeddedFile /Filter /FlateDecode", zlib.compress(payload)),
        ]
    )
    report = pdf.analyse(data)
    info = report["pdf_info"]
    assert (info["embedded_file"], info["num_stream"], info["num_endstream"]) == (1, 1, 1)
    assert report["children"] == [{"relationship": "embedded_files", "name": "drop.exe", "data": payload}]
    assert "file-embedded" in report["tags"]


def test_keywords_hidden_in_object_stream_are_counted() -> None:
    inner = [
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 5 0 R /AcroForm << /Fields [] >> >>",
        PAGES_1,
        PAGE,
        b"<< /S /Launch /F (x.exe) >>",
        b"<< /S /JavaScript /JS (app.alert\\(1\\)) /Next 4 0 R >>",
    ]
    header = b""
    body = b""
    for num, obj in enumerate(inner, start=1):
        header += b"%d %d " % (num, len(body))
        body += obj + b"\n"
    objstm = stream(
        b"/Type /ObjStm /N 5 /First %d /Filter /FlateDecode" % len(header), zlib.compress(header + body)
    )
    # the object stream itself is object 6; the trailer's /Root 1 0 R points inside it
    data = build_pdf([objstm]).replace(b"1 0 obj", b"6 0 obj")
    report = pdf.analyse(data)
    info = report["pdf_info"]
    assert info["num_object_streams"] == 1
    assert (info["js"], info["javascript"], info["openaction"], info["acroform"]) == (1, 1, 1, 1)
    assert info["num_launch_actions"] == 1
    assert info["num_pages"] == 1
    assert info["object_stream_keywords"] == {
        "/AcroForm": 1,
        "/JS": 1,
        "/JavaScript": 1,
        "/Launch": 1,
        "/OpenAction": 1,
        "/Page": 1,
    }
    assert {"js-embedded", "autoaction", "acroform", "launch-action"} <= set(report["tags"])


def test_hex_escaped_names_count_like_pdfid() -> None:
    data = build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /Open#41ction 4 0 R >>",
            PAGES_1,
            PAGE,
            b"<< /S /J#61vaScript /J#53 (x) >>",
        ]
    )
    info = pdf.analyse(data)["pdf_info"]
    assert (info["openaction"], info["javascript"], info["js"]) == (1, 1, 1)
    assert info["hex_escaped_names"] == {"/JS": 1, "/JavaScript": 1, "/OpenAction": 1}
    # /Pages is not /Page, /JSX is not /JS, /JS#20 decodes to "JS " (pdfid semantics)
    info = pdf.analyse(build_pdf([CATALOG, PAGES_1, PAGE, b"<< /JSX 1 /JS#20 2 /AAx 3 >>"]))["pdf_info"]
    assert (info["js"], info["autoaction"]) == (0, 0)


def test_info_metadata_and_dates() -> None:
    info_dict = (
        b"<< /Author (\xfe\xff\x00J\x00o\x00s\x00\xe9) /Creator (Writer) /Producer (LibreOffice 7.3)"
        b" /Title (Quarterly \\(draft\\)) /CreationDate (D:20200316223100+01'00')"
        b" /ModDate (D:20210102030405Z) >>"
    )
    report = pdf.analyse(build_pdf([CATALOG, PAGES_1, PAGE, info_dict], trailer=b"/Info 4 0 R "))
    exif = report["exiftool"]
    assert exif["Author"] == "José"
    assert exif["Title"] == "Quarterly (draft)"
    assert (exif["Creator"], exif["Producer"]) == ("Writer", "LibreOffice 7.3")
    assert exif["CreateDate"] == "2020:03:16 22:31:00+01:00"
    assert exif["ModifyDate"] == "2021:01:02 03:04:05Z"


def test_xmp_fills_missing_info() -> None:
    xmp = (
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Tk 1.0">'
        b'<rdf:RDF><rdf:Description xmp:CreatorTool="Word" pdf:Producer="Acme PDF">'
        b"<dc:creator><rdf:Seq><rdf:li>Ann &amp; Bob</rdf:li></rdf:Seq></dc:creator>"
        b"<xmp:CreateDate>2019-05-06T07:08:09-04:00</xmp:CreateDate>"
        b"</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    report = pdf.analyse(build_pdf([CATALOG, PAGES_1, PAGE, stream(b"/Type /Metadata /Subtype /XML", xmp)]))
    exif = report["exiftool"]
    assert exif["Author"] == "Ann & Bob"
    assert exif["CreatorTool"] == "Word" and exif["Producer"] == "Acme PDF" and exif["XMPToolkit"] == "Tk 1.0"
    assert exif["CreateDate"] == "2019:05:06 07:08:09-04:00"


def test_invalid_xref_encrypted_flash_colors() -> None:
    report = pdf.analyse(build_pdf([CATALOG, PAGES_1, PAGE], xref_shift=7))
    assert "invalid-xref" in report["tags"]
    assert "invalid-xref" not in pdf.analyse(build_pdf([CATALOG, PAGES_1, PAGE]))["tags"]
    encrypt = b"<< /Filter /Standard /V 2 /R 3 /Length 128 /O <00> /U <00> /P -4 >>"
    report = pdf.analyse(build_pdf([CATALOG, PAGES_1, PAGE, encrypt], trailer=b"/Encrypt 4 0 R "))
    assert report["pdf_info"]["encrypted"] == 1 and "encrypted" in report["tags"]
    assert report["exiftool"]["Encryption"] == "Standard V2.3 (128-bit)"
    rich = b"<< /Type /Annot /Subtype /RichMedia /RichMediaContent << >> >>"
    report = pdf.analyse(build_pdf([CATALOG, PAGES_1, PAGE, rich]))
    assert report["pdf_info"]["flash"] == 1 and "flash-embedded" in report["tags"]
    image = b"<< /DecodeParms << /Predictor 2 /Colors 16777217 >> /Colors 3 >>"
    assert pdf.analyse(build_pdf([CATALOG, PAGES_1, PAGE, image]))["pdf_info"]["suspicious_colors"] == 1


# --------------------------------------------------------------------------- real files


def _pdfid_counts(path: Path) -> dict[str, int]:
    pdfid = pytest.importorskip("pdfid.pdfid")
    xml = pdfid.PDFiD(str(path), force=True)
    counts = {
        k.getAttribute("Name"): int(k.getAttribute("Count")) for k in xml.getElementsByTagName("Keyword")
    }
    counts["header"] = xml.documentElement.getAttribute("Header")
    return counts


PDFID_TO_VT = {
    "obj": "num_obj",
    "endobj": "num_endobj",
    "stream": "num_stream",
    "endstream": "num_endstream",
    "xref": "xref",
    "trailer": "trailer",
    "startxref": "startxref",
    "/Encrypt": "encrypted",
    "/ObjStm": "num_object_streams",
    "/JS": "js",
    "/JavaScript": "javascript",
    "/AA": "autoaction",
    "/OpenAction": "openaction",
    "/AcroForm": "acroform",
    "/JBIG2Decode": "jbig2_compression",
    "/RichMedia": "flash",
    "/Launch": "num_launch_actions",
    "/EmbeddedFile": "embedded_file",
    "/XFA": "xfa",
    "/Colors > 2^24": "suspicious_colors",
    "header": "header",
}


def assert_matches_pdfid(path: Path, report: dict) -> None:
    """Raw counts (total minus what came out of object streams) equal pdfid's."""
    expected = _pdfid_counts(path)
    info = report["pdf_info"]
    hidden = info.get("object_stream_keywords", {})
    for keyword, key in PDFID_TO_VT.items():
        ours = info[key] - hidden.get(keyword, 0) if key != "header" else info[key]
        if keyword == "/Encrypt":
            assert ours == int(expected[keyword] > 0), path.name
        else:
            assert ours == expected[keyword], (path.name, keyword)


def _pypdf_pages(data: bytes) -> int:
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        reader.decrypt("")
    return len(reader.pages)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.pdf_")), ids=lambda p: p.name)
def test_real_files_against_pdfid_and_pypdf(path: Path) -> None:
    data = path.read_bytes()
    report = pdf.analyse(data)
    assert_matches_pdfid(path, report)
    assert report["pdf_info"]["num_pages"] == _pypdf_pages(data)


def test_real_file_values() -> None:
    report = pdf.analyse((DATA / "combined_js_embed_launch_acroform_objstm.pdf_").read_bytes())
    info = report["pdf_info"]
    # pdfid sees only /EmbeddedFile and /ObjStm; the rest is inside the object stream
    assert (info["embedded_file"], info["num_object_streams"], info["js"], info["num_launch_actions"]) == (
        1,
        1,
        3,
        1,
    )
    assert [(c["name"], c["data"][:20]) for c in report["children"]] == [
        ("notes.txt", b"Combined test attach")
    ]
    assert report["tags"] == [
        "pdf",
        "js-embedded",
        "autoaction",
        "acroform",
        "launch-action",
        "file-embedded",
    ]

    exif = pdf.analyse((DATA / "metadata.pdf_").read_bytes())["exiftool"]
    assert exif["Author"] == "Martin Thoma" and exif["Title"] == "The Title"
    assert exif["Keywords"] == "Some Keywords, other keywords; more keywords"
    assert exif["CreateDate"] == "2022:04:15 09:32:43+02:00"

    report = pdf.analyse((DATA / "js_openaction_rc4_40.pdf_").read_bytes())
    assert report["tags"] == ["pdf", "js-embedded", "autoaction", "encrypted"]
    assert report["exiftool"]["Encryption"] == "Standard V1.2 (40-bit)"
    assert "invalid-xref" in pdf.analyse((DATA / "issue-297.pdf_").read_bytes())["tags"]
    assert pdf.analyse((DATA / "fourpages.pdf_").read_bytes())["exiftool"]["PageCount"] == 4


# --------------------------------------------------------------------------- hostile input

SAMPLE = (DATA / "combined_js_embed_launch_acroform_objstm.pdf_").read_bytes()


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
    report = pdf.analyse(bytes(data))
    assert isinstance(report["anomalies"], list) and isinstance(report["children"], list)
    json.dumps({k: v for k, v in report.items() if k != "children"})


def test_huge_length_deflate_bomb_and_deep_nesting() -> None:
    bomb = zlib.compress(b"\x00" * (200 * 1024 * 1024), 9)  # ~200 KB -> 200 MB
    objects = [
        CATALOG,
        PAGES_1,
        PAGE,
        b"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length 999999999999 >>\nstream\n"
        + bomb
        + b"\nendstream",
        stream(b"/Type /EmbeddedFile /Filter /FlateDecode", bomb),
        b"<< /EF << /F 5 0 R >> /F (bomb.bin) >>",
        b"[" * 5000 + b"]" * 5000,
        b"<< /Kids [7 0 R] /Count (x) >>",
    ]
    started = time.monotonic()
    report = pdf.analyse(build_pdf(objects, trailer=b"/Info 7 0 R "))
    assert time.monotonic() - started < 5
    assert report["children"] == []
    assert any("over limit" in a for a in report["anomalies"])


def test_garbage_and_deadline() -> None:
    for data in (
        b"",
        b"%PDF-",
        b"not a pdf at all",
        b"%PDF-1.4\n1 0 obj << /Length 5 >> stream\nab",
        b"\xff" * 1000,
    ):
        report = pdf.analyse(data)
        assert report["tags"] == ["pdf"] or "pdf" in report["tags"]
    expired = Deadline(0)
    time.sleep(0.001)
    many = build_pdf([CATALOG, PAGES_1] + [PAGE] * 600)
    with pytest.raises(AnalysisTimeout):
        pdf.analyse(many, expired)


# --------------------------------------------------------------------------- whole corpus


def _corpus_pdfs() -> list[tuple[str, Path]]:
    manifest = CORPUS / "manifest.jsonl"
    if not manifest.exists():
        return []
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    return [(r["name"], CORPUS / "files" / r["sha256"]) for r in rows if r["kind"] == "pdf"]


@pytest.mark.skipif(not (CORPUS / "manifest.jsonl").exists(), reason="shared corpus not available")
def test_whole_corpus_against_pdfid_and_pypdf() -> None:
    files = _corpus_pdfs()
    assert len(files) >= 100
    page_agree = 0
    for _name, path in files:
        data = path.read_bytes()
        started = time.monotonic()
        report = pdf.analyse(data)
        assert time.monotonic() - started < 2, path.name
        assert_matches_pdfid(path, report)
        try:
            pages = _pypdf_pages(data)
        except Exception:  # noqa: BLE001 - pypdf cannot open some (encrypted/malformed) files
            continue
        assert report["pdf_info"]["num_pages"] == pages, _name
        page_agree += 1
    assert page_agree >= 110


def test_linearized_flag() -> None:
    plain = build_pdf([CATALOG, PAGES_1, PAGE])
    linear = build_pdf([b"<< /Linearized 1 /L 1000 /O 3 /E 500 /N 1 /T 900 /H [100 50] >>", PAGES_1, PAGE])
    assert pdf.analyse(plain)["exiftool"]["Linearized"] == "No"
    assert pdf.analyse(linear)["exiftool"]["Linearized"] == "Yes"


def test_no_quadratic_scans() -> None:
    """Objects without endobj/stream, huge strings: linear time (these took minutes before)."""
    cases = [
        b"%PDF-1.4\n" + b"1 0 obj\n" * 100_000,
        b"%PDF-1.4\n" + b"1 0 obj << /A 1 >>\n" * 100_000 + b"stream\n",
        b"%PDF-1.4\n" + b"1 0 obj << /A 1 >> endstream\n" * 100_000 + b"stream\n",
        b"%PDF-1.4\n1 0 obj\n<< /Title (" + b"(a\\)" * 200_000 + b") >>\nendobj\ntrailer << /Info 1 0 R >>",
    ]
    for data in cases:
        started = time.monotonic()
        report = pdf.analyse(data)
        assert time.monotonic() - started < 3
        assert report["pdf_info"]["num_obj"] >= 1
