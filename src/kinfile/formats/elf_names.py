"""readelf-style names for ELF header fields, section and segment types and flags.

VirusTotal's ``elf_info`` shows the strings GNU ``readelf`` prints (``"2's complement, little
endian"``, ``"Advanced Micro Devices X86-64"``, ``"0x5000400, Version5 EABI, hard-float ABI"``);
these tables follow binutils 2.40 for the values seen in practice and fall back to readelf's own
``LOOS+0x…`` / ``<unknown>: …`` forms for the rest.
"""

from __future__ import annotations

EM_MIPS, EM_PPC64, EM_ARM, EM_X86_64, EM_AARCH64, EM_RISCV, EM_386 = 8, 21, 40, 62, 183, 243, 3

MACHINES = {
    0: "None",
    1: "WE32100",
    2: "Sparc",
    3: "Intel 80386",
    4: "MC68000",
    5: "MC88000",
    6: "Intel MCU",
    7: "Intel 80860",
    8: "MIPS R3000",
    9: "IBM System/370",
    10: "MIPS R4000 big-endian",
    15: "HPPA",
    18: "Sparc v8+",
    19: "Intel 80960",
    20: "PowerPC",
    21: "PowerPC64",
    22: "IBM S/390",
    23: "SPU",
    36: "Renesas V850 (using RH850 ABI)",
    39: "MCORE",
    40: "ARM",
    41: "Digital Alpha (old)",
    42: "Renesas / SuperH SH",
    43: "Sparc v9",
    44: "Siemens Tricore",
    45: "ARC",
    46: "Renesas H8/300",
    47: "Renesas H8/300H",
    48: "Renesas H8S",
    49: "Renesas H8/500",
    50: "Intel IA-64",
    51: "Stanford MIPS-X",
    52: "Motorola Coldfire",
    53: "Motorola MC68HC12",
    62: "Advanced Micro Devices X86-64",
    75: "Digital VAX",
    83: "Atmel AVR 8-bit microcontroller",
    87: "NEC v850",
    88: "Renesas M32R (formerly Mitsubishi M32r)",
    92: "OpenRISC 1000",
    93: "ARCompact",
    94: "Tensilica Xtensa Processor",
    105: "Texas Instruments msp430 microcontroller",
    106: "Analog Devices Blackfin",
    113: "Altera Nios II",
    164: "QUALCOMM Hexagon",
    183: "AArch64",
    188: "Tilera TILEPro",
    191: "Tilera TILE-Gx",
    195: "ARCv2",
    220: "Zilog Z80",
    243: "RISC-V",
    247: "Linux BPF",
    258: "LoongArch",
    0x9026: "Alpha",
}

OS_ABIS = {
    0: "UNIX - System V",
    1: "UNIX - HP-UX",
    2: "UNIX - NetBSD",
    3: "UNIX - GNU",
    6: "UNIX - Solaris",
    7: "UNIX - AIX",
    8: "UNIX - IRIX",
    9: "UNIX - FreeBSD",
    10: "UNIX - TRU64",
    11: "Novell - Modesto",
    12: "UNIX - OpenBSD",
    13: "VMS - OpenVMS",
    14: "HP - Non-Stop Kernel",
    15: "AROS",
    16: "FenixOS",
    17: "Nuxi CloudABI",
    18: "Stratus Technologies OpenVOS",
    97: "ARM",
    255: "Standalone App",
}

FILE_TYPES = {
    0: "NONE (None)",
    1: "REL (Relocatable file)",
    2: "EXEC (Executable file)",
    3: "DYN (Shared object file)",
    4: "CORE (Core file)",
}
PIE_TYPE = "DYN (Position-Independent Executable file)"

