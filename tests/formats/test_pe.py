"""PE analyser on the small real files in tests/data/pe, checked against pefile/LIEF oracles."""

from __future__ import annotations

import json
from pathlib import Path

import pefile
import pytest

from kinfile.formats import pe
from kinfile.formats.common import AnalysisTimeout, Deadline
from kinfile.formats.pe_resources import ResourceLeaf, resource_children

from .pe_oracle import (
    check_authentihash,
    check_imphash,
    check_overlay,
    check_resources,
    check_rich,
    check_sections,
    check_version_info,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "pe"
FILES = sorted(p.name for p in DATA.glob("*_"))


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    return {name: pe.analyse(load(name)) for name in FILES}


@pytest.mark.parametrize("name", FILES)
def test_matches_pefile_oracles(name: str, reports: dict[str, dict]) -> None:
    data = load(name)
    report = reports[name]
    full = pefile.PE(data=data)
    check_sections(report, full)
    check_overlay(report, full, data)
    check_rich(report, full)
    check_imphash(report, full)
    check_resources(report, data)
    check_version_info(report, data)
    json.dumps({k: v for k, v in report.items() if k != "children"})
    assert not [a for a in report["anomalies"] if "failed" in a]


def test_32bit_exe(reports: dict[str, dict]) -> None:
    r = reports["cli-32.exe_"]
    info = r["pe_info"]
    assert info["machine_type"] == 332
    assert r["tags"][0] == "peexe" and "64bits" not in r["tags"]
    assert r["exiftool"]["FileType"] == "Win32 EXE"
    assert r["exiftool"]["MachineType"] == "Intel 386 or later, and compatibles"
    assert r["exiftool"]["PEType"] == "PE32"
    assert r["exiftool"]["EntryPoint"] == f"0x{info['entry_point']:04x}"
    assert [s["flags"] for s in info["sections"]][0] == "rx"
    assert any(
        v.startswith("[---] Unmarked objects") or v.startswith("id: 0x")
        for v in info["compiler_product_versions"]
    )
    assert all(s.endswith(f"count={s.rsplit('=', 1)[1]}") for s in info["compiler_product_versions"])


def test_64bit_dll(reports: dict[str, dict]) -> None:
    r = reports["_imagingmath.cp311-win_amd64.pyd_"]
    assert r["pe_info"]["machine_type"] == 0x8664
    assert r["tags"][:2] == ["pedll", "64bits"]
    assert r["exiftool"]["FileType"] == "Win64 DLL"
    assert r["exiftool"]["MachineType"] == "AMD AMD64"
    assert r["exiftool"]["PEType"] == "PE32+"
    assert r["pe_info"]["exports"] == ["PyInit__imagingmath"]
    libs = [i["library_name"] for i in r["pe_info"]["import_list"]]
    assert "python311.dll" in libs and "KERNEL32.dll" in libs


def test_signed_microsoft_dll(reports: dict[str, dict]) -> None:
    name = "msvcp140_codecvt_ids.dll_"
    r = reports[name]
    assert check_authentihash(r, load(name))
    assert r["authentihash"] == "40551f22c643888a5959936242079674b7c20c2ff019ea5587e7e84d93041dcf"
    si = r["signature_info"]
    assert si["verified"] == "Signed"
    assert si["signers"].startswith("Microsoft Windows Software Compatibility Publisher")
    assert si["counter signers"].startswith("Microsoft Time-Stamp Service")
    assert si["signing date"] == "10:29 PM 6/10/2025"
    first = si["signers details"][0]
    assert first["serial number"] == "33 00 00 01 0D C4 E7 BB F4 AF F8 F0 90 00 00 00 00 01 0D"
    assert first["algorithm"] == "sha256RSA" and "Code Signing" in first["valid usage"]
    assert first["cert issuer"] == "Microsoft Windows Third Party Component CA 2013"
    assert len(first["thumbprint"]) == 40
    assert si["original name"] == "msvcp140_codecvt_ids.dll"
    assert r["exiftool"]["OriginalFileName"] == "msvcp140_codecvt_ids.dll"
    assert r["exiftool"]["FileVersionNumber"] == "14.44.35211.0"
    assert r["exiftool"]["LanguageCode"] == "English (U.S.)" and r["exiftool"]["CharacterSet"] == "Unicode"
    assert "signed" in r["tags"] and "invalid-signature" not in r["tags"]
    assert r["pe_info"]["debug"][0]["codeview"]["signature"] == "RSDS"
    assert r["pe_info"]["resource_langs"] == {"ENGLISH US": 1}


def test_signed_dll_with_rfc3161_timestamp(reports: dict[str, dict]) -> None:
    name = "attach_x86.dll_"
    assert check_authentihash(reports[name], load(name))
    assert reports[name]["signature_info"]["verified"] == "Signed"


def test_signature_lief_cannot_parse(reports: dict[str, dict]) -> None:
    """fwupd's sbsign signature: our DER reader still finds the digest and the signer."""
    name = "fwupdx64.efi.signed_"
    r = reports[name]
    assert check_authentihash(r, load(name))
    assert r["signature_info"]["signers"] == "Debian Secure Boot Signer 2022 - fwupd"
    assert r["signature_info"]["verified"] != "Signed"
    assert {"signed", "invalid-signature", "efi", "64bits"} <= set(r["tags"])
    assert r["exiftool"]["Subsystem"] == "EFI application"


def test_dotnet_assembly(reports: dict[str, dict]) -> None:
    r = reports["ClrLoader-x86.dll_"]
    net = r["dot_net_assembly"]
    assert net["assembly_name"] == "ClrLoader"
    assert net["clr_version"] == "v4.0.30319"
    assert net["assembly_data"]["majorversion"] == 1
    assert net["external_assemblies"]["mscorlib"] == {"version": "4.0.0.0"}
    types = {ns["namespace"]: ns["type_definitions"] for ns in net["type_definition_list"]}
    assert "ClrLoader" in types["ClrLoader"]
    assert "assembly" in r["tags"]


def test_dotnet_against_dnfile() -> None:
    """Assembly name, references, type count and resources equal dnfile's (optional oracle)."""
    from .pe_oracle import check_dotnet

    pytest.importorskip("dnfile")
    data = load("ClrLoader-x86.dll_")
    check_dotnet(pe.analyse(data), data)


@pytest.mark.parametrize("name", ["clam-upx.exe_", "mshta-upx.exe_"])
def test_upx(name: str, reports: dict[str, dict]) -> None:
    r = reports[name]
    assert r["packers"] == {"kinfile": "UPX"}
    assert "upx" in r["tags"]
    assert [s["name"] for s in r["pe_info"]["sections"]][:2] == ["UPX0", "UPX1"]


def test_nsis_overlay_and_icons(reports: dict[str, dict]) -> None:
    r = reports["clam-nsis.exe_"]
    assert r["packers"] == {"kinfile": "NSIS"}
    overlay = r["pe_info"]["overlay"]
    assert overlay["offset"] == 46080 and overlay["size"] == 1357
    assert "overlay" in r["tags"]
    assert r["pe_info"]["resource_types"]["RT_ICON"] == 7
    assert r["main_icon"]["raw_md5"] == "6b224e01af48ec8e4c17a59d9534e885"
    assert len(r["main_icon"]["dhash"]) == 16
    assert r["children"] == []  # the NSIS header is not a file in its own right


def test_resources_and_version_info(reports: dict[str, dict]) -> None:
    r = reports["w32.exe_"]
    assert r["pe_info"]["resource_types"] == {
        "RT_ICON": 7,
        "RT_GROUP_ICON": 1,
        "RT_VERSION": 1,
        "RT_MANIFEST": 1,
    }
    details = r["pe_info"]["resource_details"]
    assert {d["filetype"] for d in details if d["type"] == "RT_GROUP_ICON"} == {"ICO"}
    assert {d["filetype"] for d in details if d["type"] == "RT_MANIFEST"} == {"XML"}
    assert r["signature_info"]["product"] == "Simple Launcher"
    assert r["exiftool"]["ProductName"] == "Simple Launcher"
    assert "main_icon" in r and len(r["main_icon"]["dhash"]) == 16


def test_tiny_pe_imports_fallback(reports: dict[str, dict]) -> None:
    """LIEF returns no imports for clam.exe; the fallback reader gives pefile's imphash."""
    r = reports["clam.exe_"]
    assert r["pe_info"]["imphash"] == "98c88d882f01a3f6ac1e5f7dfd761624"
    assert {i["library_name"] for i in r["pe_info"]["import_list"]} == {"KERNEL32.DLL", "USER32.DLL"}


def test_overlay_child() -> None:
    """A ZIP appended to a PE is an ``overlay_children`` child."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hello " * 50)
    r = pe.analyse(load("cli-32.exe_") + buf.getvalue())
    kids = [c for c in r["children"] if c["relationship"] == "overlay_children"]
    assert len(kids) == 1 and kids[0]["data"] == buf.getvalue()
    assert r["pe_info"]["overlay"]["filetype"] == "ZIP"


def test_resource_children_filter() -> None:
    """Embedded PEs/archives in RCDATA are children; icons and version blobs never are."""
    embedded = load("clam-upx.exe_")
    leaves = [
        ResourceLeaf("RT_RCDATA", "101", 1033, 0, len(embedded), embedded),
        ResourceLeaf("RT_ICON", "1", 1033, 0, len(embedded), embedded),
        ResourceLeaf("RT_RCDATA", "102", 1033, 0, 200, b"\x00" * 200),
        ResourceLeaf("BINARY", "103", 0, 0, 300, b"PK\x03\x04" + b"\x00" * 296),
    ]
    kids = resource_children(leaves)
    assert [k["name"] for k in kids] == ["RT_RCDATA/101/1033", "BINARY/103/0"]
    assert all(k["relationship"] == "pe_resource_children" for k in kids)


def test_not_a_pe() -> None:
    r = pe.analyse(b"\x7fELF" + b"\0" * 100)
    assert r["anomalies"] and r["children"] == []
    assert "pe_info" not in r


def test_deadline_is_enforced() -> None:
    with pytest.raises(AnalysisTimeout):
        pe.analyse(load("w32.exe_"), Deadline(-1))
