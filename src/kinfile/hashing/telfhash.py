"""Trend Micro's telfhash: a TLSH over the filtered, sorted function symbols of an ELF file.

Reimplements the reference Python package (``telfhash`` 0.9.8, Apache-2.0) so that values match
VirusTotal's ``telfhash`` attribute and ``telfhash:`` searches:

1. The symbol table is the *first* section (in section-header order) of type ``SHT_DYNSYM`` or
   ``SHT_SYMTAB`` with a non-zero size (the reference code breaks on whichever comes first).
2. Symbols kept: ``STT_FUNC``, ``STB_GLOBAL``, ``STV_DEFAULT``, non-empty name, not excluded by
   :data:`EXCLUDED_NAMES` / :data:`EXCLUDED_PATTERNS`; names are lower-cased and sorted (duplicates
   kept), joined with ``","`` and hashed with ``tlsh.forcehash``; the digest is lower-cased.
3. Only when no such symbol table exists (static, stripped binaries): the code section holding the
   entry point (else ``.text``, else the first ``PT_LOAD`` with flags ``r-x``) is disassembled with
   capstone (x86, x86-64, ARM; MIPS decoded as 32-bit big-endian, as the reference does) and the
   absolute call targets, in order of first appearance, are hashed instead. capstone is imported
   lazily; without it this fallback yields no hash.

``None`` is returned where the reference prints no hash ("No symbols found", parse errors) and where
TLSH has too little input (``TNULL``).
"""

from __future__ import annotations

import logging
import re

from kinfile.formats.common import Deadline
from kinfile.formats.elfraw import (
    PT_INTERP,
    PT_LOAD,
    SHT_DYNSYM,
    SHT_SYMTAB,
    ElfFile,
    ElfFormatError,
    ElfSection,
    ElfSegment,
    parse,
)

logger = logging.getLogger(__name__)

EXCLUDED_NAMES = frozenset(
    {"__libc_start_main", "main", "abort", "cachectl", "cacheflush", "puts", "atol", "malloc_trim"}
)
"""Function names the reference ignores (entry glue, compiler substitutions, arch defaults)."""
EXCLUDED_PATTERNS = re.compile(r"^[_.]|64$|^str|^mem")
"""Names starting with ``_``/``.``, ending in ``64``, or ``str*``/``mem*`` (arch-dependent libc)."""
MAX_CODE_BYTES = 8 * 1024 * 1024
"""Code disassembled at most by the call-destination fallback."""

STT_FUNC, STB_GLOBAL, STV_DEFAULT = 2, 1, 0
EM_386, EM_MIPS, EM_ARM, EM_X86_64 = 3, 8, 40, 62


def telfhash(data: bytes, deadline: Deadline | None = None) -> str | None:
    """The telfhash of an ELF image (lower-case ``t1…``), or ``None`` when there is none."""
    try:
        elf = parse(data)
    except ElfFormatError:
        return None
    try:
        names = _symbol_names(elf, deadline)
    except ElfFormatError:
        return None
    if not names:
        return None
    return _digest(names)


def _digest(names: list[str]) -> str | None:
    import tlsh

    joined = ",".join(names).encode("ascii", "replace")
    value = tlsh.forcehash(joined).lower()
    return value if value and value != "tnull" else None


def _symbol_names(elf: ElfFile, deadline: Deadline | None) -> list[str]:
    table = next((s for s in elf.sections if s.size > 0 and s.type in (SHT_DYNSYM, SHT_SYMTAB)), None)
    if table is None:
        return call_destinations(elf, deadline)
    names = []
    for count, sym in enumerate(elf.iter_symbols(table)):
        if deadline is not None and count % 4096 == 0:
            deadline.check()
        if sym.type != STT_FUNC or sym.bind != STB_GLOBAL or sym.visibility != STV_DEFAULT:
            continue
        if not sym.name or sym.name in EXCLUDED_NAMES or EXCLUDED_PATTERNS.search(sym.name):
            continue
        names.append(sym.name.lower())
    names.sort()
    return names


def _code_region(elf: ElfFile) -> ElfSection | ElfSegment | None:
    entry = elf.header.e_entry
    for section in elf.sections:
        if section.addr <= entry <= section.addr + section.size - 1:
            return section
    text = elf.section_by_name(".text")
    if text is not None:
        return text
    return next((s for s in elf.segments if s.type == PT_LOAD and s.flags == 5), None)


def _image_base(elf: ElfFile) -> int:
    return next((s.vaddr for s in elf.segments if s.type == PT_LOAD), 0)


def _capstone_mode(machine: int) -> tuple[int, int] | None:
    try:
        import capstone
    except ImportError:
        logger.info("capstone not installed: no call-destination telfhash")
        return None
    modes = {
        EM_386: (capstone.CS_ARCH_X86, capstone.CS_MODE_32),
        EM_X86_64: (capstone.CS_ARCH_X86, capstone.CS_MODE_64),
        EM_ARM: (capstone.CS_ARCH_ARM, capstone.CS_MODE_ARM),
        EM_MIPS: (capstone.CS_ARCH_MIPS, capstone.CS_MODE_MIPS32 | capstone.CS_MODE_BIG_ENDIAN),
    }
    return modes.get(machine)


def call_destinations(elf: ElfFile, deadline: Deadline | None = None) -> list[str]:
    """Absolute call targets from the entry-point code, as the reference's fallback lists them."""
    machine = elf.header.e_machine
    mode = _capstone_mode(machine)
    region = _code_region(elf)
    if mode is None or region is None:
        return []
    if isinstance(region, ElfSegment):
        start = elf.header.e_entry
        code = elf.segment_data(region)[start - region.vaddr :] if start >= region.vaddr else b""
    else:
        start = _image_base(elf) + region.offset
        code = elf.section_data(region)
    import capstone

    disassembler = capstone.Cs(*mode)
    found: list[str] = []
    seen: set[str] = set()
    for count, (_addr, _size, mnemonic, op_str) in enumerate(
        disassembler.disasm_lite(code[:MAX_CODE_BYTES], start)
    ):
        if deadline is not None and count % 8192 == 0:
            deadline.check()
        target = _call_target(machine, mnemonic, op_str)
        if target is not None and target not in seen:
            seen.add(target)
            found.append(target)
    return found


def _call_target(machine: int, mnemonic: str, op_str: str) -> str | None:
    if machine in (EM_386, EM_X86_64):
        if mnemonic == "call" and op_str.startswith("0x"):
            return op_str[2:]
    elif machine == EM_ARM:
        if mnemonic.startswith("bl") and op_str.startswith("#0x"):
            return op_str[3:]
    elif machine == EM_MIPS and mnemonic == "lw" and op_str.startswith("$t9, "):
        return op_str[8:-5]
    return None


def is_static_stripped(elf: ElfFile) -> bool:
    """No ``PT_INTERP`` and no ``.symtab``: the case the call-destination fallback is for."""
    if any(s.type == PT_INTERP for s in elf.segments):
        return False
    return not any(s.type == SHT_SYMTAB for s in elf.sections)