SECTION_TYPES = {
    0: "NULL",
    1: "PROGBITS",
    2: "SYMTAB",
    3: "STRTAB",
    4: "RELA",
    5: "HASH",
    6: "DYNAMIC",
    7: "NOTE",
    8: "NOBITS",
    9: "REL",
    10: "SHLIB",
    11: "DYNSYM",
    14: "INIT_ARRAY",
    15: "FINI_ARRAY",
    16: "PREINIT_ARRAY",
    17: "GROUP",
    18: "SYMTAB SECTION INDICES",
    19: "RELR",
    0x6FFFFFF5: "GNU_ATTRIBUTES",
    0x6FFFFFF6: "GNU_HASH",
    0x6FFFFFF7: "GNU_LIBLIST",
    0x6FFFFFFD: "VERDEF",
    0x6FFFFFFE: "VERNEED",
    0x6FFFFFFF: "VERSYM",
}
PROC_SECTION_TYPES = {
    EM_ARM: {0x70000001: "ARM_EXIDX", 0x70000002: "ARM_PREEMPTMAP", 0x70000003: "ARM_ATTRIBUTES"},
    EM_AARCH64: {0x70000003: "AARCH64_ATTRIBUTES"},
    EM_MIPS: {
        0x70000006: "MIPS_REGINFO",
        0x7000000D: "MIPS_OPTIONS",
        0x7000001E: "MIPS_DWARF",
        0x7000002A: "MIPS_ABIFLAGS",
        0x70000029: "MIPS_XHASH",
    },
    EM_RISCV: {0x70000003: "RISCV_ATTRIBUTES"},
    EM_X86_64: {0x70000001: "X86_64_UNWIND"},
}

SEGMENT_TYPES = {
    0: "NULL",
    1: "LOAD",
    2: "DYNAMIC",
    3: "INTERP",
    4: "NOTE",
    5: "SHLIB",
    6: "PHDR",
    7: "TLS",
    0x6474E550: "GNU_EH_FRAME",
    0x6474E551: "GNU_STACK",
    0x6474E552: "GNU_RELRO",
    0x6474E553: "GNU_PROPERTY",
    0x6474E554: "GNU_SFRAME",
    0x65A3DBE6: "OPENBSD_RANDOMIZE",
    0x65A3DBE7: "OPENBSD_WXNEEDED",
    0x65A41BE6: "OPENBSD_BOOTDATA",
}
PROC_SEGMENT_TYPES = {
    EM_ARM: {0x70000001: "EXIDX"},
    EM_AARCH64: {0x70000002: "AARCH64_MEMTAG_MTE"},
    EM_MIPS: {0x70000000: "REGINFO", 0x70000001: "RTPROC", 0x70000002: "OPTIONS", 0x70000003: "ABIFLAGS"},
    EM_RISCV: {0x70000003: "RISCV_ATTRIBUTE"},
}

SECTION_FLAG_LETTERS = (
    (0x1, "W"),
    (0x2, "A"),
    (0x4, "X"),
    (0x10, "M"),
    (0x20, "S"),
    (0x40, "I"),
    (0x80, "L"),
    (0x100, "O"),
    (0x200, "G"),
    (0x400, "T"),
    (0x800, "C"),
    (0x200000, "R"),
    (0x80000000, "E"),
)


def _ranged(value: int, known: dict[int, str]) -> str:
    if value in known:
        return known[value]
    if 0x70000000 <= value <= 0x7FFFFFFF:
        return f"LOPROC+{value - 0x70000000:#x}"
    if 0x60000000 <= value <= 0x6FFFFFFF:
        return f"LOOS+{value - 0x60000000:#x}"
    if 0x80000000 <= value <= 0xFFFFFFFF:
        return f"LOUSER+{value - 0x80000000:#x}"
    return f"<unknown>: {value:x}"


def machine_name(machine: int) -> str:
    return MACHINES.get(machine, f"<unknown>: {machine:#x}")


def os_abi_name(os_abi: int) -> str:
    return OS_ABIS.get(os_abi, f"<unknown: {os_abi:x}>")


def file_type_name(e_type: int, pie: bool = False) -> str:
    if e_type == 3 and pie:
        return PIE_TYPE
    if e_type in FILE_TYPES:
        return FILE_TYPES[e_type]
    if 0xFF00 <= e_type <= 0xFFFF:
        return f"Processor Specific: ({e_type:x})"
    if 0xFE00 <= e_type <= 0xFEFF:
        return f"OS Specific: ({e_type:x})"
    return f"<unknown>: {e_type:x}"


def section_type_name(sh_type: int, machine: int) -> str:
    return _ranged(sh_type, {**SECTION_TYPES, **PROC_SECTION_TYPES.get(machine, {})})


