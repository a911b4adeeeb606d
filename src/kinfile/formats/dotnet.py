"""Minimal CLR metadata reader for ``dot_net_assembly`` (ECMA-335 §II.24).

Reads the COR20 header, the metadata root, the stream headers and the ``#~``/``#-`` table stream
far enough to decode Module, TypeDef, Assembly, AssemblyRef and ManifestResource rows. Row sizes
for every table are derived from the heap-size flags and row counts, so no table is parsed that
we do not need. All offsets are bounds-checked; row counts are capped.
"""

from __future__ import annotations

import logging
import struct
from typing import Any

from kinfile.formats.common import NO_DEADLINE, Deadline, clean_text
from kinfile.formats.pe_headers import CLR_DIR, PeHeaders
from kinfile.formats.pe_stats import blob_summary

logger = logging.getLogger(__name__)

MAX_ROWS_READ = 256 * 64
MAX_LIST = 256

# coded index kinds: (tag bits, tables)
_CODED = {
    "TypeDefOrRef": (2, (0x02, 0x01, 0x1B)),
    "HasConstant": (2, (0x04, 0x08, 0x17)),
    "HasCustomAttribute": (
        5,
        (
            0x06,
            0x04,
            0x01,
            0x02,
            0x08,
            0x09,
            0x0A,
            0x00,
            0x0E,
            0x17,
            0x14,
            0x11,
            0x1A,
            0x1B,
            0x20,
            0x23,
            0x26,
            0x27,
            0x28,
            0x2A,
            0x2C,
            0x2B,
        ),
    ),
    "HasFieldMarshal": (1, (0x04, 0x08)),
    "HasDeclSecurity": (2, (0x02, 0x06, 0x20)),
    "MemberRefParent": (3, (0x02, 0x01, 0x1A, 0x06, 0x1B)),
    "HasSemantics": (1, (0x14, 0x17)),
    "MethodDefOrRef": (1, (0x06, 0x0A)),
    "MemberForwarded": (1, (0x04, 0x06)),
    "Implementation": (2, (0x26, 0x23, 0x27)),
    "CustomAttributeType": (3, (0x06, 0x0A)),
    "ResolutionScope": (2, (0x00, 0x1A, 0x23, 0x01)),
    "TypeOrMethodDef": (1, (0x02, 0x06)),
}
# column kinds: integers are fixed byte widths; "S" string, "G" guid, "B" blob heap indexes;
# ("T", n) simple index into table n; other strings name a coded index.
_SCHEMA: dict[int, tuple[Any, ...]] = {
    0x00: (2, "S", "G", "G", "G"),
    0x01: ("ResolutionScope", "S", "S"),
    0x02: (4, "S", "S", "TypeDefOrRef", ("T", 0x04), ("T", 0x06)),
    0x03: (("T", 0x04),),
    0x04: (2, "S", "B"),
    0x05: (("T", 0x06),),
    0x06: (4, 2, 2, "S", "B", ("T", 0x08)),
    0x07: (("T", 0x08),),
    0x08: (2, 2, "S"),
    0x09: (("T", 0x02), "TypeDefOrRef"),
    0x0A: ("MemberRefParent", "S", "B"),
    0x0B: (2, "HasConstant", "B"),
    0x0C: ("HasCustomAttribute", "CustomAttributeType", "B"),
    0x0D: ("HasFieldMarshal", "B"),
    0x0E: (2, "HasDeclSecurity", "B"),
    0x0F: (2, 4, ("T", 0x02)),
    0x10: (4, ("T", 0x04)),
    0x11: ("B",),
    0x12: (("T", 0x02), ("T", 0x14)),
    0x13: (("T", 0x14),),
    0x14: (2, "S", "TypeDefOrRef"),
    0x15: (("T", 0x02), ("T", 0x17)),
    0x16: (("T", 0x17),),
    0x17: (2, "S", "B"),
    0x18: (2, ("T", 0x06), "HasSemantics"),
    0x19: (("T", 0x02), "MethodDefOrRef", "MethodDefOrRef"),
    0x1A: ("S",),
    0x1B: ("B",),
    0x1C: (2, "MemberForwarded", "S", ("T", 0x1A)),
    0x1D: (4, ("T", 0x04)),
    0x1E: (4, 4),
    0x1F: (4,),
    0x20: (4, 2, 2, 2, 2, 4, "B", "S", "S"),
    0x21: (4,),
    0x22: (4, 4, 4),
    0x23: (2, 2, 2, 2, 4, "B", "S", "S", "B"),
    0x24: (4, ("T", 0x23)),
    0x25: (4, 4, 4, ("T", 0x23)),
    0x26: (4, "S", "B"),
    0x27: (4, 4, "S", "S", "Implementation"),
    0x28: (4, 4, "S", "Implementation"),
    0x29: (("T", 0x02), ("T", 0x02)),
    0x2A: (2, 2, "TypeOrMethodDef", "S"),
    0x2B: ("MethodDefOrRef", "B"),
    0x2C: (("T", 0x2A), "TypeDefOrRef"),
}
ASSEMBLY_FLAGS = {
    0x0001: "PublicKey",
    0x0100: "Retargetable",
    0x4000: "DisableJITcompileOptimizer",
    0x8000: "EnableJITcompileTracking",
}
CLR_FLAGS = {
    0x1: "COMIMAGE_FLAGS_ILONLY",
    0x2: "COMIMAGE_FLAGS_32BITREQUIRED",
    0x4: "COMIMAGE_FLAGS_IL_LIBRARY",
    0x8: "COMIMAGE_FLAGS_STRONGNAMESIGNED",
    0x10: "COMIMAGE_FLAGS_NATIVE_ENTRYPOINT",
    0x10000: "COMIMAGE_FLAGS_TRACKDEBUGDATA",
    0x20000: "COMIMAGE_FLAGS_32BITPREFERRED",
}


