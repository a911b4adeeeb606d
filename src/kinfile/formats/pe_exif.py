"""``exiftool``: ExifTool's EXE tag names and renderings, computed from our own parse.

Values are strings as in VirusTotal's ``exiftool`` attribute (numbers too: ``"CodeSize": "21504"``).
``TimeStamp`` is rendered in UTC (``+00:00``); ExifTool uses the local zone of the machine.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from kinfile.formats.pe_headers import PeHeaders
from kinfile.formats.pe_version import VersionInfo, version_string

logger = logging.getLogger(__name__)

MACHINE_TYPES = {
    0x0: "Unknown",
    0x14C: "Intel 386 or later, and compatibles",
    0x14D: "Intel i860",
    0x162: "MIPS R3000",
    0x166: "MIPS little endian (R4000)",
    0x168: "MIPS R10000",
    0x169: "MIPS little endian WCI v2",
    0x183: "Alpha AXP (old)",
    0x184: "Alpha AXP",
    0x1A2: "Hitachi SH3",
    0x1A3: "Hitachi SH3 DSP",
    0x1A6: "Hitachi SH4",
    0x1A8: "Hitachi SH5",
    0x1C0: "ARM little endian",
    0x1C2: "Thumb",
    0x1C4: "Thumb 2 little endian",
    0x1D3: "Matsushita AM33",
    0x1F0: "PowerPC little endian",
    0x1F1: "PowerPC with floating point support",
    0x200: "Intel IA64",
    0x266: "MIPS16",
    0x268: "Motorola 68000 series",
    0x284: "Alpha AXP 64-bit",
    0x366: "MIPS with FPU",
    0x466: "MIPS16 with FPU",
    0xEBC: "EFI Byte Code",
    0x8664: "AMD AMD64",
    0x9041: "Mitsubishi M32R little endian",
    0xAA64: "ARM64 little endian",
    0xC0EE: "clr pure MSIL",
}
SUBSYSTEMS = {
    0: "Unknown",
    1: "Native",
    2: "Windows GUI",
    3: "Windows command line",
    5: "OS/2 command line",
    7: "POSIX command line",
    9: "Windows CE GUI",
    10: "EFI application",
    11: "EFI boot service",
    12: "EFI runtime driver",
    13: "EFI ROM",
    14: "XBOX",
    16: "Windows boot application",
}
IMAGE_CHARACTERISTICS = (
    (0x0001, "No relocs"),
    (0x0002, "Executable"),
    (0x0004, "No line numbers"),
    (0x0008, "No symbols"),
    (0x0010, "Aggressive working-set trim"),
    (0x0020, "Large address aware"),
    (0x0080, "Bytes reversed lo"),
    (0x0100, "32-bit"),
    (0x0200, "No debug"),
    (0x0400, "Removable run from swap"),
    (0x0800, "Net run from swap"),
    (0x1000, "System file"),
    (0x2000, "DLL"),
    (0x4000, "Uniprocessor only"),
    (0x8000, "Bytes reversed hi"),
)
FILE_OS = {
    0x1: "Win16",
    0x2: "PM-16",
    0x3: "PM-32",
    0x4: "Win32",
    0x10000: "DOS",
    0x20000: "OS/2 16-bit",
    0x30000: "OS/2 32-bit",
    0x40000: "Windows NT",
    0x10001: "Windows 16-bit",
    0x10004: "Windows 32-bit",
    0x20002: "OS/2 16-bit PM-16",
    0x30003: "OS/2 32-bit PM-32",
    0x40004: "Windows NT 32-bit",
}
OBJECT_FILE_TYPES = {
    0: "Unknown",
    1: "Executable application",
    2: "Dynamic link library",
    3: "Driver",
    4: "Font",
    5: "VxD",
    7: "Static library",
}
LANGUAGE_CODES = {
    "0000": "Neutral",
    "0401": "Arabic",
    "0404": "Chinese (Traditional)",
    "0405": "Czech",
    "0406": "Danish",
    "0407": "German",
    "0408": "Greek",
    "0409": "English (U.S.)",
    "040A": "Spanish (Castilian)",
    "040B": "Finnish",
    "040C": "French",
    "040D": "Hebrew",
    "040E": "Hungarian",
    "040F": "Icelandic",
    "0410": "Italian",
    "0411": "Japanese",
    "0412": "Korean",
    "0413": "Dutch",
    "0414": "Norwegian (Bokml)",
    "0415": "Polish",
    "0416": "Portuguese (Brazilian)",
    "0418": "Romanian",
    "0419": "Russian",
    "041A": "Croato-Serbian (Latin)",
    "041B": "Slovak",
    "041D": "Swedish",
    "041E": "Thai",
    "041F": "Turkish",
    "0421": "Indonesian",
    "0422": "Ukrainian",
    "0804": "Chinese (Simplified)",
    "0807": "German (Swiss)",
    "0809": "English (British)",
    "080A": "Spanish (Mexican)",
    "080C": "French (Belgian)",
    "0816": "Portuguese",
    "0C0A": "Spanish (Modern)",
    "0C0C": "French (Canadian)",
    "7F00": "Invariant",
}
CHARACTER_SETS = {
    "0000": "ASCII",
    "03A4": "Windows, Japan (Shift - JIS X-0208)",
    "03A8": "Windows, Chinese (Simplified)",
    "03B5": "Windows, Korea (Shift - KSC 5601)",
    "03B6": "Windows, Taiwan (Big5)",
    "04B0": "Unicode",
    "04E2": "Windows, Latin2 (Eastern European)",
    "04E3": "Windows, Cyrillic",
    "04E4": "Windows, Latin1",
    "04E5": "Windows, Greek",
    "04E6": "Windows, Turkish",
    "04E7": "Windows, Hebrew",
    "04E8": "Windows, Arabic",
}
# version-info string key -> ExifTool tag name
VERSION_TAGS = {
    "Comments": "Comments",
    "CompanyName": "CompanyName",
    "FileDescription": "FileDescription",
    "FileVersion": "FileVersion",
    "InternalName": "InternalName",
    "LegalCopyright": "LegalCopyright",
    "LegalTrademarks": "LegalTrademarks",
    "OriginalFilename": "OriginalFileName",
    "PrivateBuild": "PrivateBuild",
    "ProductName": "ProductName",
    "ProductVersion": "ProductVersion",
    "SpecialBuild": "SpecialBuild",
}


def file_type(hdr: PeHeaders) -> tuple[str, str]:
    """ExifTool ``FileType`` and ``FileTypeExtension`` (``Win32 EXE``/``exe``, ``Win64 DLL``/``dll``)."""
    bits = "Win64" if hdr.is_64 else "Win32"
    return (f"{bits} DLL", "dll") if hdr.is_dll else (f"{bits} EXE", "exe")


def exif_timestamp(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y:%m:%d %H:%M:%S+00:00")


def build_exiftool(hdr: PeHeaders, version: VersionInfo | None) -> dict[str, Any]:
    o = hdr.opt
    ftype, ext = file_type(hdr)
    chars = ", ".join(name for bit, name in IMAGE_CHARACTERISTICS if hdr.characteristics & bit)
    out: dict[str, Any] = {
        "MIMEType": "application/octet-stream",
        "FileType": ftype,
        "FileTypeExtension": ext,
        "MachineType": MACHINE_TYPES.get(hdr.machine, f"Unknown (0x{hdr.machine:x})"),
        "TimeStamp": exif_timestamp(hdr.timestamp),
        "ImageFileCharacteristics": chars or "(none)",
        "PEType": "PE32+" if hdr.is_64 else "PE32",
        "LinkerVersion": f"{o['lmajor']}.{o['lminor']}",
        "CodeSize": str(o["size_code"]),
        "InitializedDataSize": str(o["size_init"]),
        "UninitializedDataSize": str(o["size_uninit"]),
        "EntryPoint": f"0x{o['entry']:04x}",
        "OSVersion": f"{o['os_major']}.{o['os_minor']}",
        "ImageVersion": f"{o['img_major']}.{o['img_minor']}",
        "SubsystemVersion": f"{o['sub_major']}.{o['sub_minor']}",
        "Subsystem": SUBSYSTEMS.get(o["subsystem"], f"Unknown ({o['subsystem']})"),
    }
    if version is None:
        return out
    f = version.fixed
    if f:
        out["FileVersionNumber"] = version_string(f["FileVersionMS"], f["FileVersionLS"])
        out["ProductVersionNumber"] = version_string(f["ProductVersionMS"], f["ProductVersionLS"])
        out["FileFlagsMask"] = f"0x{f['FileFlagsMask']:04x}"
        out["FileFlags"] = _file_flags(f["FileFlags"] & f["FileFlagsMask"])
        out["FileOS"] = FILE_OS.get(f["FileOS"], f"Unknown (0x{f['FileOS']:x})")
        out["ObjectFileType"] = OBJECT_FILE_TYPES.get(f["FileType"], f"Unknown ({f['FileType']})")
        out["FileSubtype"] = str(f["FileSubtype"])
    if version.string_table_keys:
        key = version.string_table_keys[0].upper()
        lang, charset = key[:4], key[4:8]
        out["LanguageCode"] = LANGUAGE_CODES.get(lang, f"Unknown ({lang})")
        out["CharacterSet"] = CHARACTER_SETS.get(charset, f"Unknown ({charset})")
    for key, value in version.strings.items():
        tag = VERSION_TAGS.get(key)
        if tag and value:
            out[tag] = value
    return out


def _file_flags(flags: int) -> str:
    names = [
        n
        for bit, n in (
            (1, "Debug"),
            (2, "Pre-release"),
            (4, "Patched"),
            (8, "Private build"),
            (0x10, "Info inferred"),
            (0x20, "Special build"),
        )
        if flags & bit
    ]
    return ", ".join(names) if names else "(none)"
