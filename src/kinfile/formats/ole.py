"""OLE2 compound files (doc, xls, ppt, msi, msg, ...): VirusTotal's ``office_info``.

Parse once with ``olefile`` into an :class:`OleContext`, then run the small extractors in
:data:`EXTRACTORS`; each one fills part of ``office_info``, the ``exiftool`` dict, tags, children
and anomalies. Output shape (see docs/formats/office.md)::

    {"office_info": {"file_type", "entries", "summary_info", "document_summary_info", "macros",
                     "auto_exec", "suspicious", "iocs", "xlm_macros", "dde", "encryption",
                     "embedded_objects"},
     "exiftool": {...}, "tags": [...], "children": [...], "anomalies": [...]}
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kinfile.formats import ole_active, ole_props
from kinfile.formats.common import NO_DEADLINE, Child, Deadline, clean_text, run_extractors
from kinfile.formats.vba import analyse_vba, vba_tags

logger = logging.getLogger(__name__)

MAX_ITEMS = 256
MAX_ENTRIES_WALKED = 100_000
MAX_STREAM_READ = 64 * 1024 * 1024
MAX_DECRYPT_INPUT = 20 * 1024 * 1024
MAX_SPIN_COUNT = 100_000  # Office's default; a hostile file could ask for billions of hash rounds
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# root CLSID -> file type
ROOT_CLSIDS: dict[str, str] = {
    "00020906-0000-0000-C000-000000000046": "doc",
    "00020900-0000-0000-C000-000000000046": "doc",
    "00020820-0000-0000-C000-000000000046": "xls",
    "00020810-0000-0000-C000-000000000046": "xls",
    "64818D10-4F9B-11CF-86EA-00AA00B929E8": "ppt",
    "000C1084-0000-0000-C000-000000000046": "msi",
    "000C1086-0000-0000-C000-000000000046": "msp",
    "000C1082-0000-0000-C000-000000000046": "mst",
}
# characteristic stream (lower case) -> file type, when the root CLSID says nothing
TYPE_STREAMS: tuple[tuple[str, str], ...] = (
    ("worddocument", "doc"),
    ("workbook", "xls"),
    ("book", "xls"),
    ("powerpoint document", "ppt"),
    ("encryptedpackage", "encrypted-ooxml"),
    ("__properties_version1.0", "msg"),
    ("visiodocument", "vsd"),
)
# file type -> (ExifTool FileType, MIME type, extension)
EXIF_TYPES: dict[str, tuple[str, str, str]] = {
    "doc": ("DOC", "application/msword", "doc"),
    "dot": ("DOT", "application/msword", "dot"),
    "xls": ("XLS", "application/vnd.ms-excel", "xls"),
    "ppt": ("PPT", "application/vnd.ms-powerpoint", "ppt"),
    "msi": ("MSI", "application/x-msi", "msi"),
    "msp": ("MSP", "application/octet-stream", "msp"),
    "mst": ("MST", "application/octet-stream", "mst"),
    "msg": ("MSG", "application/vnd.ms-outlook", "msg"),
    "vsd": ("VSD", "application/vnd.visio", "vsd"),
}
TYPE_TAGS = {"doc": "doc", "dot": "doc", "xls": "xls", "ppt": "ppt", "msi": "msi", "msp": "msi",
             "mst": "msi", "msg": "outlook"}  # fmt: skip
ENTRY_TYPES = {1: "storage", 2: "stream", 5: "root"}


@dataclass
class OleContext:
    data: bytes
    ole: Any
    deadline: Deadline
    info: dict[str, Any] = field(default_factory=dict)
    exif: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    streams: dict[str, Any] = field(default_factory=dict)  # lower-case path -> direntry
    storages: dict[str, Any] = field(default_factory=dict)
    file_type: str = "ole2"
    filepass: int | None = None
    fib: dict[str, bool] = field(default_factory=dict)

    def tag(self, *names: str) -> None:
        for name in names:
            if name not in self.tags:
                self.tags.append(name)

    def add_child(self, item: Child) -> None:
        if len(self.children) < MAX_ITEMS and item["data"]:
            self.children.append(item)

    def read(self, path: str) -> bytes:
        """A stream's bytes, refusing sizes no honest file of this length can hold."""
        entry = self.streams.get(path.lower())
        if entry is None:
            return b""
        if entry.size > min(len(self.data), MAX_STREAM_READ):
            self.anomalies.append(f"ole: stream {clean_text(path, 80)!r} larger than the file")
            return b""
        try:
            return bytes(self.ole.openstream(entry_path(self, entry)).read())
        except Exception as exc:  # noqa: BLE001 - broken sector chain
            self.anomalies.append(f"ole: unreadable stream {clean_text(path, 80)!r} ({type(exc).__name__})")
            return b""


