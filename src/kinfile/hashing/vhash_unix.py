"""vhash features of ELF (``elf1``) and Mach-O (``macho1``) binaries.

Like PE: what the binary is (object type, linked libraries, exported symbols as a count bucket
and a MinHash sketch, imported symbol count bucket, interpreter, packer) and not how one build
laid it out. The machine is left out on purpose so a library built for several architectures
keeps one vhash (glibc for amd64, arm64, mips64el... in the corpus).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from kinfile.hashing.vhash_common import (
    Feature,
    as_dict,
    as_list,
    as_text,
    bucket,
    joined,
    min_hash,
    stem,
)

SONAME_VERSION = re.compile(r"\.so(\.\d+)*$")
LOADER = re.compile(r"^ld(64)?([-.]|$)")
"""The dynamic loader's name is per architecture (ld-linux-x86-64.so.2, ld64.so.1, ld.so.1)."""


def soname(value: Any) -> str:
    """``libc.so.6`` → ``libc.so`` (the ABI version follows the release, not the program)."""
    return SONAME_VERSION.sub(".so", stem(value))


def _packers(attrs: dict[str, Any]) -> str:
    return joined(as_text(p) for p in as_dict(attrs.get("packers")).values())


# -- ELF --------------------------------------------------------------------------------------
def _elf(attrs: dict[str, Any]) -> dict[str, Any]:
    return as_dict(attrs.get("elf_info"))


def extract_elf_kind(attrs: dict[str, Any]) -> Iterator[Feature]:
    header = as_dict(_elf(attrs).get("header"))
    yield "t", as_text(header.get("type")).split(" ")[0]
    yield "abi", as_text(header.get("os_abi"))
    yield "pk", _packers(attrs)


def extract_elf_links(attrs: dict[str, Any]) -> Iterator[Feature]:
    info = _elf(attrs)
    libs = (soname(lib) for lib in as_list(info.get("shared_libraries")))
    yield "lib", joined(lib for lib in libs if not LOADER.match(lib))
    segments = {as_text(as_dict(s).get("segment_type")) for s in as_list(info.get("segment_list"))}
    yield "interp", "1" if "interp" in segments else "0"


def extract_elf_symbols(attrs: dict[str, Any]) -> Iterator[Feature]:
    info = _elf(attrs)
    exports = [as_text(as_dict(e).get("name")) for e in as_list(info.get("export_list"))]
    imports = [as_text(as_dict(e).get("name")) for e in as_list(info.get("import_list"))]
    yield "ex", f"{bucket(len(exports))}:{min_hash(exports)}"
    if not exports:  # a library is its exports; its imports vary with the architecture's helpers
        yield "im", bucket(len(imports))


ELF_EXTRACTORS = (extract_elf_kind, extract_elf_links, extract_elf_symbols)


# -- Mach-O -----------------------------------------------------------------------------------
def _slices(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    value = attrs.get("macho_info")
    return [as_dict(s) for s in (value if isinstance(value, list) else [value]) if isinstance(s, dict)]


def extract_macho_kind(attrs: dict[str, Any]) -> Iterator[Feature]:
    slices = _slices(attrs)
    yield "fat", bucket(len(slices))
    yield "t", joined(as_text(as_dict(s.get("headers")).get("file_type")) for s in slices)
    yield "pk", _packers(attrs)


def extract_macho_symbols(attrs: dict[str, Any]) -> Iterator[Feature]:
    libs: list[str] = []
    exports: list[str] = []
    imports: list[str] = []
    for sl in _slices(attrs):
        libs += [stem(lib) for lib in as_list(sl.get("libs"))]
        exports += [as_text(e) for e in as_list(sl.get("exports"))]
        imports += [as_text(i) for i in as_list(sl.get("imports"))]
    yield "lib", joined(libs)
    distinct = sorted(set(exports))
    yield "ex", f"{bucket(len(distinct))}:{min_hash(distinct)}"
    yield "im", bucket(len(set(imports)))


MACHO_EXTRACTORS = (extract_macho_kind, extract_macho_symbols)
