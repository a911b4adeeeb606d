"""PE analyser: VirusTotal-shaped ``pe_info``, ``signature_info``, ``exiftool`` and friends.

Parse once, then run the extractors in :data:`EXTRACTORS` over a shared :class:`PeContext`.
Headers, sections, Rich header, overlay, resources, version info, debug directory, Authenticode
blob and CLR metadata are read by our own bounded parsers (``pe_*.py``, ``rich.py``,
``dotnet.py``); LIEF (parsed from ``bytes`` with relocations, exceptions and resources disabled)
supplies imports, the pefile-compatible imphash, exports and the signature integrity check.
An extractor that fails on hostile input records an anomaly; the others still run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kinfile.formats import packers as packers_mod
from kinfile.formats import pe_directories, pe_exif, pe_icon, pe_resources, pe_signature, rich
from kinfile.formats.common import NO_DEADLINE, Child, Deadline, clean_text, run_extractors
from kinfile.formats.dotnet import analyse_dotnet
from kinfile.formats.pe_headers import NotPE, PeHeaders, parse_headers
from kinfile.formats.pe_stats import blob_summary
from kinfile.formats.pe_version import VersionInfo, parse_version_info

logger = logging.getLogger(__name__)

MAX_LIST = 256
MAX_ANOMALIES = 64
MIN_PLAUSIBLE_TIMESTAMP = 631152000  # 1990-01-01
OVERLAY_CHILD_MIN = 64


@dataclass
class PeContext:
    data: bytes
    hdr: PeHeaders
    deadline: Deadline
    lief_binary: Any = None
    pe_info: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    signature_info: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    leaves: list[pe_resources.ResourceLeaf] = field(default_factory=list)
    version: VersionInfo | None = None
    overlay_offset: int | None = None
    signed: bool = False

    def tag(self, *names: str) -> None:
        for name in names:
            if name not in self.tags:
                self.tags.append(name)


def _lief_parse(data: bytes) -> Any:
    import lief

    lief.logging.disable()
    config = lief.PE.ParserConfig()
    config.parse_reloc = False
    config.parse_rsrc = False
    config.parse_exceptions = False
    if hasattr(config, "parse_arm64x_binary"):
        config.parse_arm64x_binary = False
    return lief.PE.parse(data, config)


def extract_lief(ctx: PeContext) -> None:
    try:
        ctx.lief_binary = _lief_parse(ctx.data)
    except ImportError:
        ctx.anomalies.append("LIEF is not installed: imports, exports and signature check skipped")
        return
    if ctx.lief_binary is None:
        ctx.anomalies.append("LIEF could not parse the file")


def extract_header(ctx: PeContext) -> None:
    hdr = ctx.hdr
    ctx.pe_info["timestamp"] = hdr.timestamp
    ctx.pe_info["entry_point"] = hdr.opt["entry"]
    ctx.pe_info["machine_type"] = hdr.machine
    if MIN_PLAUSIBLE_TIMESTAMP <= hdr.timestamp <= time.time() + 86400:
        ctx.report["creation_date"] = hdr.timestamp
    elif hdr.timestamp:
        ctx.anomalies.append(f"implausible PE timestamp {hdr.timestamp}")
    ctx.anomalies.extend(hdr.anomalies)


def extract_sections(ctx: PeContext) -> None:
    sections = []
    for s in ctx.hdr.sections[:MAX_LIST]:
        ctx.deadline.check()
        sections.append(
            {
                "name": s.name,
                "virtual_address": s.virtual_address,
                "virtual_size": s.virtual_size,
                "raw_size": s.raw_size,
                **blob_summary(ctx.hdr.section_data(s)),
                "flags": s.flags,
            }
        )
        if s.characteristics & 0xA0000000 == 0xA0000000:
            ctx.anomalies.append(f"section {s.name!r} is writable and executable")
    if sections:
        ctx.pe_info["sections"] = sections


def extract_rich(ctx: PeContext) -> None:
    header = rich.parse_rich(ctx.data, ctx.hdr.optional_offset)
    if header is None:
        return
    ctx.pe_info["rich_pe_header_hash"] = header.hash
    ctx.pe_info["compiler_product_versions"] = rich.compiler_product_versions(header)[:MAX_LIST]
    ctx.anomalies.extend(header.anomalies)


def _lief_imports(binary: Any) -> list[tuple[str, list[str | int]]]:
    out: list[tuple[str, list[str | int]]] = []
    for imp in binary.imports:
        funcs: list[str | int] = []
        for entry in imp.entries:
            funcs.append(entry.ordinal if entry.is_ordinal else clean_text(entry.name, 1024))
        out.append((clean_text(imp.name, 1024), funcs))
    return out


def extract_imports(ctx: PeContext) -> None:
    binary = ctx.lief_binary
    imports: list[tuple[str, list[str | int]]] = []
    imphash = ""
    if binary is not None:
        import lief

        imports = _lief_imports(binary)
        imphash = lief.PE.get_imphash(binary, lief.PE.IMPHASH_MODE.PEFILE) if imports else ""
    if not imports and ctx.hdr.directory(pe_directories.IMPORT_DIR)[0]:
        imports = pe_directories.fallback_imports(ctx.hdr, ctx.deadline)
        imphash = pe_directories.imphash(imports)
    if imphash:
        ctx.pe_info["imphash"] = imphash
    import_list = []
    for dll, funcs in imports[:MAX_LIST]:
        names = [pe_directories.ordinal_name(dll, f) if isinstance(f, int) else f for f in funcs]
        names = sorted({n for n in names if n}, key=str.lower)[:MAX_LIST]
        import_list.append({"library_name": dll, "imported_functions": names})
    if import_list:
        ctx.pe_info["import_list"] = import_list


def extract_exports(ctx: PeContext) -> None:
    binary = ctx.lief_binary
    export = binary.get_export() if binary is not None and binary.has_exports else None
    if export is None:
        return
    names = [clean_text(e.name, 1024) for e in export.entries if e.name][:MAX_LIST]
    if names:
        ctx.pe_info["exports"] = names


def extract_debug(ctx: PeContext) -> None:
    entries = pe_directories.debug_entries(ctx.hdr, ctx.deadline)
    if entries:
        ctx.pe_info["debug"] = entries


def extract_overlay(ctx: PeContext) -> None:
    offset = ctx.hdr.overlay_offset()
    ctx.overlay_offset = offset
    if offset is None:
        return
    blob = ctx.data[offset:]
    filetype, standalone = pe_resources.sniff(blob)
    ctx.pe_info["overlay"] = {"offset": offset, "size": len(blob), **blob_summary(blob), "filetype": filetype}
    ctx.tag("overlay")
    if standalone and len(blob) >= OVERLAY_CHILD_MIN:
        ctx.children.append(Child(relationship="overlay_children", name=f"overlay@{offset}", data=blob))


def extract_resources(ctx: PeContext) -> None:
    leaves, anomalies = pe_resources.walk_resources(ctx.hdr, ctx.deadline)
    ctx.leaves = leaves
    ctx.anomalies.extend(anomalies)
    ctx.pe_info.update(pe_resources.resource_report(leaves, ctx.deadline))
    ctx.children.extend(pe_resources.resource_children(leaves))
    version_leaf = next((leaf for leaf in leaves if leaf.type_name == "RT_VERSION"), None)
    if version_leaf is not None:
        ctx.version = parse_version_info(version_leaf.data)
    icon = pe_icon.main_icon(leaves)
    if icon:
        ctx.report["main_icon"] = icon


VERSION_TO_SIGNATURE_INFO = (
    ("FileDescription", "description"),
    ("FileVersion", "file version"),
    ("InternalName", "internal name"),
    ("OriginalFilename", "original name"),
    ("ProductName", "product"),
    ("LegalCopyright", "copyright"),
    ("Comments", "comments"),
)


def extract_signature(ctx: PeContext) -> None:
    ctx.report["authentihash"] = ctx.hdr.authentihash()
    if ctx.version is not None:
        for key, vt_key in VERSION_TO_SIGNATURE_INFO:
            value = ctx.version.strings.get(key)
            if value:
                ctx.signature_info[vt_key] = value
    info, anomalies, signed = pe_signature.signature_report(ctx.hdr, ctx.lief_binary)
    ctx.signature_info.update(info)
    ctx.anomalies.extend(anomalies)
    if signed:
        ctx.signed = True
        ctx.tag("signed")
        if info.get("verified") != "Signed":
            ctx.tag("invalid-signature")


def extract_dotnet(ctx: PeContext) -> None:
    assembly, anomalies = analyse_dotnet(ctx.hdr, ctx.deadline)
    ctx.anomalies.extend(anomalies)
    if assembly:
        ctx.report["dot_net_assembly"] = assembly
        ctx.tag("assembly")


def extract_packers(ctx: PeContext) -> None:
    found = packers_mod.detect_packers(ctx.hdr, ctx.overlay_offset)
    if found:
        ctx.report["packers"] = {"kinfile": ", ".join(found)}
        ctx.tag(*(name.lower().replace(" ", "-").replace("'", "") for name in found))


def extract_exiftool(ctx: PeContext) -> None:
    ctx.report["exiftool"] = pe_exif.build_exiftool(ctx.hdr, ctx.version)


def extract_tags(ctx: PeContext) -> None:
    hdr = ctx.hdr
    base = ["pedll" if hdr.is_dll else "peexe"]
    if hdr.is_64:
        base.append("64bits")
    subsystem = hdr.opt["subsystem"]
    if 10 <= subsystem <= 13:
        base.append("efi")
    elif subsystem == 1:
        base.append("native")
    ctx.tags[:0] = [t for t in base if t not in ctx.tags]


Extractor = Callable[[PeContext], None]
EXTRACTORS: tuple[Extractor, ...] = (
    extract_lief,
    extract_header,
    extract_sections,
    extract_rich,
    extract_imports,
    extract_exports,
    extract_debug,
    extract_overlay,
    extract_resources,
    extract_signature,
    extract_dotnet,
    extract_packers,
    extract_exiftool,
    extract_tags,
)


def analyse(data: bytes, deadline: Deadline | None = None) -> dict[str, Any]:
    """Analyse a PE file; never raises on malformed input (only :class:`AnalysisTimeout`)."""
    deadline = deadline or NO_DEADLINE
    data = bytes(data)
    try:
        hdr = parse_headers(data)
    except NotPE as exc:
        return {"anomalies": [f"not a PE file: {exc}"], "children": []}
    except Exception as exc:  # struct errors on hostile headers
        return {"anomalies": [f"unparseable PE headers: {exc}"], "children": []}
    ctx = PeContext(data=data, hdr=hdr, deadline=deadline)
    run_extractors(EXTRACTORS, ctx, anomalies=ctx.anomalies, deadline=deadline)
    return _result(ctx)


def _result(ctx: PeContext) -> dict[str, Any]:
    out: dict[str, Any] = {"pe_info": ctx.pe_info, **ctx.report}
    if ctx.signature_info:
        out["signature_info"] = ctx.signature_info
    out["tags"] = ctx.tags
    anomalies = list(dict.fromkeys(ctx.anomalies))
    out["anomalies"] = anomalies[:MAX_ANOMALIES]
    out["children"] = ctx.children
    return out
