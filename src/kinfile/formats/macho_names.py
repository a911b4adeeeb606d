"""Names of Mach-O constants (``<mach-o/loader.h>``, ``<mach/machine.h>``) and ExifTool's labels.

``macho_info`` uses Apple's constant names: CPU types and file types without their ``CPU_TYPE_``
/``MH_`` prefix (``"X86_64"``, ``"EXECUTE"``, as LIEF prints them), load commands with their
``LC_`` prefix, section types and attributes with their ``S_`` prefix.
"""

from __future__ import annotations

CPU_ARCH_ABI64 = 0x01000000

CPU_TYPES = {
    -1: "ANY",
    1: "VAX",
    6: "MC680X0",
    7: "X86",
    0x01000007: "X86_64",
    10: "MC98000",
    11: "HPPA",
    12: "ARM",
    0x0100000C: "ARM64",
    0x0200000C: "ARM64_32",
    13: "MC88000",
    14: "SPARC",
    15: "I860",
    18: "POWERPC",
    0x01000012: "POWERPC64",
}

CPU_SUBTYPES = {
    7: {3: "X86_ALL", 4: "X86_ARCH1"},
    0x01000007: {3: "X86_64_ALL", 4: "X86_ARCH1", 8: "X86_64_H"},
    12: {
        0: "ARM_ALL",
        5: "ARM_V4T",
        6: "ARM_V6",
        7: "ARM_V5TEJ",
        8: "ARM_XSCALE",
        9: "ARM_V7",
        10: "ARM_V7F",
        11: "ARM_V7S",
        12: "ARM_V7K",
        13: "ARM_V8",
        14: "ARM_V6M",
        15: "ARM_V7M",
        16: "ARM_V7EM",
        17: "ARM_V8M",
    },
    0x0100000C: {0: "ARM64_ALL", 1: "ARM64_V8", 2: "ARM64E"},
    0x0200000C: {0: "ARM64_32_ALL", 1: "ARM64_32_V8"},
    18: {0: "POWERPC_ALL", 1: "POWERPC_601", 10: "POWERPC_7400", 11: "POWERPC_7450", 100: "POWERPC_970"},
    0x01000012: {0: "POWERPC_ALL", 100: "POWERPC_970"},
}

FILE_TYPES = {
    1: "OBJECT",
    2: "EXECUTE",
    3: "FVMLIB",
    4: "CORE",
    5: "PRELOAD",
    6: "DYLIB",
    7: "DYLINKER",
    8: "BUNDLE",
    9: "DYLIB_STUB",
    10: "DSYM",
    11: "KEXT_BUNDLE",
    12: "FILESET",
}

HEADER_FLAGS = (
    (0x1, "NOUNDEFS"),
    (0x2, "INCRLINK"),
    (0x4, "DYLDLINK"),
    (0x8, "BINDATLOAD"),
    (0x10, "PREBOUND"),
    (0x20, "SPLIT_SEGS"),
    (0x40, "LAZY_INIT"),
    (0x80, "TWOLEVEL"),
    (0x100, "FORCE_FLAT"),
    (0x200, "NOMULTIDEFS"),
    (0x400, "NOFIXPREBINDING"),
    (0x800, "PREBINDABLE"),
    (0x1000, "ALLMODSBOUND"),
    (0x2000, "SUBSECTIONS_VIA_SYMBOLS"),
    (0x4000, "CANONICAL"),
    (0x8000, "WEAK_DEFINES"),
    (0x10000, "BINDS_TO_WEAK"),
    (0x20000, "ALLOW_STACK_EXECUTION"),
    (0x40000, "ROOT_SAFE"),
    (0x80000, "SETUID_SAFE"),
    (0x100000, "NO_REEXPORTED_DYLIBS"),
    (0x200000, "PIE"),
    (0x400000, "DEAD_STRIPPABLE_DYLIB"),
    (0x800000, "HAS_TLV_DESCRIPTORS"),
    (0x1000000, "NO_HEAP_EXECUTION"),
    (0x2000000, "APP_EXTENSION_SAFE"),
    (0x4000000, "NLIST_OUTOFSYNC_WITH_DYLDINFO"),
    (0x8000000, "SIM_SUPPORT"),
    (0x80000000, "DYLIB_IN_CACHE"),
)

