"""A small, bounds-checked ELF structure reader (header, section and program headers, symbols).

LIEF is the main ELF parser of kinfile; this reader exists because two consumers need the raw
table layout exactly as it is on disk:

* ``elf_info`` reproduces ``readelf`` strings and its section-to-segment mapping, which need the
  raw numeric header values in file order;
* telfhash (:mod:`kinfile.hashing.telfhash`) must walk the section table and symbol tables the way
  the reference implementation (pyelftools) does, including its quirks.

Every read is bounded by the buffer; a truncated table yields the entries that fit plus an anomaly.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

ELF_MAGIC = b"\x7fELF"
MAX_SECTIONS = 4096
"""Section headers read at most (real binaries have < 100; hostile ones claim 65535)."""
MAX_SEGMENTS = 1024
"""Program headers read at most."""
MAX_SYMBOLS = 500_000
"""Symbols read at most from one symbol table."""

SHT_NOBITS = 8
SHT_SYMTAB = 2
SHT_DYNSYM = 11
PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3

_HEADER = {1: "HHIIIIIHHHHHH", 2: "HHIQQQIHHHHHH"}
_SECTION = {1: "IIIIIIIIII", 2: "IIQQQQIIQQ"}
_SEGMENT = {1: "IIIIIIII", 2: "IIQQQQQQ"}
_SYMBOL = {1: "IIIBBH", 2: "IBBHQQ"}


class ElfFormatError(ValueError):
    """Not an ELF file, or its header is unreadable."""


@dataclass(frozen=True, slots=True)
class ElfHeader:
    ei_class: int
    ei_data: int
    ei_version: int
    os_abi: int
    abi_version: int
    e_type: int
    e_machine: int
    e_version: int
    e_entry: int
    e_phoff: int
    e_shoff: int
    e_flags: int
    e_ehsize: int
    e_phentsize: int
    e_phnum: int
    e_shentsize: int
    e_shnum: int
    e_shstrndx: int


@dataclass(frozen=True, slots=True)
class ElfSection:
    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int


@dataclass(frozen=True, slots=True)
class ElfSegment:
    type: int
    flags: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    align: int


@dataclass(frozen=True, slots=True)
class ElfSymbol:
    name: str
    value: int
    size: int
    type: int
    bind: int
    visibility: int
    shndx: int


@dataclass
class ElfFile:
    """The parsed tables of one ELF image; build it with :func:`parse`."""

    data: bytes
    header: ElfHeader
    endian: str
    sections: list[ElfSection] = field(default_factory=list)
    segments: list[ElfSegment] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)

    @property
    def is_64(self) -> bool:
        return self.header.ei_class == 2

    def section_data(self, section: ElfSection) -> bytes:
        if section.type == SHT_NOBITS:
            return b""
        return self.data[section.offset : section.offset + section.size]

    def segment_data(self, segment: ElfSegment) -> bytes:
        return self.data[segment.offset : segment.offset + segment.filesz]

    def cstring(self, offset: int, limit: int = 4096) -> bytes:
        if offset < 0 or offset >= len(self.data):
            return b""
        end = self.data.find(b"\x00", offset, offset + limit)
        return self.data[offset : end if end >= 0 else offset + limit]

    def section_by_name(self, name: str) -> ElfSection | None:
        return next((s for s in self.sections if s.name == name), None)

    def iter_symbols(self, section: ElfSection) -> Iterator[ElfSymbol]:
        """Symbols of a SYMTAB/DYNSYM section, read like pyelftools (``sh_size // sh_entsize``).

        Raises :class:`ElfFormatError` when the table cannot be walked (``sh_entsize`` of 0).
        """
        cls = self.header.ei_class
        fmt = self.endian + _SYMBOL[cls]
        need = struct.calcsize(fmt)
        if section.entsize <= 0:
            raise ElfFormatError("symbol table with sh_entsize 0")
        count = min(section.size // section.entsize, MAX_SYMBOLS)
        strtab = self.sections[section.link] if 0 <= section.link < len(self.sections) else None
        str_base = strtab.offset if strtab is not None else None
        names: dict[int, str] = {}
        for i in range(count):
            pos = section.offset + i * section.entsize
            if pos + need > len(self.data):
                break
            raw = struct.unpack_from(fmt, self.data, pos)
            if cls == 1:
                st_name, value, size, info, other, shndx = raw
            else:
                st_name, info, other, shndx, value, size = raw
            name = names.get(st_name)
            if name is None:
                name = (
                    self.cstring(str_base + st_name).decode("utf-8", "replace")
                    if str_base is not None and st_name
                    else ""
                )
                names[st_name] = name
            yield ElfSymbol(name, value, size, info & 0xF, info >> 4, other & 0x3, shndx)


def parse(data: bytes) -> ElfFile:
    """Parse the ELF header and its section/program header tables (never the contents)."""
    if len(data) < 16 or data[:4] != ELF_MAGIC:
        raise ElfFormatError("no ELF magic")
    ei_class, ei_data = data[4], data[5]
    if ei_class not in (1, 2):
        raise ElfFormatError(f"invalid ELF class {ei_class}")
    endian = ">" if ei_data == 2 else "<"
    fmt = endian + _HEADER[ei_class]
    if len(data) < 16 + struct.calcsize(fmt):
        raise ElfFormatError("truncated ELF header")
    fields = struct.unpack_from(fmt, data, 16)
    header = ElfHeader(ei_class, ei_data, data[6], data[7], data[8], *fields)
    elf = ElfFile(data=data, header=header, endian=endian)
    if ei_data not in (1, 2):
        elf.anomalies.append(f"invalid ELF data encoding {ei_data}")
    _read_sections(elf)
    _read_segments(elf)
    return elf


def _read_table(
    elf: ElfFile, what: str, offset: int, count: int, entsize: int, fmt: str, limit: int
) -> list[tuple[int, ...]]:
    fmt = elf.endian + fmt
    need = struct.calcsize(fmt)
    if count == 0 or offset == 0:
        return []
    if entsize < need:
        elf.anomalies.append(f"{what} entry size {entsize} smaller than {need}")
        entsize = need
    if count > limit:
        elf.anomalies.append(f"{what} count {count} capped at {limit}")
        count = limit
    rows = []
    for i in range(count):
        pos = offset + i * entsize
        if pos + need > len(elf.data):
            elf.anomalies.append(f"{what} table truncated: {i} of {count} entries in the file")
            break
        rows.append(struct.unpack_from(fmt, elf.data, pos))
    return rows


def _read_sections(elf: ElfFile) -> None:
    h = elf.header
    count = h.e_shnum
    fmt = _SECTION[h.ei_class]
    if count == 0 and h.e_shoff:
        first = _read_table(elf, "section header", h.e_shoff, 1, h.e_shentsize, fmt, 1)
        count = first[0][5] if first else 0  # extended numbering: sh_size of section 0
    rows = _read_table(elf, "section header", h.e_shoff, count, h.e_shentsize, fmt, MAX_SECTIONS)
    shstrndx = h.e_shstrndx
    if shstrndx == 0xFFFF and rows:
        shstrndx = rows[0][6]  # SHN_XINDEX: the index is in sh_link of section 0
    names_base = rows[shstrndx][4] if 0 <= shstrndx < len(rows) else None
    if names_base is None and rows:
        elf.anomalies.append(f"section name table index {shstrndx} out of range")
    for index, (sh_name, *rest) in enumerate(rows):
        name = ""
        if names_base is not None:
            name = elf.cstring(names_base + sh_name, 256).decode("utf-8", "replace")
        elf.sections.append(ElfSection(index, name, *rest))


def _read_segments(elf: ElfFile) -> None:
    h = elf.header
    count = h.e_phnum
    if count == 0xFFFF and elf.sections:
        count = elf.sections[0].info  # PN_XNUM
    rows = _read_table(
        elf, "program header", h.e_phoff, count, h.e_phentsize, _SEGMENT[h.ei_class], MAX_SEGMENTS
    )
    for row in rows:
        if h.ei_class == 1:
            p_type, offset, vaddr, paddr, filesz, memsz, flags, align = row
        else:
            p_type, flags, offset, vaddr, paddr, filesz, memsz, align = row
        elf.segments.append(ElfSegment(p_type, flags, offset, vaddr, paddr, filesz, memsz, align))
