"""ELF analyser: VirusTotal's ``elf_info``, ``telfhash``, ``exiftool`` and tags.

Header, section and segment tables come from :mod:`kinfile.formats.elfraw` and are rendered
with readelf's strings (:mod:`kinfile.formats.elf_names`); shared libraries and the dynamic
import/export symbols come from LIEF, which resolves ``DT_NEEDED`` and symbol versions robustly.
Parse once, then run the ``EXTRACTORS`` in order; a failing extractor costs its own keys only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kinfile.formats import elf_names
from kinfile.formats.common import NO_DEADLINE, Deadline, clean_text, run_extractors
from kinfile.formats.elfraw import ElfFile, ElfFormatError, ElfSection, ElfSegment, parse

logger = logging.getLogger(__name__)

MAX_ENTRIES = 256
"""Every list in ``elf_info`` is capped like VirusTotal caps them."""
UPX_MARKERS = (b"UPX!", b"$Info: This file is packed with the UPX")
UPX_SECTION_NAMES = frozenset({"UPX0", "UPX1", "UPX2", ".upx", "upx0", "upx1"})
DF_1_PIE = 0x08000000
DT_FLAGS_1 = 0x6FFFFFFB

SHF_ALLOC, SHF_TLS, SHT_NOBITS = 0x2, 0x400, 8
PT_LOAD, PT_DYNAMIC, PT_NOTE, PT_PHDR, PT_TLS = 1, 2, 4, 6, 7
PT_GNU_EH_FRAME, PT_GNU_STACK, PT_GNU_RELRO, PT_GNU_SFRAME = 0x6474E550, 0x6474E551, 0x6474E552, 0x6474E554
ALLOC_ONLY_SEGMENTS = frozenset(
    {PT_LOAD, PT_DYNAMIC, PT_GNU_EH_FRAME, PT_GNU_STACK, PT_GNU_RELRO, PT_GNU_SFRAME}
)
MASK64 = (1 << 64) - 1

EXIF_CPU_TYPES = {
    0: "None",
    1: "AT&T WE 32100",
    2: "SPARC",
    3: "i386",
    4: "Motorola 68000",
    5: "Motorola 88000",
    6: "i486",
    7: "i860",
    8: "MIPS R3000",
    10: "MIPS R4000",
    15: "HPPA",
    18: "Sun v8plus",
    20: "PowerPC",
    21: "PowerPC 64-bit",
    22: "IBM S/390",
    23: "Cell BE SPU",
    42: "SuperH",
    43: "SPARC v9 64-bit",
    46: "Renesas H8/300,300H,H8S",
    50: "HP/Intel IA-64",
    62: "AMD x86-64",
    76: "Axis Communications 32-bit embedded processor",
    87: "NEC v850",
    88: "Renesas M32R",
    0x5441: "Fujitsu FR-V",
    0x9026: "Alpha",
    0x9041: "m32r (old)",
    0x9080: "v850 (old)",
    0xA390: "S/390 (old)",
}
"""ExifTool 12.57's ``CPUType`` names (it has none for ARM, AArch64 or RISC-V: "Unknown (40)")."""
EXIF_OBJECT_TYPES = {
    0: "None",
    1: "Relocatable file",
    2: "Executable file",
    3: "Shared object file",
    4: "Core file",
}


@dataclass
class ElfContext:
    data: bytes
    elf: ElfFile
    binary: Any  # lief.ELF.Binary | None
    deadline: Deadline
    info: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    anomalies: list[str] = field(default_factory=list)


def _lief_parse(data: bytes, anomalies: list[str]) -> Any:
    try:
        import lief
    except ImportError:
        anomalies.append("lief not installed: no libraries/imports/exports")
        return None
    lief.logging.disable()
    try:
        binary = lief.ELF.parse(data)
    except Exception as exc:  # LIEF raises on some hostile inputs instead of returning None
        anomalies.append(f"LIEF could not parse the ELF: {type(exc).__name__}")
        return None
    if binary is None:
        anomalies.append("LIEF could not parse the ELF")
    return binary


