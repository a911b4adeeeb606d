"""pefile-based oracle helpers shared by the PE tests (pefile is a test oracle, never on the hot path)."""

from __future__ import annotations

import hashlib
from typing import Any

import pefile

from kinfile.formats import der, pe_signature
from kinfile.formats.pe_headers import parse_headers
from kinfile.formats.pe_resources import language_name


def fast_pe(data: bytes) -> pefile.PE:
    pe = pefile.PE(data=data, fast_load=True)
    pe.parse_data_directories([pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_IMPORT"]])
    return pe


def check_sections(report: dict[str, Any], pe: pefile.PE) -> None:
    ours = report["pe_info"].get("sections", [])
    assert len(ours) == min(len(pe.sections), 256)
    for mine, theirs in zip(ours, pe.sections, strict=False):
        assert mine["virtual_address"] == theirs.VirtualAddress
        assert mine["virtual_size"] == theirs.Misc_VirtualSize
        assert mine["raw_size"] == theirs.SizeOfRawData
        assert mine["md5"] == theirs.get_hash_md5()
        assert abs(mine["entropy"] - theirs.get_entropy()) <= 0.0051


def check_overlay(report: dict[str, Any], pe: pefile.PE, data: bytes) -> None:
    start = pe.get_overlay_data_start_offset()
    overlay = report["pe_info"].get("overlay")
    if start is None:
        assert overlay is None
        return
    assert overlay["offset"] == start
    assert overlay["size"] == len(data) - start
    assert overlay["md5"] == hashlib.md5(pe.get_overlay()).hexdigest()


def check_rich(report: dict[str, Any], pe: pefile.PE) -> None:
    if hasattr(pe, "RICH_HEADER"):
        expected = pe.get_rich_header_hash()
    else:  # fast_load skips the Rich header: run pefile's parser directly
        parsed = pe.parse_rich_header()
        expected = hashlib.md5(parsed["clear_data"]).hexdigest() if parsed else ""
    assert report["pe_info"].get("rich_pe_header_hash", "") == expected


def check_imphash(report: dict[str, Any], pe: pefile.PE) -> None:
    expected = pe.get_imphash()
    assert report["pe_info"].get("imphash", "") == expected


def pefile_resources(data: bytes) -> list[tuple[str, str]]:
    """(sha256, language label) per resource leaf in pefile's tree order."""
    pe = pefile.PE(data=data, fast_load=True)
    pe.parse_data_directories([pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]])
    out = []
    root = getattr(pe, "DIRECTORY_ENTRY_RESOURCE", None)
    for rtype in root.entries if root is not None else []:
        for name in rtype.directory.entries if hasattr(rtype, "directory") else []:
            for lang in name.directory.entries if hasattr(name, "directory") else []:
                if not hasattr(lang, "data"):
                    continue
                blob = pe.get_data(lang.data.struct.OffsetToData, lang.data.struct.Size)
                label = language_name(lang.data.lang | (lang.data.sublang << 10))
                out.append((hashlib.sha256(blob).hexdigest(), label))
    return out


def check_resources(report: dict[str, Any], data: bytes) -> None:
    expected = pefile_resources(data)[:256]
    ours = [(r["sha256"], r["lang"]) for r in report["pe_info"].get("resource_details", [])]
    assert ours == expected


def pefile_version_strings(data: bytes) -> dict[str, str]:
    pe = pefile.PE(data=data, fast_load=True)
    pe.parse_data_directories([pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]])
    out: dict[str, str] = {}
    for group in getattr(pe, "FileInfo", []) or []:
        for info in group:
            for table in getattr(info, "StringTable", []):
                for key, value in table.entries.items():
                    out.setdefault(key.decode("utf-8", "replace"), value.decode("utf-8", "replace"))
    return out


SIGNATURE_INFO_KEYS = {
    "FileDescription": "description",
    "FileVersion": "file version",
    "InternalName": "internal name",
    "OriginalFilename": "original name",
    "ProductName": "product",
    "LegalCopyright": "copyright",
    "Comments": "comments",
}


def check_version_info(report: dict[str, Any], data: bytes) -> None:
    expected = pefile_version_strings(data)
    info = report.get("signature_info", {})
    for key, vt_key in SIGNATURE_INFO_KEYS.items():
        if expected.get(key):
            assert info.get(vt_key) == expected[key].replace("\x00", ""), key


def check_authentihash(report: dict[str, Any], data: bytes) -> bool:
    """For a signed PE: our authentihash equals the SpcIndirectDataContent digest (and LIEF's)."""
    hdr = parse_headers(data)
    blob = pe_signature.certificate_blob(hdr)
    if blob is None:
        return False
    algo, digest = der.spc_indirect_digest(blob)
    assert hdr.authentihash(algo) == digest.hex()
    if algo == "sha256":
        assert report["authentihash"] == digest.hex()
    import lief

    binary = lief.PE.parse(data)
    if binary is not None and len(binary.signatures):
        assert bytes(binary.signatures[0].content_info.digest) == digest
    return True


def check_dotnet(report: dict[str, Any], data: bytes) -> None:
    """Compare ``dot_net_assembly`` with dnfile (full pefile-based parse, slow: oracle only)."""
    import dnfile

    net = report["dot_net_assembly"]
    net_header = dnfile.dnPE(data=data).net
    assert net_header is not None and net_header.mdtables is not None
    tables: Any = net_header.mdtables
    if tables.Assembly:
        assert net["assembly_name"] == str(tables.Assembly.rows[0].Name)
    refs = {str(row.Name) for row in tables.AssemblyRef.rows} if tables.AssemblyRef else set()
    assert set(net.get("external_assemblies", {})) == refs
    n_types = len(tables.TypeDef.rows) if tables.TypeDef else 0
    assert sum(len(ns["type_definitions"]) for ns in net["type_definition_list"]) == min(n_types, 1024)
    resources = [str(row.Name) for row in tables.ManifestResource.rows] if tables.ManifestResource else []
    assert net.get("manifest_resource", []) == resources
