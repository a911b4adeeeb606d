"""Packer / installer identification for ``packers`` ({"kinfile": "UPX"}) and tags.

Three kinds of evidence, cheapest first: section names, entry-point byte signatures (``None`` is
a wildcard byte) and markers at the start of the overlay. Every rule is a plain table entry.
"""

from __future__ import annotations

import logging

from kinfile.formats.pe_headers import PeHeaders

logger = logging.getLogger(__name__)

SECTION_RULES: tuple[tuple[str, tuple[bytes, ...]], ...] = (
    ("UPX", (b"UPX0", b"UPX1", b"UPX2", b"UPX!")),
    ("ASPack", (b".aspack", b".adata")),
    ("Petite", (b".petite",)),
    ("MPRESS", (b".MPRESS1", b".MPRESS2")),
    ("PECompact", (b"PEC2", b"PEC2TO", b"PEC2MO", b"pec1", b"pec2", b"PECompact2")),
    ("Themida", (b".themida", b".winlice", b"Themida")),
    ("VMProtect", (b".vmp0", b".vmp1", b".vmp2")),
    ("Enigma", (b".enigma1", b".enigma2")),
    ("WWPack32", (b".WWP32",)),
    ("Yoda's Crypter", (b"yC",)),
    ("NsPack", (b".nsp0", b".nsp1", b"nsp0", b"nsp1")),
    ("kkrunchy", (b"kkrunchy",)),
)
SECTION_PREFIX_RULES: tuple[tuple[str, bytes], ...] = (("MEW", b"MEW"),)

EP_RULES: tuple[tuple[str, tuple[int | None, ...]], ...] = (
    ("FSG", (0x87, 0x25, None, None, None, None, 0x61, 0x94, 0x55, 0xA4, 0xB6, 0x80, 0xFF, 0x13)),
    ("PESpin", (0xEB, 0x01, 0x68, 0x60, 0xE8, 0x00, 0x00, 0x00, 0x00, 0x8B, 0x1C, 0x24, 0x83, 0xC3)),
    ("Upack", (0xBE, None, None, None, None, 0xAD, 0x50, 0xFF, 0x76, 0x34, 0xEB, 0x7C, 0x48)),
    ("MEW", (0xE9, None, None, 0xFF, 0xFF, 0x0C, None, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00)),
    ("UPX", (0x60, 0xBE, None, None, None, None, 0x8D, 0xBE, None, None, None, None, 0x57)),
)

OVERLAY_RULES: tuple[tuple[str, bytes, int], ...] = (
    # (name, marker, search window at the start of the overlay)
    ("NSIS", b"\xef\xbe\xad\xdeNullsoftInst", 64),
    ("AutoIt", b"AU3!EA0", 64),
    ("Inno Setup", b"Inno Setup Setup Data", 64),
    ("Smart Install Maker", b"Smart Install Maker", 64),
)
PYINSTALLER_COOKIE = b"MEI\x0c\x0b\x0a\x0b\x0e"


def _match(sig: tuple[int | None, ...], code: bytes) -> bool:
    return len(code) >= len(sig) and all(b is None or b == code[i] for i, b in enumerate(sig))


def detect_packers(hdr: PeHeaders, overlay_offset: int | None) -> list[str]:
    """Names of packers/installers detected, most specific first, without duplicates."""
    found: list[str] = []

    def add(name: str) -> None:
        if name not in found:
            found.append(name)

    names = {s.raw_name for s in hdr.sections_in_file_order}
    for packer, section_names in SECTION_RULES:
        if names.intersection(section_names):
            add(packer)
    for packer, prefix in SECTION_PREFIX_RULES:
        if any(n.startswith(prefix) for n in names):
            add(packer)
    if b"UPX!" in hdr.data[: min(len(hdr.data), 0x400)]:
        add("UPX")
    ep_off = hdr.rva_to_offset(hdr.opt["entry"])
    if ep_off is not None and ep_off >= 0:
        code = hdr.data[ep_off : ep_off + 32]
        for packer, sig in EP_RULES:
            if _match(sig, code):
                add(packer)
    if overlay_offset is not None:
        head = hdr.data[overlay_offset : overlay_offset + 256]
        for packer, marker, window in OVERLAY_RULES:
            if marker in head[: window + len(marker)]:
                add(packer)
        if PYINSTALLER_COOKIE in hdr.data[-4096:]:
            add("PyInstaller")
    # a crypter wrapping UPX is the more specific finding: keep it first
    if "Yoda's Crypter" in found and found[0] == "UPX":
        found.remove("UPX")
        found.append("UPX")
    return found