def _is_pie(ctx: ElfContext) -> bool:
    if ctx.binary is None or ctx.elf.header.e_type != 3:
        return False
    try:
        return any(int(e.tag) == DT_FLAGS_1 and e.value & DF_1_PIE for e in ctx.binary.dynamic_entries)
    except Exception:
        return False


def extract_header(ctx: ElfContext) -> None:
    h = ctx.elf.header
    version = {1: " (current)", 0: ""}.get(h.ei_version, " <unknown>")
    ctx.info["header"] = {
        "class": {1: "ELF32", 2: "ELF64"}[h.ei_class],
        "data": {1: "2's complement, little endian", 2: "2's complement, big endian"}.get(h.ei_data, "none"),
        "hdr_version": f"{h.ei_version}{version}",
        "os_abi": elf_names.os_abi_name(h.os_abi),
        "abi_version": h.abi_version,
        "type": elf_names.file_type_name(h.e_type, _is_pie(ctx)),
        "machine": elf_names.machine_name(h.e_machine),
        "obj_version": f"{h.e_version:#x}",
        "entrypoint": h.e_entry,
        "flags": elf_names.header_flags(h.e_flags, h.e_machine),
        "num_prog_headers": h.e_phnum,
        "num_section_headers": h.e_shnum,
    }
    if h.ei_class == 2:
        ctx.tags.add("64bits")


def extract_sections(ctx: ElfContext) -> None:
    machine = ctx.elf.header.e_machine
    ctx.info["section_list"] = [
        {
            "name": s.name,
            "section_type": elf_names.section_type_name(s.type, machine),
            "virtual_address": s.addr,
            "physical_offset": s.offset,
            "size": s.size,
            "flags": elf_names.section_flags(s.flags),
        }
        for s in ctx.elf.sections[:MAX_ENTRIES]
    ]
    if len(ctx.elf.sections) > MAX_ENTRIES:
        ctx.anomalies.append(f"{len(ctx.elf.sections)} sections, {MAX_ENTRIES} listed")


def _section_size(sec: ElfSection, seg: ElfSegment) -> int:
    tbss = sec.flags & SHF_TLS and sec.type == SHT_NOBITS and seg.type != PT_TLS
    return 0 if tbss else sec.size


def section_in_segment(sec: ElfSection, seg: ElfSegment) -> bool:
    """binutils' ``ELF_SECTION_IN_SEGMENT_STRICT`` (what ``readelf -l`` maps), minus .tbss."""
    if sec.flags & SHF_TLS and sec.type == SHT_NOBITS and seg.type != PT_TLS:
        return False  # ELF_TBSS_SPECIAL
    tls = bool(sec.flags & SHF_TLS)
    if tls and seg.type not in (PT_TLS, PT_GNU_RELRO, PT_LOAD):
        return False
    if not tls and seg.type in (PT_TLS, PT_PHDR):
        return False
    alloc = bool(sec.flags & SHF_ALLOC)
    if not alloc and seg.type in ALLOC_ONLY_SEGMENTS:
        return False
    size = _section_size(sec, seg)
    if sec.type != SHT_NOBITS:
        rel = sec.offset - seg.offset
        if rel < 0 or rel > (seg.filesz - 1) & MASK64 or rel + size > seg.filesz:
            return False
    if alloc:
        rel = sec.addr - seg.vaddr
        if rel < 0 or rel > (seg.memsz - 1) & MASK64 or rel + size > seg.memsz:
            return False
    if seg.type in (PT_DYNAMIC, PT_NOTE) and sec.size == 0 and seg.memsz != 0:
        inside_file = sec.type == SHT_NOBITS or (
            sec.offset > seg.offset and sec.offset - seg.offset < seg.filesz
        )
        inside_mem = not alloc or (sec.addr > seg.vaddr and sec.addr - seg.vaddr < seg.memsz)
        return inside_file and inside_mem
    return True


def extract_segments(ctx: ElfContext) -> None:
    machine = ctx.elf.header.e_machine
    segments = []
    for seg in ctx.elf.segments[:MAX_ENTRIES]:
        ctx.deadline.check()
        names = [s.name for s in ctx.elf.sections[1:] if section_in_segment(s, seg)]
        segments.append(
            {"segment_type": elf_names.segment_type_name(seg.type, machine), "resources": names[:MAX_ENTRIES]}
        )
    ctx.info["segment_list"] = segments