LOAD_COMMANDS = {
    0x1: "SEGMENT",
    0x2: "SYMTAB",
    0x3: "SYMSEG",
    0x4: "THREAD",
    0x5: "UNIXTHREAD",
    0x6: "LOADFVMLIB",
    0x7: "IDFVMLIB",
    0x8: "IDENT",
    0x9: "FVMFILE",
    0xA: "PREPAGE",
    0xB: "DYSYMTAB",
    0xC: "LOAD_DYLIB",
    0xD: "ID_DYLIB",
    0xE: "LOAD_DYLINKER",
    0xF: "ID_DYLINKER",
    0x10: "PREBOUND_DYLIB",
    0x11: "ROUTINES",
    0x12: "SUB_FRAMEWORK",
    0x13: "SUB_UMBRELLA",
    0x14: "SUB_CLIENT",
    0x15: "SUB_LIBRARY",
    0x16: "TWOLEVEL_HINTS",
    0x17: "PREBIND_CKSUM",
    0x80000018: "LOAD_WEAK_DYLIB",
    0x19: "SEGMENT_64",
    0x1A: "ROUTINES_64",
    0x1B: "UUID",
    0x8000001C: "RPATH",
    0x1D: "CODE_SIGNATURE",
    0x1E: "SEGMENT_SPLIT_INFO",
    0x8000001F: "REEXPORT_DYLIB",
    0x20: "LAZY_LOAD_DYLIB",
    0x21: "ENCRYPTION_INFO",
    0x22: "DYLD_INFO",
    0x80000022: "DYLD_INFO_ONLY",
    0x80000023: "LOAD_UPWARD_DYLIB",
    0x24: "VERSION_MIN_MACOSX",
    0x25: "VERSION_MIN_IPHONEOS",
    0x26: "FUNCTION_STARTS",
    0x27: "DYLD_ENVIRONMENT",
    0x80000028: "MAIN",
    0x29: "DATA_IN_CODE",
    0x2A: "SOURCE_VERSION",
    0x2B: "DYLIB_CODE_SIGN_DRS",
    0x2C: "ENCRYPTION_INFO_64",
    0x2D: "LINKER_OPTION",
    0x2E: "LINKER_OPTIMIZATION_HINT",
    0x2F: "VERSION_MIN_TVOS",
    0x30: "VERSION_MIN_WATCHOS",
    0x31: "NOTE",
    0x32: "BUILD_VERSION",
    0x80000033: "DYLD_EXPORTS_TRIE",
    0x80000034: "DYLD_CHAINED_FIXUPS",
    0x80000035: "FILESET_ENTRY",
    0x36: "ATOM_INFO",
}

SECTION_TYPES = {
    0x0: "S_REGULAR",
    0x1: "S_ZEROFILL",
    0x2: "S_CSTRING_LITERALS",
    0x3: "S_4BYTE_LITERALS",
    0x4: "S_8BYTE_LITERALS",
    0x5: "S_LITERAL_POINTERS",
    0x6: "S_NON_LAZY_SYMBOL_POINTERS",
    0x7: "S_LAZY_SYMBOL_POINTERS",
    0x8: "S_SYMBOL_STUBS",
    0x9: "S_MOD_INIT_FUNC_POINTERS",
    0xA: "S_MOD_TERM_FUNC_POINTERS",
    0xB: "S_COALESCED",
    0xC: "S_GB_ZEROFILL",
    0xD: "S_INTERPOSING",
    0xE: "S_16BYTE_LITERALS",
    0xF: "S_DTRACE_DOF",
    0x10: "S_LAZY_DYLIB_SYMBOL_POINTERS",
    0x11: "S_THREAD_LOCAL_REGULAR",
    0x12: "S_THREAD_LOCAL_ZEROFILL",
    0x13: "S_THREAD_LOCAL_VARIABLES",
    0x14: "S_THREAD_LOCAL_VARIABLE_POINTERS",
    0x15: "S_THREAD_LOCAL_INIT_FUNCTION_POINTERS",
    0x16: "S_INIT_FUNC_OFFSETS",
}

SECTION_ATTRIBUTES = (
    (0x80000000, "S_ATTR_PURE_INSTRUCTIONS"),
    (0x40000000, "S_ATTR_NO_TOC"),
    (0x20000000, "S_ATTR_STRIP_STATIC_SYMS"),
    (0x10000000, "S_ATTR_NO_DEAD_STRIP"),
    (0x08000000, "S_ATTR_LIVE_SUPPORT"),
    (0x04000000, "S_ATTR_SELF_MODIFYING_CODE"),
    (0x02000000, "S_ATTR_DEBUG"),
    (0x400, "S_ATTR_SOME_INSTRUCTIONS"),
    (0x200, "S_ATTR_EXT_RELOC"),
    (0x100, "S_ATTR_LOC_RELOC"),
)

PLATFORMS = {
    1: "MACOS",
    2: "IOS",
    3: "TVOS",
    4: "WATCHOS",
    5: "BRIDGEOS",
    6: "MACCATALYST",
    7: "IOSSIMULATOR",
    8: "TVOSSIMULATOR",
    9: "WATCHOSSIMULATOR",
    10: "DRIVERKIT",
    11: "VISIONOS",
    12: "VISIONOSSIMULATOR",
}
VERSION_MIN_PLATFORMS = {0x24: "MACOS", 0x25: "IOS", 0x2F: "TVOS", 0x30: "WATCHOS"}