def entry_path(ctx: OleContext, entry: Any) -> str:
    return ctx.info.setdefault("_paths", {}).get(entry.sid, entry.name)


def extract_entries(ctx: OleContext) -> None:
    """Directory walk (iterative, cycle-safe): VT ``entries`` plus path indexes."""
    root = ctx.ole.root
    entries: list[dict[str, Any]] = []
    paths: dict[int, str] = ctx.info.setdefault("_paths", {})
    stack: list[tuple[Any, str]] = [(root, "")]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node.sid in seen or len(seen) >= MAX_ENTRIES_WALKED:
            continue
        seen.add(node.sid)
        if len(seen) % 1024 == 0:
            ctx.deadline.check()
        if node is not root:
            paths[node.sid] = path
            (ctx.streams if node.entry_type == 2 else ctx.storages)[path.lower()] = node
        if len(entries) < MAX_ITEMS:
            entries.append(_entry_dict(node, path))
        for kid in reversed(node.kids or []):
            stack.append((kid, f"{path}/{kid.name}" if path else kid.name))
    if len(seen) > MAX_ITEMS:
        ctx.anomalies.append(f"ole: {len(seen)} directory entries, listing truncated to {MAX_ITEMS}")
    ctx.info["entries"] = entries


def _entry_dict(node: Any, path: str) -> dict[str, Any]:
    kind = ENTRY_TYPES.get(node.entry_type, "unknown")
    item: dict[str, Any] = {
        "name": clean_text(node.name, 256),
        "path": clean_text(path, 1024),
        "sid": node.sid,
        "type_literal": kind,
        "type": kind,
        "size": int(node.size),
    }
    if node.clsid:
        item["clsid"] = node.clsid
        literal = _clsid_literal(node.clsid)
        if literal:
            item["clsid_literal"] = literal
    return item


def _clsid_literal(clsid: str) -> str | None:
    try:
        from oletools.common.clsid import KNOWN_CLSIDS
    except ImportError:  # pragma: no cover
        return None
    return KNOWN_CLSIDS.get(clsid.upper())


def extract_file_type(ctx: OleContext) -> None:
    file_type = ROOT_CLSIDS.get((ctx.ole.root.clsid or "").upper())
    if file_type is None:
        top = {p for p in ctx.streams if "/" not in p}
        file_type = next((t for name, t in TYPE_STREAMS if name in top), "ole2")
    if file_type == "doc":
        ctx.fib = ole_active.word_fib_flags(ctx.read("WordDocument")[:64])
        if ctx.fib.get("template"):
            file_type = "dot"
    ctx.file_type = file_type
    ctx.info["file_type"] = file_type
    if file_type in TYPE_TAGS:
        ctx.tag(TYPE_TAGS[file_type])


def extract_properties(ctx: OleContext) -> None:
    summary_raw = ole_props.read_property_set(ctx.ole, ole_props.SUMMARY_STREAM, ctx.anomalies)
    doc_raw = ole_props.read_property_set(ctx.ole, ole_props.DOC_SUMMARY_STREAM, ctx.anomalies)
    summary = ole_props.map_summary(summary_raw)
    doc_summary = ole_props.map_doc_summary(doc_raw)
    if summary:
        ctx.info["summary_info"] = summary
    if doc_summary:
        ctx.info["document_summary_info"] = doc_summary
    exif_type = EXIF_TYPES.get(ctx.file_type, ("FPX", "image/vnd.fpx", "fpx"))
    ctx.exif.update({"FileType": exif_type[0], "FileTypeExtension": exif_type[2], "MIMEType": exif_type[1]})
    ctx.exif.update(ole_props.exiftool_tags(summary_raw, doc_raw))


def extract_word(ctx: OleContext) -> None:
    if "worddocument" not in ctx.streams:
        return
    fields = ole_active.scan_dde_fields(ctx.read("WordDocument"))
    if fields:
        ctx.info["dde"] = fields
        ctx.tag("dde")


