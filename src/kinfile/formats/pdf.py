"""PDF analyser: VirusTotal's ``pdf_info`` (pdfid-style keyword counts), ExifTool-style metadata,
tags and embedded files.

Pure byte-level scanning (no PDF library): keyword counts survive any malformation, objects are
found by scanning rather than through the cross-reference table, and FlateDecode object streams
are expanded (within a decompression budget) so keywords hidden in them are counted too.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from kinfile.formats.common import (
    Child,
    Deadline,
    analyse_scanned,
    clean_text,
)
from kinfile.formats.pdf_meta import encryption_description, info_metadata, merge_metadata, xmp_metadata
from kinfile.formats.pdf_objects import OBJ_RE, WHITESPACE, PdfDocument, PdfObject, Ref, text_of
from kinfile.formats.pdf_scan import (
    STARTXREF_RE,
    DecodeBudget,
    FilterError,
    KeywordCounts,
    count_keywords,
    find_header,
)

logger = logging.getLogger(__name__)

DECODE_BUDGET = 50 * 1024 * 1024
EMBEDDED_RATIO = 1000
MAX_CHILDREN = 64
MAX_CHILD_SIZE = 32 * 1024 * 1024
MAX_PAGE_NODES = 100_000
_SWF_MAGICS = (b"FWS", b"CWS", b"ZWS")


@dataclass
class PdfScan:
    """Everything parsed once from the file; the extractors read it."""

    data: bytes
    deadline: Deadline
    header_offset: int = 0
    header: str | None = None
    raw: KeywordCounts = field(default_factory=KeywordCounts)
    hidden: KeywordCounts = field(default_factory=KeywordCounts)
    doc: PdfDocument | None = None
    trailer: dict[str, Any] = field(default_factory=dict)
    encrypted: bool = False
    decoded_streams: list[bytes] = field(default_factory=list)
    budget: DecodeBudget = field(default_factory=lambda: DecodeBudget(DECODE_BUDGET))
    anomalies: list[str] = field(default_factory=list)

    def count(self, keyword: str) -> int:
        return self.raw.counts[keyword] + self.hidden.counts[keyword]


def parse(data: bytes, deadline: Deadline) -> PdfScan:
    scan = PdfScan(data, deadline)
    scan_start, scan.header = find_header(data)
    if scan.header is None:
        scan.anomalies.append("no %PDF header in the first 1024 bytes")
    else:
        scan.header_offset = data.find(b"%PDF", 0, 1024)
        if scan.header_offset > 0:
            scan.anomalies.append(f"%PDF header at offset {scan.header_offset}")
    scan.raw = count_keywords(data, scan_start)
    scan.doc = PdfDocument(data, scan.header_offset, deadline)
    scan.trailer = scan.doc.trailer()
    scan.encrypted = "Encrypt" in scan.trailer or scan.raw.counts["/Encrypt"] > 0
    if scan.encrypted:
        scan.anomalies.append("encrypted: object streams and embedded files not decoded")
    else:
        scan.decoded_streams = scan.doc.expand_object_streams(scan.budget, deadline)
        for content in scan.decoded_streams:
            scan.hidden.add(count_keywords(content, names_only=True))
    scan.anomalies.extend(scan.doc.anomalies)
    return scan


# --------------------------------------------------------------------------- extractors


def page_count(scan: PdfScan) -> int:
    """/Count of the root page tree, else its leaves, else the number of /Page keywords."""
    doc = scan.doc
    if doc is not None:
        root = doc.resolve(scan.trailer.get("Root"))
        pages = doc.resolve(root.get("Pages")) if isinstance(root, dict) else None
        if isinstance(pages, dict):
            count = doc.resolve(pages.get("Count"))
            if isinstance(count, int) and 0 <= count < 10_000_000:
                return count
            leaves = _count_leaves(doc, pages, scan.deadline)
            if leaves:
                return leaves
    return scan.count("/Page")


def _count_leaves(doc: PdfDocument, pages: dict[str, Any], deadline: Deadline) -> int:
    """Walk /Kids (cycle-safe, bounded) and count the leaf page objects."""
    seen: set[int] = set()
    stack: list[Any] = list(pages.get("Kids") or [])[:MAX_PAGE_NODES]
    leaves = 0
    while stack and len(seen) < MAX_PAGE_NODES:
        ref = stack.pop()
        if not isinstance(ref, Ref) or ref.num in seen:
            continue
        seen.add(ref.num)
        if len(seen) % 256 == 0:
            deadline.check()
        node = doc.resolve(ref)
        if not isinstance(node, dict):
            continue
        kids = node.get("Kids")
        if node.get("Type") == "Pages" or isinstance(kids, list):
            stack.extend(kids[:MAX_PAGE_NODES] if isinstance(kids, list) else [])
        else:
            leaves += 1
    return leaves


def extract_pdf_info(scan: PdfScan, report: dict[str, Any]) -> None:
    count = scan.count
    info: dict[str, Any] = {
        "acroform": count("/AcroForm"),
        "autoaction": count("/AA"),
        "embedded_file": count("/EmbeddedFile"),
        "encrypted": int(scan.encrypted),
        "flash": count("/RichMedia"),
        "header": scan.header or "",
        "javascript": count("/JavaScript"),
        "jbig2_compression": count("/JBIG2Decode"),
        "js": count("/JS"),
        "num_endobj": count("endobj"),
        "num_endstream": count("endstream"),
        "num_launch_actions": count("/Launch"),
        "num_obj": count("obj"),
        "num_object_streams": count("/ObjStm"),
        "num_pages": page_count(scan),
        "num_stream": count("stream"),
        "openaction": count("/OpenAction"),
        "startxref": count("startxref"),
        "suspicious_colors": scan.raw.suspicious_colors + scan.hidden.suspicious_colors,
        "trailer": count("trailer"),
        "xfa": count("/XFA"),
        "xref": count("xref"),
    }
    hidden = {k: v for k, v in sorted(scan.hidden.counts.items()) if v}
    if hidden:
        info["object_stream_keywords"] = hidden
    hex_names = {k: v for k, v in sorted((scan.raw.hex_counts + scan.hidden.hex_counts).items()) if v}
    if hex_names:
        info["hex_escaped_names"] = hex_names
        scan.anomalies.append("hex-escaped keyword names: " + ", ".join(hex_names))
    report["pdf_info"] = info


def linearized(scan: PdfScan) -> bool:
    doc = scan.doc
    if doc is None or not doc.in_order:
        return False
    first = doc.in_order[0]
    return first.offset < 1024 + scan.header_offset and b"/Linearized" in first.body


def extract_exiftool(scan: PdfScan, report: dict[str, Any]) -> None:
    exif: dict[str, Any] = {"FileType": "PDF", "FileTypeExtension": "pdf", "MIMEType": "application/pdf"}
    version = re.match(r"%PDF-(\d+\.\d+)", scan.header or "")
    if version:
        exif["PDFVersion"] = version.group(1)
    exif["Linearized"] = "Yes" if linearized(scan) else "No"
    doc = scan.doc
    if doc is not None:
        encryption = encryption_description(doc, scan.trailer)
        if encryption:
            exif["Encryption"] = encryption
        info = info_metadata(doc, scan.trailer, scan.encrypted)
        xmp = xmp_metadata([scan.data, *scan.decoded_streams, *_metadata_streams(scan)])
        exif.update(merge_metadata(info, xmp))
    exif["PageCount"] = report.get("pdf_info", {}).get("num_pages", page_count(scan))
    report["exiftool"] = exif


def _metadata_streams(scan: PdfScan) -> list[bytes]:
    """Compressed /Metadata streams (uncompressed XMP is already visible in the raw bytes)."""
    doc = scan.doc
    if doc is None or scan.encrypted:
        return []
    found: list[bytes] = []
    for obj in doc.in_order:
        if obj.stream is None or b"Metadata" not in obj.body or b"Filter" not in obj.body:
            continue
        if obj.dict().get("Type") != "Metadata":
            continue
        try:
            found.append(doc.stream_data(obj, scan.budget, 100))
        except FilterError as exc:
            scan.anomalies.append(f"metadata stream {obj.num}: {exc}")
        if len(found) >= 4:
            break
    return found


def _embedded_candidates(scan: PdfScan) -> list[tuple[PdfObject, str]]:
    """Embedded file streams with a display name from their file specification."""
    doc = scan.doc
    if doc is None:
        return []
    names: dict[int, str] = {}
    for obj in list(doc.objects.values()):
        if b"/EF" not in obj.body and b"#" not in obj.body:
            continue
        spec = obj.dict()
        files = doc.resolve(spec.get("EF"))
        if not isinstance(files, dict):
            continue
        display = text_of(doc.resolve(spec.get("UF"))) or text_of(doc.resolve(spec.get("F")))
        for ref in files.values():
            if isinstance(ref, Ref):
                names.setdefault(ref.num, display or f"embedded_{ref.num}")
    found = []
    for num, obj in doc.objects.items():
        if obj.stream is None:
            continue
        if num in names or (b"EmbeddedFile" in obj.body and obj.dict().get("Type") == "EmbeddedFile"):
            found.append((obj, names.get(num, f"embedded_{num}")))
    return found


def extract_children(scan: PdfScan, report: dict[str, Any]) -> None:
    doc = scan.doc
    candidates = _embedded_candidates(scan)
    children: list[Child] = []
    if candidates and scan.encrypted:
        scan.anomalies.append(f"{len(candidates)} embedded file(s) not extracted: document is encrypted")
        candidates = []
    for obj, name in candidates:
        scan.deadline.check()
        if len(children) >= MAX_CHILDREN:
            scan.anomalies.append(f"more than {MAX_CHILDREN} embedded files; the rest ignored")
            break
        try:
            assert doc is not None
            content = doc.stream_data(obj, scan.budget, EMBEDDED_RATIO)
        except FilterError as exc:
            scan.anomalies.append(f"embedded file {obj.num}: {exc}")
            continue
        if len(content) > MAX_CHILD_SIZE:
            scan.anomalies.append(f"embedded file {obj.num}: larger than {MAX_CHILD_SIZE} bytes, skipped")
            continue
        children.append(Child(relationship="embedded_files", name=clean_text(name, 256), data=content))
    report["children"] = children


def startxref_is_valid(scan: PdfScan) -> bool | None:
    """Does the last ``startxref`` point at ``xref`` or at an xref stream object? None if absent."""
    data = scan.data
    matches = list(STARTXREF_RE.finditer(data, max(0, len(data) - 4096)))
    if not matches:
        matches = list(STARTXREF_RE.finditer(data))
    if not matches:
        return None
    offset = int(matches[-1].group(1))
    for base in {0, scan.header_offset}:
        pos = offset + base
        if pos >= len(data):
            continue
        chunk = data[pos : pos + 4096]
        stripped = chunk.lstrip(WHITESPACE)
        if stripped.startswith(b"xref"):
            return True
        if OBJ_RE.match(stripped) and b"XRef" in chunk:
            return True
    return False


def extract_tags(scan: PdfScan, report: dict[str, Any]) -> None:
    info = report.get("pdf_info", {})
    tags = ["pdf"]
    if info.get("js") or info.get("javascript"):
        tags.append("js-embedded")
    if info.get("autoaction") or info.get("openaction"):
        tags.append("autoaction")
    if info.get("acroform"):
        tags.append("acroform")
    if info.get("num_launch_actions"):
        tags.append("launch-action")
    children = report.get("children", [])
    if info.get("embedded_file") or children:
        tags.append("file-embedded")
    if scan.encrypted:
        tags.append("encrypted")
    if startxref_is_valid(scan) is False:
        tags.append("invalid-xref")
        scan.anomalies.append("startxref does not point at a cross-reference section")
    if info.get("flash") or any(child["data"][:3] in _SWF_MAGICS for child in children):
        tags.append("flash-embedded")
    report["tags"] = tags


EXTRACTORS = (extract_pdf_info, extract_exiftool, extract_children, extract_tags)


def analyse(data: bytes, deadline: Deadline | None = None) -> dict[str, Any]:
    """Analyse a PDF; never raises on hostile input (except :class:`AnalysisTimeout`)."""
    return analyse_scanned(data, deadline, parse, EXTRACTORS, "PDF", "pdf")