class _Tables:
    def __init__(self, stream: bytes, strings: bytes, blobs: bytes) -> None:
        self.stream, self.strings, self.blobs = stream, strings, blobs
        if len(stream) < 24:
            raise ValueError("table stream too short")
        heap_sizes = stream[6]
        valid = struct.unpack_from("<Q", stream, 8)[0]
        pos = 24
        self.rows: dict[int, int] = {}
        for t in range(64):
            if valid >> t & 1:
                if pos + 4 > len(stream):
                    raise ValueError("table row counts truncated")
                self.rows[t] = struct.unpack_from("<I", stream, pos)[0]
                pos += 4
        if heap_sizes & 0x40:
            pos += 4
        self.str_w = 4 if heap_sizes & 1 else 2
        self.guid_w = 4 if heap_sizes & 2 else 2
        self.blob_w = 4 if heap_sizes & 4 else 2
        self.offsets: dict[int, tuple[int, tuple[tuple[int, str], ...]]] = {}
        for t in sorted(self.rows):
            if t not in _SCHEMA:
                break  # unknown table: later offsets cannot be computed
            cols = tuple((self._width(c), c if isinstance(c, str) else "") for c in _SCHEMA[t])
            self.offsets[t] = (pos, cols)
            pos += sum(w for w, _ in cols) * self.rows[t]

    def _width(self, col: Any) -> int:
        if isinstance(col, int):
            return col
        if col == "S":
            return self.str_w
        if col == "G":
            return self.guid_w
        if col == "B":
            return self.blob_w
        if isinstance(col, tuple):
            return 2 if self.rows.get(col[1], 0) < 0x10000 else 4
        bits, tables = _CODED[col]
        biggest = max(self.rows.get(t, 0) for t in tables)
        return 2 if biggest < (1 << (16 - bits)) else 4

    def row(self, table: int, index: int) -> list[int]:
        start, cols = self.offsets[table]
        pos = start + index * sum(w for w, _ in cols)
        out = []
        for w, _ in cols:
            if pos + w > len(self.stream):
                raise ValueError("table row outside the stream")
            out.append(int.from_bytes(self.stream[pos : pos + w], "little"))
            pos += w
        return out

    def count(self, table: int) -> int:
        return min(self.rows.get(table, 0), MAX_ROWS_READ) if table in self.offsets else 0

    def string(self, index: int) -> str:
        end = self.strings.find(b"\0", index)
        raw = self.strings[index : end if end >= 0 else len(self.strings)]
        return clean_text(raw[:1024])

    def blob(self, index: int) -> bytes:
        if index >= len(self.blobs):
            return b""
        b0 = self.blobs[index]
        if b0 & 0x80 == 0:
            n, pos = b0, index + 1
        elif b0 & 0xC0 == 0x80 and index + 1 < len(self.blobs):
            n, pos = ((b0 & 0x3F) << 8) | self.blobs[index + 1], index + 2
        elif index + 3 < len(self.blobs):
            n, pos = int.from_bytes(self.blobs[index : index + 4], "big") & 0x1FFFFFFF, index + 4
        else:
            return b""
        return self.blobs[pos : pos + n]


def _flags_text(value: int, names: dict[int, str]) -> str:
    return " ".join(name for bit, name in names.items() if value & bit)