def extract_workbook(ctx: OleContext) -> None:
    name = "Workbook" if "workbook" in ctx.streams else "Book" if "book" in ctx.streams else None
    if name is None:
        return
    globals_info = ole_active.scan_workbook_globals(ctx.read(name), ctx.deadline)
    ctx.filepass = globals_info["filepass"]
    xlm = ole_active.xlm_report(globals_info)
    if xlm is None:
        return
    ctx.info["xlm_macros"] = xlm
    ctx.tag("macros", "xlm-macros")
    auto = ctx.info.setdefault("auto_exec", [])
    for keyword in xlm["auto_exec"]:
        auto.append({"keyword": keyword, "description": "Runs when the Excel Workbook is opened"})
    if xlm["auto_exec"]:
        ctx.tag("auto-open")
    ctx.info.setdefault("suspicious", []).append(
        {"keyword": "XLM macro", "description": "XLM macro found. It may contain malicious code"}
    )


def extract_encryption(ctx: OleContext) -> None:
    method = ole_active.encryption_method(set(ctx.streams), ctx.fib, ctx.filepass)
    if method is None:
        return
    ctx.info["encryption"] = {"encrypted": True, "method": method}
    ctx.tag("encrypted")
    ctx.deadline.check()
    decrypted = _try_default_password(ctx)
    if decrypted:
        ctx.info["encryption"]["default_password"] = "VelvetSweatshop"
        ext = _decrypted_extension(decrypted, ctx.file_type)
        ctx.add_child(ole_active.child(f"decrypted.{ext}", decrypted))


def _decrypted_extension(decrypted: bytes, file_type: str) -> str:
    if decrypted[:2] == b"PK":
        head = decrypted[:65536]
        for marker, ext in ((b"xl/", "xlsx"), (b"word/", "docx"), (b"ppt/", "pptx")):
            if marker in head:
                return ext
        return "zip"
    return EXIF_TYPES.get(file_type, ("", "", "bin"))[2]


def _try_default_password(ctx: OleContext) -> bytes | None:
    """Excel's built-in "VelvetSweatshop" password opens without a prompt: decrypt it if used."""
    if len(ctx.data) > MAX_DECRYPT_INPUT:
        return None
    spin = re.search(rb'spinCount="(\d{1,12})"', ctx.read("EncryptionInfo")[:8192])
    if spin and int(spin.group(1)) > MAX_SPIN_COUNT:
        ctx.anomalies.append(f"ole: encryption spinCount {int(spin.group(1))} too high to try a password")
        return None
    try:
        import msoffcrypto

        office = msoffcrypto.OfficeFile(io.BytesIO(ctx.data))
        office.load_key(password="VelvetSweatshop")
        out = io.BytesIO()
        office.decrypt(out)
        return out.getvalue()[: ole_active.MAX_CHILD_SIZE]
    except Exception:  # noqa: BLE001 - wrong password, unsupported scheme or broken file
        return None


def _vba_worth_trying(ctx: OleContext) -> bool:
    if any(p.rsplit("/", 1)[-1] == "vba" for p in ctx.storages) or ctx.file_type == "ppt":
        return True
    return b"\x00Attribut" in ctx.data


def _olevba_safe(ctx: OleContext) -> bool:
    """olevba reads every (even orphan) stream: refuse sizes that would blow up memory."""
    ole = ctx.ole
    for sid in range(min(len(ole.direntries), MAX_ENTRIES_WALKED)):
        entry = ole.direntries[sid]
        if entry is None:
            try:
                entry = ole._load_direntry(sid)
            except Exception:  # noqa: BLE001
                continue
        if entry.entry_type == 2 and entry.size > len(ctx.data):
            ctx.anomalies.append("ole: directory entry larger than the file, VBA scan skipped")
            return False
    return True


def extract_vba(ctx: OleContext) -> None:
    if not _vba_worth_trying(ctx) or not _olevba_safe(ctx):
        return
    report, children, anomalies = analyse_vba(ctx.data, f"document.{ctx.file_type}", ctx.deadline)
    ctx.anomalies.extend(anomalies)
    if report["macros"]:
        ctx.info["macros"] = report["macros"]
        for key in ("auto_exec", "suspicious", "iocs"):
            if report[key]:
                ctx.info[key] = report[key] + ctx.info.get(key, [])
        ctx.tag(*vba_tags(report))
    for item in children:
        ctx.add_child(item)


