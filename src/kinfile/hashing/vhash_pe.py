"""vhash features of Windows PE images (``pe1``) and .NET assemblies (``net1``).

The features describe what a program *is* (its kind, the libraries it links, what it exports,
its resources and version identity, its packer) and leave out what changes between two builds
of the same source: timestamps, checksums, section hashes and entropies, exact sizes, the
machine type (so i386 and amd64 builds agree) and the C runtime imports (which follow the
toolchain, not the program). docs/vhash.md gives the reason for each feature.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from kinfile.hashing.vhash_common import (
    Feature,
    as_dict,
    as_int,
    as_list,
    as_text,
    bucket,
    flag,
    joined,
    min_hash,
    stem,
)

LIBRARY_SUFFIX = re.compile(r"\.(dll|drv|sys|ocx|exe|cpl|efi)$")
CRT_PREFIXES = ("api-ms-win-crt-", "vcruntime", "msvcp", "msvcr", "ucrtbase", "msvcrt", "libgcc", "libstdc++")
"""Runtime libraries: which of them a program imports follows the compiler version."""
SUBSYSTEM_KINDS = {"efi application": "efi", "efi boot service driver": "efi", "efi runtime driver": "efi"}
PAGE = 4096
STUB_IMPORTS = 16


def _pe(attrs: dict[str, Any]) -> dict[str, Any]:
    return as_dict(attrs.get("pe_info"))


def library(name: Any) -> str:
    return stem(LIBRARY_SUFFIX.sub("", as_text(name)))


def is_runtime(lib: str) -> bool:
    return lib.startswith(CRT_PREFIXES)


def identity_name(attrs: dict[str, Any]) -> str:
    """The version-info name the developer gave the file (original, else internal name)."""
    info = as_dict(attrs.get("signature_info"))
    return stem(info.get("original name") or info.get("internal name"))


def exports(attrs: dict[str, Any]) -> list[str]:
    return [as_text(e) for e in as_list(_pe(attrs).get("exports")) if as_text(e)]


def runtime_free_functions(attrs: dict[str, Any]) -> list[str]:
    functions: list[str] = []
    for entry in as_list(_pe(attrs).get("import_list")):
        lib = library(as_dict(entry).get("library_name"))
        if not is_runtime(lib):
            functions += [f"{lib}.{as_text(f)}" for f in as_list(as_dict(entry).get("imported_functions"))]
    return functions


def has_identity(attrs: dict[str, Any]) -> bool:
    """A version-info name, 2+ exports or a .NET assembly name: what tells programs apart.

    A single export is usually a generic entry point (``DriverProc``, ``ServiceMain``) shared by
    every driver or service of its kind, so it does not count as identity.
    """
    dotnet = as_dict(attrs.get("dot_net_assembly"))
    return bool(identity_name(attrs) or len(exports(attrs)) > 1 or dotnet.get("assembly_name"))


def is_stub(attrs: dict[str, Any]) -> bool:
    """No identity, no resources and only a handful of imports (tool stubs, EFI loaders)."""
    if has_identity(attrs) or as_dict(_pe(attrs).get("resource_types")):
        return False
    return len(runtime_free_functions(attrs)) < STUB_IMPORTS


def extract_kind(attrs: dict[str, Any]) -> Iterator[Feature]:
    subsystem = as_text(as_dict(attrs.get("exiftool")).get("Subsystem"))
    tag = as_text(attrs.get("type_tag"))
    kind = SUBSYSTEM_KINDS.get(subsystem) or ("dll" if tag == "pedll" else "exe")
    yield "k", kind
    yield "ss", subsystem


def extract_identity(attrs: dict[str, Any]) -> Iterator[Feature]:
    """Exports identify a library; the version-info name identifies a program without exports.

    A library keeps its exports across releases while its version resource comes and goes
    (pywin32 311 shipped without one), so the name is only used when there are no exports.
    Exports enter as their log2 count and a one-member MinHash sketch: a release that adds a
    few exports keeps the sketch with probability equal to the Jaccard similarity.
    """
    names = exports(attrs)
    yield "ex", f"{bucket(len(names))}:{min_hash(names)}"
    yield "vi", identity_name(attrs)


def extract_import_libraries(attrs: dict[str, Any]) -> Iterator[Feature]:
    libs = {
        library(i.get("library_name")) for i in as_list(_pe(attrs).get("import_list")) if isinstance(i, dict)
    }
    yield "il", joined(lib for lib in libs if not is_runtime(lib))


def extract_resources(attrs: dict[str, Any]) -> Iterator[Feature]:
    types = (as_text(t) for t in as_dict(_pe(attrs).get("resource_types")))
    yield "rt", joined(t for t in types if t != "rt_version")


def extract_toolchain(attrs: dict[str, Any]) -> Iterator[Feature]:
    yield "rich", flag(_pe(attrs).get("rich_pe_header_hash"))


def extract_packer(attrs: dict[str, Any]) -> Iterator[Feature]:
    """Packer names, and the section layout the packer declares (its virtual sizes in pages).

    A packer hides the program, so its own layout is the structure: UPX's first section is as
    large as the unpacked image, which tells two UPX-packed programs apart while UPX and
    UPX --lzma of one program agree.
    """
    packers = joined(as_text(p).replace(", ", ";") for p in as_dict(attrs.get("packers")).values())
    yield "pk", packers
    if packers:
        yield "pl", _layout(attrs, pages=True)


def extract_anonymous(attrs: dict[str, Any]) -> Iterator[Feature]:
    """Files without identity features: the imported functions (and, for stubs, the content).

    Without a name or exports, the coarse features are shared by every program of a toolchain
    that links the same libraries, so the imported functions (runtime ones left out) are added.
    Stubs import so little that even that is shared (the Wine stub programs have the same
    imports and byte-for-byte the same layout), so unpacked stubs also get their exact section
    layout and section md5s: they cluster only with builds whose sections are identical (e.g. a
    signed and an unsigned copy of one EFI loader) instead of into one false cluster.
    """
    if has_identity(attrs):
        return
    yield "if", joined(runtime_free_functions(attrs))
    if is_stub(attrs):
        yield "lay", _layout(attrs, pages=False)
        yield "sm", ";".join(as_text(as_dict(s).get("md5")) for s in as_list(_pe(attrs).get("sections")))


def _layout(attrs: dict[str, Any], pages: bool) -> str:
    """Section names with exact virtual sizes, or (``pages``) with the image size bucket.

    A packer's own sections trade size between them with the compression method (UPX1 grows
    when UPX0 shrinks), so packed layouts keep the names and the log2 bucket of the total.
    """
    sections = [as_dict(s) for s in as_list(_pe(attrs).get("sections"))]
    if pages:
        total = sum((as_int(s.get("virtual_size")) + PAGE - 1) // PAGE for s in sections)
        return ";".join(as_text(s.get("name")) for s in sections) + f":{bucket(total)}"
    return ";".join(f"{as_text(s.get('name'))}:{as_int(s.get('virtual_size'))}" for s in sections)


PE_EXTRACTORS = (
    extract_kind,
    extract_identity,
    extract_import_libraries,
    extract_resources,
    extract_toolchain,
    extract_packer,
    extract_anonymous,
)


# -- .NET ---------------------------------------------------------------------------------------
def _net(attrs: dict[str, Any]) -> dict[str, Any]:
    return as_dict(attrs.get("dot_net_assembly"))


def extract_assembly(attrs: dict[str, Any]) -> Iterator[Feature]:
    net = _net(attrs)
    yield "an", stem(net.get("assembly_name") or as_dict(net.get("assembly_data")).get("name"))
    yield "ea", joined(stem(name) for name in as_dict(net.get("external_assemblies")))


def extract_assembly_kind(attrs: dict[str, Any]) -> Iterator[Feature]:
    yield "k", "dll" if as_text(attrs.get("type_tag")) == "pedll" else "exe"
    yield "mr", bucket(len(as_list(_net(attrs).get("manifest_resource"))))


NET_EXTRACTORS = (extract_assembly_kind, extract_assembly, extract_packer)