def analyse_dotnet(hdr: PeHeaders, deadline: Deadline = NO_DEADLINE) -> tuple[dict[str, Any], list[str]]:
    """Return ``(dot_net_assembly, anomalies)``; empty dict when the PE has no CLR header."""
    clr_rva, clr_size = hdr.directory(CLR_DIR)
    if clr_rva == 0 or clr_size < 72:
        return {}, []
    cor = hdr.read_rva(clr_rva, 72)
    if len(cor) < 72:
        return {}, ["CLR header outside the file"]
    (_, rt_major, rt_minor, md_rva, md_size, flags, ep_token, res_rva, _, sn_rva, _) = struct.unpack_from(
        "<IHHIIIIIIII", cor
    )
    out: dict[str, Any] = {
        "clr_meta_version": f"{rt_major}.{rt_minor}",
        "assembly_flags": flags,
        "assembly_flags_txt": _flags_text(flags, CLR_FLAGS),
        "entry_point_token": ep_token,
        "metadata_header_rva": md_rva,
    }
    if flags & 0x10:
        out["entry_point_rva"] = ep_token
    if res_rva:
        out["resources_va"] = res_rva
    if sn_rva:
        out["strongname_va"] = sn_rva
    md = hdr.read_rva(md_rva, md_size)
    if len(md) < 16 or md[:4] != b"BSJB":
        return out, ["CLR metadata root missing or truncated"]
    (ver_len,) = struct.unpack_from("<I", md, 12)
    ver_len = min(ver_len, 255)
    out["clr_version"] = clean_text(md[16 : 16 + ver_len].split(b"\0", 1)[0])
    pos = 16 + ((ver_len + 3) & ~3)
    if pos + 4 > len(md):
        return out, ["CLR metadata stream headers truncated"]
    (n_streams,) = struct.unpack_from("<H", md, pos + 2)
    pos += 4
    streams: dict[str, bytes] = {}
    stream_info: dict[str, Any] = {}
    for _ in range(min(n_streams, 16)):
        if pos + 8 > len(md):
            break
        s_off, s_size = struct.unpack_from("<II", md, pos)
        end = md.find(b"\0", pos + 8, pos + 8 + 32)
        if end < 0:
            break
        name = md[pos + 8 : end].decode("ascii", "replace")
        pos = (end + 4) & ~3
        blob = md[s_off : s_off + s_size]
        streams.setdefault(name, blob)
        stream_info[name] = {"size": s_size, **blob_summary(blob)}
    out["streams"] = stream_info
    table_stream = streams.get("#~") or streams.get("#-")
    if table_stream is None:
        return out, ["CLR metadata has no table stream"]
    try:
        tables = _Tables(table_stream, streams.get("#Strings", b""), streams.get("#Blob", b""))
        _assembly(tables, out, deadline)
    except (ValueError, struct.error) as exc:
        return out, [f"CLR metadata tables malformed: {exc}"]
    return out, []


def _assembly(tables: _Tables, out: dict[str, Any], deadline: Deadline) -> None:
    out["tables_rows_map"] = {f"0x{t:02x}": n for t, n in sorted(tables.rows.items())}
    if tables.count(0x20):
        hash_alg, major, minor, build, rev, flags, pubkey, name, culture = tables.row(0x20, 0)
        out["assembly_name"] = tables.string(name)
        out["assembly_data"] = {
            "name": tables.string(name),
            "majorversion": major,
            "minorversion": minor,
            "buildnumber": build,
            "revisionnumber": rev,
            "culture": tables.string(culture),
            "flags": flags,
            "flags_text": _flags_text(flags, ASSEMBLY_FLAGS),
            "hashalgid": hash_alg,
            "pubkey": tables.blob(pubkey).hex(),
        }
    refs: dict[str, Any] = {}
    for i in range(min(tables.count(0x23), MAX_LIST)):
        major, minor, build, rev, _, _, name, _, _ = tables.row(0x23, i)
        refs.setdefault(tables.string(name), {"version": f"{major}.{minor}.{build}.{rev}"})
    if refs:
        out["external_assemblies"] = refs
    resources = [tables.string(tables.row(0x28, i)[2]) for i in range(min(tables.count(0x28), MAX_LIST))]
    if resources:
        out["manifest_resource"] = resources
    namespaces: dict[str, list[str]] = {}
    total = 0
    for i in range(tables.count(0x02)):
        if i % 256 == 0:
            deadline.check()
        _, name, namespace, *_ = tables.row(0x02, i)
        names = namespaces.setdefault(tables.string(namespace), [])
        if len(names) < MAX_LIST and total < 4 * MAX_LIST:
            names.append(tables.string(name))
            total += 1
    out["type_definition_list"] = [
        {"namespace": ns, "type_definitions": names} for ns, names in list(namespaces.items())[:MAX_LIST]
    ]
