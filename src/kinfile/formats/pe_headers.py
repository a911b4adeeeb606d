"""Minimal, bounds-checked PE header reader (DOS, COFF, optional header, sections).

Pure ``struct`` parsing: it never trusts a count or an offset from the file. The RVA-to-offset
mapping, the section data and the overlay start follow pefile's rules (``adjust_FileAlignment``,
``adjust_SectionAlignment``, sections sorted by ``VirtualAddress``) so that section hashes and
overlay values equal pefile's, which VirusTotal's ``pe_info`` is built on.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

MAX_SECTIONS = 256
SECURITY_DIR = 4
CLR_DIR = 14
PE32_MAGIC = 0x10B
PE32PLUS_MAGIC = 0x20B

_OPT32 = struct.Struct("<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII")
_OPT64 = struct.Struct("<HBBIIIIIQIIHHHHHHIIIIHHQQQQII")
# Optional-header fields in file order; PE32 has BaseOfData after BaseOfCode, PE32+ has not.
_OPT64_FIELDS = [
    "magic",
    "lmajor",
    "lminor",
    "size_code",
    "size_init",
    "size_uninit",
    "entry",
    "base_code",
    "image_base",
    "section_alignment",
    "file_alignment",
    "os_major",
    "os_minor",
    "img_major",
    "img_minor",
    "sub_major",
    "sub_minor",
    "win32ver",
    "size_image",
    "size_headers",
    "checksum",
    "subsystem",
    "dll_chars",
    "stack_reserve",
    "stack_commit",
    "heap_reserve",
    "heap_commit",
    "loader_flags",
    "nrva",
]
_OPT32_FIELDS = [*_OPT64_FIELDS[:8], "base_data", *_OPT64_FIELDS[8:]]
_SECTION = struct.Struct("<8sIIIIIIHHI")
_SCN_EXECUTE, _SCN_READ, _SCN_WRITE = 0x20000000, 0x40000000, 0x80000000


class NotPE(ValueError):
    """The data does not start with a parseable MZ/PE header."""


@dataclass
class Section:
    name: str
    raw_name: bytes
    virtual_size: int
    virtual_address: int
    raw_size: int
    raw_pointer: int
    characteristics: int
    va_adj: int = 0
    ptr_adj: int = 0
    min_addr: int = 0
    max_addr: int = 0

    @property
    def flags(self) -> str:
        c = self.characteristics
        return (
            ("r" if c & _SCN_READ else "")
            + ("w" if c & _SCN_WRITE else "")
            + ("x" if c & _SCN_EXECUTE else "")
        )


@dataclass
class PeHeaders:
    data: bytes
    e_lfanew: int
    machine: int
    number_of_sections: int
    timestamp: int
    pointer_to_symbol_table: int
    number_of_symbols: int
    size_of_optional_header: int
    characteristics: int
    optional_offset: int
    magic: int
    opt: dict[str, int]
    data_dirs: list[tuple[int, int]]
    sections: list[Section] = field(default_factory=list)
    sections_in_file_order: list[Section] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)

    @property
    def is_64(self) -> bool:
        return self.magic == PE32PLUS_MAGIC

    @property
    def is_dll(self) -> bool:
        return bool(self.characteristics & 0x2000)

    @property
    def checksum_offset(self) -> int:
        return self.optional_offset + 64

    @property
    def security_entry_offset(self) -> int:
        return self.optional_offset + (112 if self.is_64 else 96) + 8 * SECURITY_DIR

    def directory(self, index: int) -> tuple[int, int]:
        return self.data_dirs[index] if index < len(self.data_dirs) else (0, 0)

    # -- address mapping (pefile semantics) -------------------------------------------------

    def section_for_rva(self, rva: int) -> Section | None:
        for s in self.sections:
            if s.min_addr <= rva < s.max_addr:
                return s
        return None

    def rva_to_offset(self, rva: int) -> int | None:
        s = self.section_for_rva(rva)
        if s is None:
            return rva if rva < len(self.data) else None
        return rva - s.va_adj + s.ptr_adj

    def read_rva(self, rva: int, size: int) -> bytes:
        """pefile's ``get_data(rva, length)``: reads stop at the end of the section's raw data."""
        size = max(0, size)
        s = self.section_for_rva(rva)
        if s is None:
            return self.data[rva : rva + size] if rva < len(self.data) else b""
        off = rva - s.va_adj + s.ptr_adj
        end = min(off + size, s.raw_pointer + s.raw_size)
        return self.data[off:end] if off >= 0 and end > off else b""

    def section_data(self, s: Section) -> bytes:
        end = s.ptr_adj + s.raw_size
        end = min(end, s.raw_pointer + s.raw_size)
        return self.data[s.ptr_adj : end] if end > s.ptr_adj else b""

    def overlay_offset(self) -> int | None:
        """pefile's ``get_overlay_data_start_offset``: end of the furthest structure in the file."""
        size = len(self.data)
        best = (0, 0)

        def larger(cand: tuple[int, int]) -> None:
            nonlocal best
            if sum(best) < sum(cand) <= size:
                best = cand

        larger((self.optional_offset, self.size_of_optional_header))
        for s in self.sections_in_file_order:
            larger((s.raw_pointer, s.raw_size))
        for idx, (rva, dsize) in enumerate(self.data_dirs):
            if idx == SECURITY_DIR:
                continue
            off = self.rva_to_offset(rva)
            if off is not None:
                larger((off, dsize))
        return sum(best) if size > sum(best) else None

    # -- Authenticode -----------------------------------------------------------------------

    def certificate_table(self) -> tuple[int, int] | None:
        off, size = self.directory(SECURITY_DIR)
        if off == 0 or size < 8 or off + size > len(self.data):
            return None
        return off, size

    def authentihash(self, algorithm: str = "sha256") -> str:
        """Hash of the file without the checksum, the security entry and the certificate table."""
        data = self.data
        h = hashlib.new(algorithm)
        cks = self.checksum_offset
        sec = self.security_entry_offset
        if len(self.data_dirs) <= SECURITY_DIR or sec + 8 > len(data):
            h.update(data[:cks])
            h.update(data[cks + 4 :])
            return h.hexdigest()
        h.update(data[:cks])
        h.update(data[cks + 4 : sec])
        cert = self.certificate_table()
        if cert and cert[0] >= sec + 8:
            h.update(data[sec + 8 : cert[0]])
            h.update(data[cert[0] + cert[1] :])
        else:
            h.update(data[sec + 8 :])
        return h.hexdigest()