def extract_embedded(ctx: OleContext) -> None:
    """Ole10Native payloads, Package / CONTENTS streams and embedded OLE storages."""
    objects: list[dict[str, Any]] = []
    for path, entry in list(ctx.storages.items()):
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        is_object = parent == "objectpool" or path.startswith("mbd")
        is_object = is_object or f"{path}/\x01compobj" in ctx.streams
        if not is_object or len(objects) >= MAX_ITEMS:
            continue
        item: dict[str, Any] = {"path": clean_text(entry_path(ctx, entry), 1024)}
        if entry.clsid:
            item["clsid"] = entry.clsid
            literal = _clsid_literal(entry.clsid)
            if literal:
                item["clsid_literal"] = literal
        objects.append(item)
    for path, entry in list(ctx.streams.items()):
        ctx.deadline.check()
        leaf = path.rsplit("/", 1)[-1]
        real_path = entry_path(ctx, entry)
        if leaf == "\x01ole10native":
            parsed = ole_active.parse_ole10native(ctx.read(real_path))
            if parsed:
                name, payload = parsed
                objects.append({"path": clean_text(real_path, 1024), "filename": name, "size": len(payload)})
                ctx.add_child(ole_active.child(f"ole10native/{name}", payload))
        elif leaf in ("package", "contents") and "/" in path:
            payload = ctx.read(real_path)
            objects.append({"path": clean_text(real_path, 1024), "size": len(payload)})
            ctx.add_child(ole_active.child(f"{leaf}/{clean_text(real_path, 200)}", payload))
    if objects:
        ctx.info["embedded_objects"] = objects[:MAX_ITEMS]
        ctx.tag("ole-embedded")


def extract_ppt_objects(ctx: OleContext) -> None:
    if "powerpoint document" not in ctx.streams:
        return
    found = 0
    for offset, blob in ole_active.ppt_embedded_storages(ctx.read("PowerPoint Document"), ctx.deadline):
        if b"V\x00B\x00A\x00" in blob[:65536] and b"_\x00V\x00B\x00A\x00_\x00P\x00R\x00O\x00" in blob:
            continue  # the VBA project storage: its modules are reported by the VBA extractor
        found += 1
        ctx.add_child(ole_active.child(f"ppt/ExOleObjStg_{offset:08x}.ole", blob))
        ctx.info.setdefault("embedded_objects", []).append(
            {"path": f"PowerPoint Document@{offset:#x}", "size": len(blob)}
        )
    if found:
        ctx.tag("ole-embedded")


def extract_msi(ctx: OleContext) -> None:
    if ctx.file_type not in ("msi", "msp", "mst"):
        return
    for item in ctx.info.get("entries", []):
        item["decoded_name"] = ole_active.decode_msi_name(item["name"])
    for path, entry in list(ctx.streams.items()):
        ctx.deadline.check()
        if "/" in path or entry.size < 36 or entry.size > ole_active.MAX_CHILD_SIZE:
            continue
        head = _peek(ctx, entry)
        if head.startswith(b"MSCF"):
            name = ole_active.decode_msi_name(entry.name).lstrip("!")
            name = name if name.lower().endswith(".cab") else f"{name}.cab"
            ctx.add_child(ole_active.child(f"msi/{name}", ctx.read(entry_path(ctx, entry))))


def _peek(ctx: OleContext, entry: Any) -> bytes:
    try:
        return bytes(ctx.ole.openstream(entry_path(ctx, entry)).read(8))
    except Exception:  # noqa: BLE001
        return b""


EXTRACTORS: tuple[Callable[[OleContext], None], ...] = (
    extract_entries,
    extract_file_type,
    extract_properties,
    extract_word,
    extract_workbook,
    extract_encryption,
    extract_vba,
    extract_embedded,
    extract_ppt_objects,
    extract_msi,
)


def analyse(data: bytes, deadline: Deadline | None = None) -> dict[str, Any]:
    """Analyse an OLE2 compound file; never raises on hostile input (see module docstring)."""
    deadline = deadline or NO_DEADLINE
    if data[:8] != OLE_MAGIC:
        return {"anomalies": ["ole: not an OLE2 compound file"], "children": []}
    try:
        import olefile

        ole = olefile.OleFileIO(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - olefile raises many types on corrupt headers
        return {"anomalies": [f"ole: cannot parse ({type(exc).__name__}: {clean_text(exc, 120)})"],
                "children": []}  # fmt: skip
    ctx = OleContext(data=data, ole=ole, deadline=deadline)
    for issue in list(getattr(ole, "parsing_issues", []) or [])[:16]:
        ctx.anomalies.append(f"ole: {clean_text(issue[1], 160)}")
    try:
        run_extractors(EXTRACTORS, ctx, anomalies=ctx.anomalies)
    finally:
        ole.close()
    ctx.info.pop("_paths", None)
    return {
        "office_info": ctx.info,
        "exiftool": ctx.exif,
        "tags": ctx.tags,
        "children": ctx.children,
        "anomalies": ctx.anomalies[:MAX_ITEMS],
    }
