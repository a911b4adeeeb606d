"""vhash on real files: stable across builds of one program, different across programs and types."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kinfile.analysis.pipeline import Limits, analyse_bytes
from kinfile.hashing.vhash import PREFIXES, canonical, compute_vhash, is_vhash, vhash_features

DATA = Path(__file__).resolve().parents[1] / "data"
VHASH = DATA / "vhash"


@cache
def attrs(path: str) -> dict[str, Any]:
    p = DATA / path
    return analyse_bytes(p.read_bytes(), p.name.rstrip("_"), Limits(max_depth=0)).record.attributes


def vh(path: str) -> str:
    value = attrs(path)["vhash"]
    assert value == compute_vhash(attrs(path))
    return str(value)


def same(*paths: str) -> bool:
    return len({vh(p) for p in paths}) == 1


def features(path: str) -> dict[str, str]:
    found = vhash_features(attrs(path))
    assert found is not None
    return dict(found[1])


def test_wine_builds_across_versions_and_architectures() -> None:
    assert same(
        "vhash/setx_wine8.0-amd64.exe_", "vhash/setx_wine8.0-i386.exe_", "vhash/setx_wine10.0-amd64.exe_"
    )
    assert same(
        "vhash/msimsg_wine8.0-amd64.dll_",
        "vhash/msimsg_wine8.0-i386.dll_",
        "vhash/msimsg_wine10.0-amd64.dll_",
    )
    assert same("detect/msimsg32.dll_", "vhash/msimsg_wine8.0-i386.dll_")
    f = features("vhash/setx_wine8.0-i386.exe_")
    assert f["k"] == "exe" and f["ss"] == "windows command line" and f["vi"] == "setx.exe"
    assert f["il"] == "kernel32,ntdll" and f["pk"] == ""  # ucrtbase (the C runtime) is left out


def test_packer_is_explicit() -> None:
    assert same("vhash/setx_upx-default.exe_", "vhash/setx_upx-lzma.exe_")
    assert vh("vhash/setx_upx-default.exe_") != vh("vhash/setx_wine8.0-amd64.exe_")
    f = features("vhash/setx_upx-lzma.exe_")
    assert f["pk"] == "upx" and f["pl"].startswith("upx0;upx1;.rsrc:")
    assert same("detect/mshta-upx64.exe_", "pe/mshta-upx.exe_")


def test_pywin32_versions() -> None:
    assert same("vhash/_win32sysloader_py305.pyd_", "vhash/_win32sysloader_py312.pyd_")
    # 311 shipped without a version resource: its identity differs (a documented miss)
    assert vh("vhash/_win32sysloader_py311.pyd_") != vh("vhash/_win32sysloader_py305.pyd_")


def test_stub_programs_are_told_apart() -> None:
    # Wine's arp and cacls stubs share every structural feature; stubs fall back to content
    assert vh("vhash/arp_wine8.0-amd64.exe_") != vh("vhash/cacls_wine8.0-amd64.exe_")
    assert "sm" in features("vhash/arp_wine8.0-amd64.exe_")
    assert "sm" not in features("vhash/setx_wine8.0-amd64.exe_")


def test_documents() -> None:
    assert same("vhash/incident-report_v1_v1.doc_", "vhash/incident-report_v2_v2.doc_")
    assert vh("vhash/incident-report_v3_v3.doc_") != vh(
        "vhash/incident-report_v1_v1.doc_"
    )  # larger stream bucket
    assert same(
        "vhash/incident-report_v1_v1.rtf_",
        "vhash/incident-report_v2_v2.rtf_",
        "foundation/lab-protocol_v5.rtf_",
    )
    assert same("vhash/fpdf2_cjk_fdffed8e.pdf_", "vhash/fpdf2_cjk_short_fc5f06de.pdf_")
    assert features("pdf/js_openaction_alert.pdf_")["act"].startswith("js:1;javascript:1;openaction:1")
    assert vh("pdf/js_openaction_alert.pdf_") != vh("vhash/fpdf2_cjk_fdffed8e.pdf_")
    assert features("rtf/rtf_objemb_package_txt.rtf_")["obj"] != ""


def test_elf_macho_dotnet() -> None:
    arches = ["amd64", "armhf", "mips64el", "ppc64el", "riscv64", "s390x"]
    assert same(*(f"elf/libmemusage-{a}.so_" for a in arches))
    assert vh("elf/libmemusage-amd64.so_") != vh("foundation/libthread_db.so.1_")
    assert same("macho/_psutil_osx-arm64.so_", "macho/_psutil_osx-x86_64.so_")
    assert vh("pe/ClrLoader-x86.dll_").startswith("net1_")


def test_prefixes_format_and_types_differ() -> None:
    paths = {
        "pe1": "vhash/setx_wine8.0-amd64.exe_",
        "ole1": "vhash/incident-report_v1_v1.doc_",
        "rtf1": "vhash/incident-report_v1_v1.rtf_",
        "pdf1": "vhash/fpdf2_cjk_fdffed8e.pdf_",
        "oox1": "ooxml/meeting-minutes_v1.docx_",
        "elf1": "elf/hello_pie.elf_",
        "macho1": "macho/_speedups-universal2.so_",
        "net1": "pe/ClrLoader-x86.dll_",
    }
    values = {prefix: vh(path) for prefix, path in paths.items()}
    assert set(values) == PREFIXES
    for prefix, value in values.items():
        assert value.startswith(prefix + "_") and is_vhash(value) and value == value.lower()
        assert len(value) == len(prefix) + 21
    assert len(set(values.values())) == len(values)
    assert "vhash" not in attrs("foundation/testxslt.js_")  # scripts are not covered


def test_canonical_string_is_readable() -> None:
    found = vhash_features(attrs("vhash/msimsg_wine8.0-i386.dll_"))
    assert found is not None
    text = canonical(*found)
    assert text.startswith("pe1|k=dll|ss=")
    assert "|ex=" in text and "|il=" in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
TOP_KEYS = ["pe_info", "dot_net_assembly", "pdf_info", "office_info", "rtf_info", "openxml_info", "elf_info"]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*TOP_KEYS, "macho_info", "packers", "exiftool", "signature_info"]), json_values
    )
)
def test_malformed_attributes_never_raise(attributes: dict[str, Any]) -> None:
    vhash_features(attributes)  # the extractors themselves tolerate any shape (no exception)
    value = compute_vhash(attributes)
    assert value is None or is_vhash(value)


def test_not_covered() -> None:
    assert compute_vhash({}) is None
    assert compute_vhash({"type_tag": "zip", "bundle_info": {"num_children": 3}}) is None
    assert compute_vhash("nonsense") is None  # type: ignore[arg-type]