def segment_type_name(p_type: int, machine: int) -> str:
    return _ranged(p_type, {**SEGMENT_TYPES, **PROC_SEGMENT_TYPES.get(machine, {})})


def section_flags(flags: int) -> str:
    """readelf's short flag letters (``"WA"``, ``"AX"``, ``"MS"``); ``x`` for unknown bits."""
    letters = []
    rest = flags
    for bit, letter in SECTION_FLAG_LETTERS:
        if flags & bit:
            letters.append(letter)
            rest &= ~bit
    if rest & 0x0FF00000:
        letters.append("o")
    if rest & 0x70000000:
        letters.append("p")
    if rest & ~0x7FF00000 & 0xFFFFFFFF:
        letters.append("x")
    return "".join(letters)


def _arm_flags(flags: int) -> list[str]:
    out = []
    eabi = flags & 0xFF000000
    flags &= 0x00FFFFFF
    if flags & 0x1:
        out.append("relocatable executable")
        flags &= ~0x1
    if flags & 0x20:
        out.append("position independent")
        flags &= ~0x20
    if eabi in (0x04000000, 0x05000000):
        out.append("Version4 EABI" if eabi == 0x04000000 else "Version5 EABI")
        named = {0x00800000: "BE8", 0x00400000: "LE8"}
        if eabi == 0x05000000:
            named.update({0x200: "soft-float ABI", 0x400: "hard-float ABI"})
        for bit in sorted(named):
            if flags & bit:
                out.append(named[bit])
                flags &= ~bit
    elif eabi == 0:
        out.append("GNU EABI")
    else:
        out.append("<unrecognized EABI>")
        flags = 0
    if flags:
        out.append("<unknown>")
    return out


_MIPS_BITS = (
    (0x1, "noreorder"),
    (0x2, "pic"),
    (0x4, "cpic"),
    (0x10, "ugen_reserved"),
    (0x20, "abi2"),
    (0x80, "odk first"),
    (0x100, "32bitmode"),
    (0x400, "nan2008"),
    (0x200, "fp64"),
)
_MIPS_ABI = {0x1000: "o32", 0x2000: "o64", 0x3000: "eabi32", 0x4000: "eabi64"}
_MIPS_ASE = ((0x08000000, "mdmx"), (0x04000000, "mips16"), (0x02000000, "micromips"))
_MIPS_ARCH = {
    0x0: "mips1",
    0x10000000: "mips2",
    0x20000000: "mips3",
    0x30000000: "mips4",
    0x40000000: "mips5",
    0x50000000: "mips32",
    0x60000000: "mips64",
    0x70000000: "mips32r2",
    0x80000000: "mips64r2",
    0x90000000: "mips32r6",
    0xA0000000: "mips64r6",
}


def _mips_flags(flags: int) -> list[str]:
    out = [name for bit, name in _MIPS_BITS if flags & bit]
    if flags & 0x0000F000:
        out.append(_MIPS_ABI.get(flags & 0x0000F000, "unknown ABI"))
    out.extend(name for bit, name in _MIPS_ASE if flags & bit)
    out.append(_MIPS_ARCH.get(flags & 0xF0000000, "unknown ISA"))
    return out


def _riscv_flags(flags: int) -> list[str]:
    out = []
    if flags & 0x1:
        out.append("RVC")
    if flags & 0x8:
        out.append("RVE")
    if flags & 0x10:
        out.append("TSO")
    out.append(
        {0: "soft-float ABI", 2: "single-float ABI", 4: "double-float ABI", 6: "quad-float ABI"}[flags & 0x6]
    )
    return out


def header_flags(flags: int, machine: int) -> str:
    """readelf's ``Flags:`` line: hex value plus the decoded names for common architectures."""
    names: list[str] = []
    if flags:
        if machine == EM_ARM:
            names = _arm_flags(flags)
        elif machine in (EM_MIPS, 10):
            names = _mips_flags(flags)
        elif machine == EM_RISCV:
            names = _riscv_flags(flags)
        elif machine == EM_PPC64 and flags & 0x3:
            names = [f"abiv{flags & 0x3}"]
    return ", ".join([f"{flags:#x}", *names])
