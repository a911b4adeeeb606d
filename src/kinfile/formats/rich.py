"""Rich header: pefile-compatible hash and VirusTotal-style ``compiler_product_versions``.

``rich_pe_header_hash`` is pefile's ``get_rich_header_hash()``: the md5 of the XOR-decoded bytes
from offset 0x80 up to (not including) the ``Rich`` marker.

``compiler_product_versions`` follows the strings VirusTotal shows, e.g.::

    "[C++] VS2008 SP1 build 30729 count=1"
    "[---] Unmarked objects count=323"
    "id: 0x105, version: 26706 count=62"

VirusTotal names only the @comp.id values its (old) table knows and prints the raw product id and
build for the rest. Our table knows the Unmarked-objects records and the VS2003/VS2005/VS2008/
VS2010 tool product ids with their released build numbers; everything else uses the ``id:`` form.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from dataclasses import dataclass

logger = logging.getLogger(__name__)

DANS = 0x536E6144
RICH = 0x68636952
MAX_ENTRIES = 256

# product id -> tag, per tool generation (values from the public MSVC ``prodid`` enumeration)
_PRODUCT_TAGS: dict[int, tuple[str, str]] = {
    # VS2003 (7.10)
    0x0F: ("ASM", "VS2003"),
    0x5A: ("LNK", "VS2003"),
    0x5C: ("EXP", "VS2003"),
    0x5D: ("IMP", "VS2003"),
    0x5E: ("RES", "VS2003"),
    0x5F: (" C ", "VS2003"),
    0x60: ("C++", "VS2003"),
    # VS2005 (8.0)
    0x6D: (" C ", "VS2005"),
    0x6E: ("C++", "VS2005"),
    0x78: ("LNK", "VS2005"),
    0x7A: ("EXP", "VS2005"),
    0x7B: ("IMP", "VS2005"),
    0x7C: ("RES", "VS2005"),
    0x7D: ("ASM", "VS2005"),
    # VS2008 (9.0)
    0x83: (" C ", "VS2008"),
    0x84: ("C++", "VS2008"),
    0x91: ("LNK", "VS2008"),
    0x92: ("EXP", "VS2008"),
    0x93: ("IMP", "VS2008"),
    0x94: ("RES", "VS2008"),
    0x95: ("ASM", "VS2008"),
    # VS2010 (10.0)
    0x9A: ("RES", "VS2010"),
    0x9B: ("EXP", "VS2010"),
    0x9C: ("IMP", "VS2010"),
    0x9D: ("LNK", "VS2010"),
    0x9E: ("ASM", "VS2010"),
    0xAA: (" C ", "VS2010"),
    0xAB: ("C++", "VS2010"),
}
# released build numbers per generation -> release label
_BUILDS: dict[str, dict[int, str]] = {
    "VS2003": {3077: "VS2003 (.NET) build 3077", 6030: "VS2003 (.NET) SP1 build 6030"},
    "VS2005": {50727: "VS2005 build 50727"},
    "VS2008": {21022: "VS2008 build 21022", 30729: "VS2008 SP1 build 30729"},
    "VS2010": {30319: "VS2010 build 30319", 40219: "VS2010 SP1 build 40219"},
}


@dataclass
class RichHeader:
    clear_data: bytes
    key: int
    entries: list[tuple[int, int, int]]  # (product id, build, count)
    anomalies: list[str]

    @property
    def hash(self) -> str:
        return hashlib.md5(self.clear_data).hexdigest()


def parse_rich(data: bytes, optional_header_offset: int) -> RichHeader | None:
    """Decode the Rich header exactly like pefile's ``parse_rich_header``."""
    rich_index = data.find(b"Rich", 0x80, optional_header_offset)
    if rich_index == -1:
        return None
    rich_data = data[0x80 : rich_index + 8]
    rich_data = rich_data[: 4 * (len(rich_data) // 4)]
    words = list(struct.unpack(f"<{len(rich_data) // 4}I", rich_data))
    if RICH not in words:
        return None
    pos = words.index(RICH)
    if pos + 1 >= len(words):
        return None
    key = words[pos + 1]
    key_bytes = struct.pack("<I", key)
    raw = rich_data[: rich_data.find(b"Rich")]
    clear = bytes(b ^ key_bytes[i % 4] for i, b in enumerate(raw))
    anomalies: list[str] = []
    if len(words) < 4 or words[0] ^ key != DANS or words[1] != key or words[2] != key or words[3] != key:
        anomalies.append("Rich header is not in Microsoft format")
    entries: list[tuple[int, int, int]] = []
    body = words[4:]
    for i in range(len(body) // 2):
        if body[2 * i] == RICH:
            break
        if len(entries) >= MAX_ENTRIES:
            anomalies.append("Rich header has too many entries")
            break
        comp_id = body[2 * i] ^ key
        count = body[2 * i + 1] ^ key
        entries.append((comp_id >> 16, comp_id & 0xFFFF, count))
    return RichHeader(clear_data=clear, key=key, entries=entries, anomalies=anomalies)


def describe_entry(product_id: int, build: int, count: int) -> str:
    """One ``compiler_product_versions`` string in VirusTotal's format."""
    if product_id == 1 and build == 0:
        return f"[---] Unmarked objects count={count}"
    if product_id == 0 and build == 0:
        return f"[---] Unmarked objects (old) count={count}"
    tag = _PRODUCT_TAGS.get(product_id)
    if tag is not None:
        label = _BUILDS.get(tag[1], {}).get(build)
        if label is not None:
            return f"[{tag[0]}] {label} count={count}"
    return f"id: 0x{product_id:x}, version: {build} count={count}"


def compiler_product_versions(rich: RichHeader) -> list[str]:
    return [describe_entry(p, b, c) for p, b, c in rich.entries]