def _symbol_type(symbol: Any) -> str:
    kind = symbol.type
    return getattr(kind, "name", str(kind).rsplit(".", 1)[-1])


def _symbol_list(symbols: Any, deadline: Deadline) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for count, sym in enumerate(symbols):
        if count % 1024 == 0:
            deadline.check()
        name = sym.name
        if isinstance(name, bytes):  # LIEF gives bytes for a name that is not UTF-8
            name = clean_text(name, 512)
        if not name or name in seen:
            continue
        seen.add(name)
        out.append({"name": name[:512], "type": _symbol_type(sym)})
        if len(out) >= MAX_ENTRIES:
            break
    return out


def extract_dynamic(ctx: ElfContext) -> None:
    if ctx.binary is None:
        return
    libraries = [str(lib) for lib in list(ctx.binary.libraries)[:MAX_ENTRIES]]
    if libraries:
        ctx.info["shared_libraries"] = libraries
    imports = _symbol_list(ctx.binary.imported_symbols, ctx.deadline)
    exports = _symbol_list(ctx.binary.exported_symbols, ctx.deadline)
    if imports:
        ctx.info["import_list"] = imports
    if exports:
        ctx.info["export_list"] = exports


def extract_packers(ctx: ElfContext) -> None:
    head, tail = ctx.data[:8192], ctx.data[-65536:]
    names = {s.name for s in ctx.elf.sections}
    if any(m in head or m in tail for m in UPX_MARKERS) or names & UPX_SECTION_NAMES:
        ctx.info["packers"] = ["upx"]
        ctx.tags.add("upx")


def extract_telfhash(ctx: ElfContext) -> None:
    from kinfile.hashing.telfhash import telfhash

    value = telfhash(ctx.data, ctx.deadline)
    if value:
        ctx.result["telfhash"] = value


def extract_exiftool(ctx: ElfContext) -> None:
    h = ctx.elf.header
    file_type, extension = {1: ("ELF object file", "o"), 3: ("ELF shared library", "so")}.get(
        h.e_type, ("ELF executable", "")
    )
    exif: dict[str, Any] = {"FileType": file_type}
    if extension:
        exif["FileTypeExtension"] = extension
    exif["MIMEType"] = "application/octet-stream"
    exif["CPUArchitecture"] = {1: "32 bit", 2: "64 bit"}[h.ei_class]
    if h.ei_data in (1, 2):
        exif["CPUByteOrder"] = {1: "Little endian", 2: "Big endian"}[h.ei_data]
    exif["ObjectFileType"] = EXIF_OBJECT_TYPES.get(h.e_type, f"Unknown ({h.e_type})")
    exif["CPUType"] = EXIF_CPU_TYPES.get(h.e_machine, f"Unknown ({h.e_machine})")
    ctx.result["exiftool"] = exif


EXTRACTORS = (
    extract_header,
    extract_sections,
    extract_segments,
    extract_dynamic,
    extract_packers,
    extract_telfhash,
    extract_exiftool,
)


def analyse(data: bytes, deadline: Deadline | None = None) -> dict[str, Any]:
    """``elf_info`` and friends for one ELF image; hostile input yields anomalies, never raises."""
    deadline = deadline or NO_DEADLINE
    try:
        elf = parse(data)
    except ElfFormatError as exc:
        return {"anomalies": [f"not a parseable ELF file: {exc}"]}
    ctx = ElfContext(data=data, elf=elf, binary=None, deadline=deadline, tags={"elf"})
    ctx.anomalies.extend(elf.anomalies)
    ctx.binary = _lief_parse(data, ctx.anomalies)
    run_extractors(EXTRACTORS, ctx, anomalies=ctx.anomalies)
    if ctx.elf.header.e_type == 3 and not _is_pie(ctx):
        ctx.tags.add("shared-lib")
    result: dict[str, Any] = {"elf_info": ctx.info, **ctx.result, "tags": sorted(ctx.tags)}
    if ctx.anomalies:
        result["anomalies"] = ctx.anomalies[:MAX_ENTRIES]
    return result