# ExifTool 12.57 (Image::ExifTool::EXE::MachO) labels, for the ``exiftool`` attribute.
EXIF_CPU_TYPES = {
    -1: "Any",
    1: "VAX",
    2: "ROMP",
    4: "NS32032",
    5: "NS32332",
    6: "MC680x0",
    7: "x86",
    8: "MIPS",
    9: "NS32532",
    10: "MC98000",
    11: "HPPA",
    12: "ARM",
    13: "MC88000",
    14: "SPARC",
    15: "i860 big endian",
    16: "i860 little endian",
    17: "RS6000",
    18: "PowerPC",
    255: "VEO",
}
EXIF_CPU_SUBTYPES = {
    (6, 1): "MC680x0 (all)",
    (7, 3): "i386 (all)",
    (7, 4): "i486",
    (7, 5): "i586",
    (8, 0): "MIPS (all)",
    (11, 0): "HPPA (all)",
    (12, 0): "ARM (all)",
    (12, 1): "ARM A500 ARCH",
    (12, 2): "ARM A500",
    (12, 3): "ARM A440",
    (12, 4): "ARM M4",
    (12, 5): "ARM A680/V4T",
    (12, 6): "ARM V6",
    (12, 7): "ARM V5TEJ",
    (12, 8): "ARM XSCALE",
    (12, 9): "ARM V7",
    (14, 0): "SPARC (all)",
    (18, 0): "PowerPC (all)",
    (18, 100): "PowerPC 970",
}
EXIF_OBJECT_TYPES = {
    1: "Relocatable object",
    2: "Demand paged executable",
    3: "Fixed VM shared library",
    4: "Core",
    5: "Preloaded executable",
    6: "Dynamically bound shared library",
    7: "Dynamic link editor",
    8: "Dynamically bound bundle",
    9: "Shared library stub for static linking",
    10: "Debug information",
    11: "x86_64 kexts",
}
EXIF_FILE_TYPES = {
    1: ("object file", "o"),
    6: ("dynamic link library", "dylib"),
    8: ("dynamic bound bundle", "dylib"),
    9: ("dynamic link library stub", "dylib"),
}
EXIF_FLAGS = (
    "No undefs",
    "Incrementa link",
    "Dyld link",
    "Bind at load",
    "Prebound",
    "Split segs",
    "Lazy init",
    "Two level",
    "Force flat",
    "No multi defs",
    "No fix prebinding",
    "Prebindable",
    "All mods bound",
    "Subsections via symbols",
    "Canonical",
    "Weak defines",
    "Binds to weak",
    "Allow stack execution",
    "Dead strippable dylib",
    "Root safe",
    "No reexported dylibs",
    "Random address",
)


def cpu_type_name(cpu_type: int) -> str:
    return CPU_TYPES.get(cpu_type, str(cpu_type))


def cpu_subtype_name(cpu_type: int, cpu_subtype: int) -> str:
    low = cpu_subtype & 0x00FFFFFF
    return CPU_SUBTYPES.get(cpu_type, {}).get(low, str(low))


def file_type_name(file_type: int) -> str:
    return FILE_TYPES.get(file_type, str(file_type))


def header_flag_names(flags: int) -> list[str]:
    return [name for bit, name in HEADER_FLAGS if flags & bit]


def load_command_name(cmd: int) -> str:
    name = LOAD_COMMANDS.get(cmd)
    return f"LC_{name}" if name else f"{cmd:#x}"


def section_type_name(flags: int) -> str:
    return SECTION_TYPES.get(flags & 0xFF, f"{flags & 0xFF:#x}")


def section_attribute_names(flags: int) -> list[str]:
    return [name for bit, name in SECTION_ATTRIBUTES if flags & bit]


def version_string(value: int) -> str:
    """``xxxx.yy.zz`` nibble-packed version (``0x000A0900`` → ``"10.9.0"``)."""
    return f"{value >> 16}.{(value >> 8) & 0xFF}.{value & 0xFF}"


def exif_cpu_type(cpu_type: int) -> str:
    base = cpu_type & ~CPU_ARCH_ABI64
    if cpu_type & CPU_ARCH_ABI64:
        return f"{EXIF_CPU_TYPES[base]} 64-bit" if base in EXIF_CPU_TYPES else f"Unknown ({cpu_type})"
    return EXIF_CPU_TYPES.get(cpu_type, f"Unknown ({cpu_type})")


def exif_cpu_subtype(cpu_type: int, cpu_subtype: int) -> str:
    base = cpu_type & ~CPU_ARCH_ABI64
    label = EXIF_CPU_SUBTYPES.get((base, cpu_subtype & 0x7FFFFFFF))
    if label is None:
        return f"Unknown ({cpu_type} {cpu_subtype})"
    return f"{label} 64-bit" if cpu_type & CPU_ARCH_ABI64 else label


def exif_flags(flags: int) -> str:
    """ExifTool's ``ObjectFlags`` (a BITMASK print: unnamed bits as ``[n]``)."""
    names = [EXIF_FLAGS[i] if i < len(EXIF_FLAGS) else f"[{i}]" for i in range(32) if flags >> i & 1]
    return ", ".join(names)
