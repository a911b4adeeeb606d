"""OOXML packages (docx/xlsx/pptx and macro-enabled variants): VirusTotal's ``openxml_info``.

Open the zip once with strict bounds (:class:`ooxml_parts.Package`), then run the extractors in
:data:`EXTRACTORS`. Output shape (see docs/formats/office.md)::

    {"openxml_info": {"file_type", "content_types", "rels", "external_links", "docprops",
                      "macros", "auto_exec", "suspicious", "iocs", "xlm_macros", "dde",
                      "embedded_objects"},
     "exiftool": {...}, "tags": [...], "children": [...], "anomalies": [...]}
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kinfile.formats.common import NO_DEADLINE, Child, Deadline, clean_text, run_extractors
from kinfile.formats.ooxml_parts import (
    MAX_CHILD_SIZE,
    NS_CT,
    NS_RELS,
    Package,
    exiftool_docprops,
    local,
    rels_source,
    resolve_target,
    text_children,
)
from kinfile.formats.vba import analyse_vba, vba_tags

logger = logging.getLogger(__name__)

MAX_ITEMS = 256
MAX_RELS_PARTS = 1024
MAX_RELS_READ = 10_000

_WML = "application/vnd.openxmlformats-officedocument.wordprocessingml"
_SML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_PML = "application/vnd.openxmlformats-officedocument.presentationml"
# main part content type -> (file type, family tag, ExifTool FileType, MIME type)
MAIN_TYPES: dict[str, tuple[str, str, str, str]] = {
    f"{_WML}.document.main+xml": ("docx", "docx", "DOCX", f"{_WML}.document"),
    "application/vnd.ms-word.document.macroEnabled.main+xml": (
        "docm", "docx", "DOCM", "application/vnd.ms-word.document.macroEnabled.12"),
    f"{_WML}.template.main+xml": ("dotx", "docx", "DOTX", f"{_WML}.template"),
    "application/vnd.ms-word.template.macroEnabledTemplate.main+xml": (
        "dotm", "docx", "DOTM", "application/vnd.ms-word.template.macroEnabled.12"),
    f"{_SML}.sheet.main+xml": ("xlsx", "xlsx", "XLSX", f"{_SML}.sheet"),
    "application/vnd.ms-excel.sheet.macroEnabled.main+xml": (
        "xlsm", "xlsx", "XLSM", "application/vnd.ms-excel.sheet.macroEnabled.12"),
    "application/vnd.ms-excel.sheet.binary.macroEnabled.main": (
        "xlsb", "xlsx", "XLSB", "application/vnd.ms-excel.sheet.binary.macroEnabled.12"),
    f"{_SML}.template.main+xml": ("xltx", "xlsx", "XLTX", f"{_SML}.template"),
    "application/vnd.ms-excel.template.macroEnabled.main+xml": (
        "xltm", "xlsx", "XLTM", "application/vnd.ms-excel.template.macroEnabled.12"),
    "application/vnd.ms-excel.addin.macroEnabled.main+xml": (
        "xlam", "xlsx", "XLAM", "application/vnd.ms-excel.addin.macroEnabled.12"),
    f"{_PML}.presentation.main+xml": ("pptx", "pptx", "PPTX", f"{_PML}.presentation"),
    "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml": (
        "pptm", "pptx", "PPTM", "application/vnd.ms-powerpoint.presentation.macroEnabled.12"),
    f"{_PML}.slideshow.main+xml": ("ppsx", "pptx", "PPSX", f"{_PML}.slideshow"),
    "application/vnd.ms-powerpoint.slideshow.macroEnabled.main+xml": (
        "ppsm", "pptx", "PPSM", "application/vnd.ms-powerpoint.slideshow.macroEnabled.12"),
    f"{_PML}.template.main+xml": ("potx", "pptx", "POTX", f"{_PML}.template"),
    "application/vnd.ms-powerpoint.template.macroEnabled.main+xml": (
        "potm", "pptx", "POTM", "application/vnd.ms-powerpoint.template.macroEnabled.12"),
}  # fmt: skip
FOLDER_TYPES = {"word": MAIN_TYPES[f"{_WML}.document.main+xml"], "xl": MAIN_TYPES[f"{_SML}.sheet.main+xml"],
                "ppt": MAIN_TYPES[f"{_PML}.presentation.main+xml"]}  # fmt: skip
MACROSHEET_TYPES = ("application/vnd.ms-excel.macrosheet+xml", "application/vnd.ms-excel.macrosheet",
                    "application/vnd.ms-excel.intlmacrosheet+xml")  # fmt: skip
# relationship types (last URI segment) that pull content from outside when external
REMOTE_TEMPLATE_TYPES = {"attachedTemplate"}
BENIGN_EXTERNAL_TYPES = {"hyperlink"}
AUTO_OPEN_NAMES = ("_xlnm.auto_open", "auto_open")


@dataclass
class OoxmlContext:
    package: Package
    deadline: Deadline
    info: dict[str, Any] = field(default_factory=dict)
    exif: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    overrides: dict[str, str] = field(default_factory=dict)  # lower-case part name -> content type
    defaults: dict[str, str] = field(default_factory=dict)  # lower-case extension -> content type
    rels: list[dict[str, Any]] = field(default_factory=list)

    def tag(self, *names: str) -> None:
        for name in names:
            if name not in self.tags:
                self.tags.append(name)

    def add_child(self, name: str, data: bytes) -> None:
        if data and len(self.children) < MAX_ITEMS:
            item: Child = {"relationship": "embedded_files", "name": clean_text(name, 260), "data": data}
            self.children.append(item)

    def content_type(self, member: str) -> str | None:
        key = member.lstrip("/").lower()
        if key in self.overrides:
            return self.overrides[key]
        return self.defaults.get(key.rsplit(".", 1)[-1]) if "." in key else None


def extract_content_types(ctx: OoxmlContext) -> None:
    root = ctx.package.xml("[Content_Types].xml")
    if root is None:
        ctx.anomalies.append("ooxml: no readable [Content_Types].xml")
        return
    for node in list(root)[:MAX_RELS_READ]:
        name, ctype = local(node.tag), clean_text(node.get("ContentType", ""), 256)
        if name == "Default" and node.get("Extension"):
            ctx.defaults[node.get("Extension", "").lower()] = ctype
        elif name == "Override" and node.get("PartName"):
            ctx.overrides[node.get("PartName", "").lstrip("/").lower()] = ctype
    if root.tag != f"{{{NS_CT}}}Types":
        ctx.anomalies.append("ooxml: unexpected [Content_Types].xml root element")
    types = sorted(set(ctx.overrides.values()) | set(ctx.defaults.values()))
    ctx.info["content_types"] = types[:MAX_ITEMS]


def extract_rels(ctx: OoxmlContext) -> None:
    names = [n for n in ctx.package.infos if n.lower().endswith(".rels")][:MAX_RELS_PARTS]
    external: list[dict[str, Any]] = []
    for rels_name in names:
        ctx.deadline.check()
        root = ctx.package.xml(rels_name)
        if root is None:
            continue
        source = rels_source(rels_name)
        for node in list(root)[:MAX_RELS_READ]:
            if node.tag != f"{{{NS_RELS}}}Relationship":
                continue
            rel_type = node.get("Type", "").rsplit("/", 1)[-1]
            target = node.get("Target", "")
            is_external = node.get("TargetMode", "").lower() == "external"
            item = {"source": clean_text(source, 256), "id": clean_text(node.get("Id", ""), 64),
                    "type": clean_text(rel_type, 128), "target": clean_text(target, 2048),
                    "external": is_external}  # fmt: skip
            if len(ctx.rels) < MAX_RELS_READ:
                ctx.rels.append(item)
            if is_external and rel_type not in BENIGN_EXTERNAL_TYPES and len(external) < MAX_ITEMS:
                external.append(item)
    ctx.info["rels"] = ctx.rels[:MAX_ITEMS]
    if len(ctx.rels) > MAX_ITEMS:
        ctx.anomalies.append(f"ooxml: {len(ctx.rels)} relationships, listing truncated to {MAX_ITEMS}")
    if external:
        ctx.info["external_links"] = external
        ctx.tag("external-link")
        if any(item["type"] in REMOTE_TEMPLATE_TYPES for item in external):
            ctx.tag("remote-template")


def extract_file_type(ctx: OoxmlContext) -> None:
    main = None
    for rel in ctx.rels:
        if rel["source"] == "" and rel["type"] == "officeDocument" and not rel["external"]:
            main = resolve_target("", rel["target"])
            break
    kind = MAIN_TYPES.get(ctx.content_type(main) or "") if main else None
    if kind is None:
        kind = next((MAIN_TYPES[t] for t in ctx.overrides.values() if t in MAIN_TYPES), None)
    if kind is None:
        top = {name.split("/", 1)[0].lower() for name in ctx.package.infos if "/" in name}
        kind = next((FOLDER_TYPES[f] for f in ("word", "xl", "ppt") if f in top), None)
    if kind is None:
        ctx.info["file_type"] = "ooxml"
        ctx.exif.update({"FileType": "ZIP", "FileTypeExtension": "zip", "MIMEType": "application/zip"})
        return
    ctx.info["file_type"] = kind[0]
    ctx.tag(kind[1])
    ctx.exif.update({"FileType": kind[2], "FileTypeExtension": kind[0], "MIMEType": kind[3]})


def extract_docprops(ctx: OoxmlContext) -> None:
    core = text_children(ctx.package.xml("docProps/core.xml"))
    app = text_children(ctx.package.xml("docProps/app.xml"))
    if core or app:
        ctx.info["docprops"] = {"core": core, "app": app}
    ctx.exif.update(exiftool_docprops(core, app))


def extract_vba(ctx: OoxmlContext) -> None:
    members = [n for n in ctx.package.infos if n.lower().endswith("vbaproject.bin")][:16]
    for member in members:
        ctx.deadline.check()
        blob = ctx.package.read(member, MAX_CHILD_SIZE)
        if not blob:
            continue
        ctx.add_child(member, blob)
        report, _sources, anomalies = analyse_vba(blob, member, ctx.deadline)
        ctx.anomalies.extend(anomalies)
        for macro in report["macros"]:
            macro["subfilename"] = macro["subfilename"] or member
        for key in ("macros", "auto_exec", "suspicious", "iocs"):
            if report[key]:
                ctx.info[key] = (ctx.info.get(key, []) + report[key])[:MAX_ITEMS]
        ctx.tag(*vba_tags(report))


def extract_xlm(ctx: OoxmlContext) -> None:
    sheets = [n for n in ctx.package.infos if ctx.content_type(n) in MACROSHEET_TYPES]
    if not sheets:
        return
    workbook = ctx.package.xml("xl/workbook.xml")
    by_target = {resolve_target("xl/workbook.xml", r["target"]).lower(): r["id"]
                 for r in ctx.rels if r["source"] == "xl/workbook.xml"}  # fmt: skip
    macro_ids = {by_target.get(s.lower()) for s in sheets}
    described: list[dict[str, Any]] = []
    auto: list[str] = []
    for node in workbook.iter() if workbook is not None else []:
        name = local(node.tag)
        rid = next((v for k, v in node.attrib.items() if local(k) == "id"), None)
        if name == "sheet" and rid in macro_ids and len(described) < MAX_ITEMS:
            described.append({"name": clean_text(node.get("name", ""), 256), "type": "macro sheet",
                              "state": node.get("state", "visible")})  # fmt: skip
        elif name == "definedName" and node.get("name", "").lower().startswith(AUTO_OPEN_NAMES):
            auto.append("Auto_Open")
    if not described:
        described = [{"name": clean_text(s, 256), "type": "macro sheet", "state": "unknown"} for s in sheets]
    ctx.info["xlm_macros"] = {"sheets": described[:MAX_ITEMS], "auto_exec": sorted(set(auto))}
    ctx.tag("macros", "xlm-macros")
    ctx.info.setdefault("suspicious", []).append(
        {"keyword": "XLM macro", "description": "XLM macro found. It may contain malicious code"}
    )
    if auto:
        ctx.tag("auto-open")
        ctx.info.setdefault("auto_exec", []).append(
            {"keyword": "Auto_Open", "description": "Runs when the Excel Workbook is opened"}
        )


def _field_instructions(root: Any) -> list[str]:
    """Complex-field (fldChar/instrText) and simple-field instructions, in document order."""
    found: list[str] = []
    buffer: list[str] | None = None
    for node in root.iter():
        name = local(node.tag)
        if name == "fldChar":
            kind = next((v for k, v in node.attrib.items() if local(k) == "fldCharType"), "")
            if kind == "begin":
                buffer = []
            elif buffer is not None:
                found.append("".join(buffer))
                buffer = None
        elif name == "instrText" and buffer is not None and len(buffer) < 1024:
            buffer.append(node.text or "")
        elif name == "fldSimple":
            found.append(next((v for k, v in node.attrib.items() if local(k) == "instr"), ""))
        if len(found) >= 4096:
            break
    return found


def extract_dde(ctx: OoxmlContext) -> None:
    links: list[str] = []
    word_parts = [n for n in ctx.package.infos if n.lower().startswith("word/") and n.endswith(".xml")]
    for part in word_parts[:64]:
        blob = ctx.package.read(part)
        if not blob or b"instr" not in blob:
            continue
        root = ctx.package.xml(part)
        for instruction in _field_instructions(root) if root is not None else []:
            head = instruction.strip().split(" ", 1)[0].upper()
            if head in ("DDE", "DDEAUTO") and len(links) < MAX_ITEMS:
                links.append(clean_text(instruction.strip(), 512))
    for part in [n for n in ctx.package.infos if n.lower().startswith("xl/externallinks/")][:64]:
        root = ctx.package.xml(part) if part.lower().endswith(".xml") else None
        for node in root.iter() if root is not None else []:
            if local(node.tag) == "ddeLink" and len(links) < MAX_ITEMS:
                link = f"{node.get('ddeService', '')} {node.get('ddeTopic', '')}".strip()
                links.append(clean_text(link, 512))
    if links:
        ctx.info["dde"] = links
        ctx.tag("dde")


def extract_embedded(ctx: OoxmlContext) -> None:
    objects: list[dict[str, Any]] = []
    for name, info in ctx.package.infos.items():
        lower = name.lower()
        if "/embeddings/" not in lower and "/activex/" not in lower:
            continue
        ctx.deadline.check()
        kind = "activex" if "/activex/" in lower else "embedding"
        if kind == "activex" and not lower.endswith(".bin"):
            continue
        blob = ctx.package.read(name, MAX_CHILD_SIZE)
        if len(objects) < MAX_ITEMS:
            objects.append({"name": clean_text(name, 256), "kind": kind, "size": info.file_size,
                            "content_type": ctx.content_type(name) or ""})  # fmt: skip
        if blob:
            ctx.add_child(name, blob)
    if objects:
        ctx.info["embedded_objects"] = objects
        ctx.tag("ole-embedded")


EXTRACTORS: tuple[Callable[[OoxmlContext], None], ...] = (
    extract_content_types,
    extract_rels,
    extract_file_type,
    extract_docprops,
    extract_vba,
    extract_xlm,
    extract_dde,
    extract_embedded,
)


def analyse(data: bytes, deadline: Deadline | None = None) -> dict[str, Any]:
    """Analyse an OOXML package; never raises on hostile input (see module docstring)."""
    deadline = deadline or NO_DEADLINE
    anomalies: list[str] = []
    try:
        package = Package(data, anomalies)
    except Exception as exc:  # noqa: BLE001 - BadZipFile, truncated central directory, ...
        return {"anomalies": [f"ooxml: cannot open zip ({type(exc).__name__})"], "children": []}
    ctx = OoxmlContext(package=package, deadline=deadline, anomalies=anomalies)
    try:
        run_extractors(EXTRACTORS, ctx, anomalies=ctx.anomalies)
    finally:
        package.zip.close()
    return {
        "openxml_info": ctx.info,
        "exiftool": ctx.exif,
        "tags": ctx.tags,
        "children": ctx.children,
        "anomalies": ctx.anomalies[:MAX_ITEMS],
    }