def _adjust_section_alignment(val: int, section_alignment: int, file_alignment: int) -> int:
    if section_alignment < 0x1000:
        section_alignment = file_alignment
    if section_alignment and val % section_alignment:
        return section_alignment * (val // section_alignment)
    return val


def _unpack_padded(st: struct.Struct, data: bytes, offset: int) -> tuple[int, ...]:
    chunk = data[offset : offset + st.size]
    if len(chunk) < st.size:
        chunk = chunk + b"\0" * (st.size - len(chunk))
    return st.unpack(chunk)


def parse_headers(data: bytes) -> PeHeaders:
    """Parse the headers and the section table; raise :class:`NotPE` if there is no PE header."""
    if len(data) < 0x40 or data[:2] != b"MZ":
        raise NotPE("no MZ header")
    (e_lfanew,) = struct.unpack_from("<I", data, 0x3C)
    if e_lfanew + 24 > len(data) or data[e_lfanew : e_lfanew + 4] != b"PE\0\0":
        raise NotPE("no PE signature")
    machine, nsec, ts, psym, nsym, sopt, chars = struct.unpack_from("<HHIIIHH", data, e_lfanew + 4)
    opt_off = e_lfanew + 24
    anomalies: list[str] = []
    magic = struct.unpack_from("<H", data, opt_off)[0] if opt_off + 2 <= len(data) else 0
    if magic == PE32PLUS_MAGIC:
        v = _unpack_padded(_OPT64, data, opt_off)
        names = _OPT64_FIELDS
        dd_off = opt_off + 112
    else:
        if magic != PE32_MAGIC:
            anomalies.append(f"unusual optional header magic 0x{magic:x}")
        v = _unpack_padded(_OPT32, data, opt_off)
        names = _OPT32_FIELDS
        dd_off = opt_off + 96
    opt = dict(zip(names, v, strict=True))
    nrva = opt["nrva"]
    if nrva > 16:
        anomalies.append(f"NumberOfRvaAndSizes is {nrva}")
    dirs: list[tuple[int, int]] = []
    for i in range(min(nrva, 16)):
        off = dd_off + 8 * i
        if off + 8 > len(data):
            break
        dirs.append(struct.unpack_from("<II", data, off))
    hdr = PeHeaders(
        data=data,
        e_lfanew=e_lfanew,
        machine=machine,
        number_of_sections=nsec,
        timestamp=ts,
        pointer_to_symbol_table=psym,
        number_of_symbols=nsym,
        size_of_optional_header=sopt,
        characteristics=chars,
        optional_offset=opt_off,
        magic=magic,
        opt=opt,
        data_dirs=dirs,
        anomalies=anomalies,
    )
    _parse_sections(hdr, opt_off + sopt)
    return hdr


def _parse_sections(hdr: PeHeaders, table_off: int) -> None:
    data = hdr.data
    count = hdr.number_of_sections
    if count > MAX_SECTIONS:
        hdr.anomalies.append(f"NumberOfSections is {count}, reading {MAX_SECTIONS}")
        count = MAX_SECTIONS
    file_align = hdr.opt["file_alignment"]
    sect_align = hdr.opt["section_alignment"]
    sections: list[Section] = []
    for i in range(count):
        off = table_off + i * _SECTION.size
        raw = data[off : off + _SECTION.size]
        if len(raw) < _SECTION.size:
            hdr.anomalies.append(f"section table truncated at entry {i}")
            break
        if raw.count(0) == _SECTION.size:
            hdr.anomalies.append(f"section {i} header is all zero")
            break
        name_b, vsize, va, rsize, rptr, _, _, _, _, chars = _SECTION.unpack(raw)
        name_b = name_b.rstrip(b"\0")
        s = Section(
            name=name_b.decode("utf-8", "replace").replace("\0", ""),
            raw_name=name_b,
            virtual_size=vsize,
            virtual_address=va,
            raw_size=rsize,
            raw_pointer=rptr,
            characteristics=chars,
        )
        s.ptr_adj = rptr & ~0x1FF  # pefile aligns to the 512-byte sector whatever FileAlignment is
        if sect_align < 0x1000 and rptr == va:
            s.ptr_adj = va
        s.va_adj = _adjust_section_alignment(va, sect_align, file_align)
        if rptr + rsize > len(data):
            hdr.anomalies.append(f"section {s.name!r} raw data extends past end of file")
        sections.append(s)
    hdr.sections_in_file_order = list(sections)
    sections.sort(key=lambda s: s.virtual_address)
    for idx, s in enumerate(sections):
        size = s.virtual_size if len(data) - s.ptr_adj < s.raw_size else max(s.raw_size, s.virtual_size)
        nxt = sections[idx + 1].virtual_address if idx + 1 < len(sections) else None
        if nxt is not None and nxt > s.virtual_address and s.va_adj + size > nxt:
            size = nxt - s.va_adj
        s.min_addr, s.max_addr = s.va_adj, s.va_adj + size
    hdr.sections = sections
