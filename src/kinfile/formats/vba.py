"""VBA macro extraction and keyword scan, shared by the OLE2 and OOXML analysers.

The reference implementation is oletools' ``olevba``: :class:`olevba.VBA_Parser` finds the VBA
projects (also inside PowerPoint 97 streams and orphan directory entries), decompresses the module
sources, and :class:`olevba.VBA_Scanner` produces the ``(type, keyword, description)`` triples
olevba prints. We only call the expensive parts when ``detect_vba_macros`` says there is a project,
and we never run the P-code disassembler (``pcodedmp``) for speed, so VBA stomping is not detected.

Output (merged into ``office_info`` / ``openxml_info`` by the callers)::

    {"macros": [{"name", "stream_path", "subfilename", "vba_filename", "type", "length",
                 "code_size", "auto_exec", "patterns", "properties"}],
     "auto_exec": [{"keyword", "description"}], "suspicious": [...], "iocs": [{"type", "value"}]}
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
from typing import Any

from kinfile.formats.common import NO_DEADLINE, AnalysisTimeout, Child, Deadline, clean_text

logger = logging.getLogger(__name__)

MAX_ITEMS = 256
MAX_SCAN_CHARS = 2_000_000  # VBA source characters scanned per module / in total
MAX_PROJECT_STREAM = 64 * 1024

# olevba "Suspicious" description -> capability tag, in the spirit of VirusTotal's document tags.
CAPABILITY_TAGS: dict[str, str] = {
    "May run an executable file or a system command": "run-file",
    "May run an application (if combined with CreateObject)": "run-file",
    "May run PowerShell commands": "powershell",
    "May run an executable file or a system command using PowerShell": "powershell",
    "May execute file or a system command through WMI": "calls-wmi",
    "May create an OLE object": "create-ole",
    "May get an OLE object with a running instance": "create-ole",
    "May create an OLE object using PowerShell": "create-ole",
    "May create a text file": "create-file",
    "May write to a file (if combined with Open)": "write-file",
    "May copy a file": "copy-file",
    "May download files from the Internet": "download",
    "May download files from the Internet using PowerShell": "download",
    "May inject code into another process": "code-injection",
    "May run a shellcode in memory": "code-injection",
    "May enumerate application windows (if combined with Shell.Application object)": "enum-windows",
    "May read or write registry keys": "registry",
    "May attempt to disable VBA macro security and Protected View": "disable-macro-security",
    "May attempt to modify the VBA code (self-modification)": "self-modifying",
    "May run an Excel 4 Macro (aka XLM/XLF) from VBA": "xlm-from-vba",
}


def empty_report() -> dict[str, Any]:
    return {"macros": [], "auto_exec": [], "suspicious": [], "iocs": []}


def _document_module_names(parser: Any) -> set[str]:
    """Names of ``Document=`` modules (ThisDocument, Sheet1...) from each PROJECT stream."""
    names: set[str] = set()
    parsers = [parser, *list(getattr(parser, "ole_subfiles", None) or [])[:MAX_ITEMS]]
    for sub in parsers:
        ole = getattr(sub, "ole_file", None)
        if ole is None:
            continue
        try:
            projects = sub.find_vba_projects() or []
        except Exception:  # noqa: BLE001 - hostile structure, best effort only
            continue
        for _root, project_path, _dir in projects[:16]:
            try:
                raw = ole.openstream(project_path).read(MAX_PROJECT_STREAM)
            except Exception:  # noqa: BLE001
                continue
            for line in raw.decode("latin-1").splitlines():
                key, _, value = line.strip().partition("=")
                if key == "Document" and value:
                    names.add(value.split("/", 1)[0].lower())
    return names


def _stream_size(parser: Any, stream_path: str) -> int | None:
    parsers = [parser, *list(getattr(parser, "ole_subfiles", None) or [])[:MAX_ITEMS]]
    for sub in parsers:
        ole = getattr(sub, "ole_file", None)
        if ole is None:
            continue
        try:
            if ole.exists(stream_path):
                return int(ole.get_size(stream_path))
        except Exception:  # noqa: BLE001
            continue
    return None


def _module_type(vba_filename: str, module_name: str, documents: set[str]) -> str:
    ext = posixpath.splitext(vba_filename)[1].lower()
    if ext == ".bas":
        return "standard"
    if ext == ".frm":
        return "form"
    if ext == ".cls":
        return "document" if module_name.lower() in documents else "class"
    return "unknown"


def _scan(code: str) -> list[tuple[str, str, str]]:
    from oletools import olevba

    return list(olevba.VBA_Scanner(code[:MAX_SCAN_CHARS]).scan(False, False) or [])


def _properties(results: list[tuple[str, str, str]]) -> list[str]:
    kinds = {kind for kind, _, _ in results}
    props = []
    if "AutoExec" in kinds:
        props.append("auto-exec")
    if "Suspicious" in kinds:
        props.append("suspicious")
    if "IOC" in kinds:
        props.append("iocs")
    if kinds & {"Hex String", "Base64 String", "Dridex string", "VBA string"}:
        props.append("encoded-strings")
    return props


def _module_entry(
    parser: Any, module: tuple[Any, Any, Any, Any], documents: set[str]
) -> tuple[dict[str, Any], str]:
    subfilename, stream_path, vba_filename = (clean_text(v, 1024) if v else "" for v in module[:3])
    code = module[3] if isinstance(module[3], str) else ""
    name = posixpath.splitext(vba_filename)[0] if "." in vba_filename else vba_filename
    results = _scan(code)
    entry = {
        "name": name,
        "stream_path": stream_path,
        "subfilename": subfilename,
        "vba_filename": vba_filename,
        "type": _module_type(vba_filename, name, documents),
        "length": len(code),
        "code_size": _stream_size(parser, stream_path),
        "auto_exec": sorted({kw for kind, kw, _ in results if kind == "AutoExec"})[:MAX_ITEMS],
        "patterns": sorted({kw for kind, kw, _ in results if kind == "Suspicious"})[:MAX_ITEMS],
        "properties": _properties(results),
    }
    return entry, code


def _summarise(results: list[tuple[str, str, str]], report: dict[str, Any]) -> None:
    for kind, keyword, description in results:
        item = {"keyword": clean_text(keyword, 256), "description": clean_text(description, 512)}
        if kind == "AutoExec" and len(report["auto_exec"]) < MAX_ITEMS:
            report["auto_exec"].append(item)
        elif kind == "Suspicious" and len(report["suspicious"]) < MAX_ITEMS:
            report["suspicious"].append(item)
        elif kind == "IOC" and len(report["iocs"]) < MAX_ITEMS:
            report["iocs"].append({"type": item["description"], "value": item["keyword"]})


def _safe_child_name(vba_filename: str) -> str:
    base = vba_filename.replace("\\", "_").replace("/", "_").strip(". ") or "module"
    return f"vba/{base[:128]}"


def analyse_vba(
    data: bytes,
    filename: str = "document",
    deadline: Deadline | None = None,
) -> tuple[dict[str, Any], list[Child], list[str]]:
    """Find and analyse VBA macros in an OLE2 file (also PPT 97, or ``vbaProject.bin``).

    Returns ``(report, children, anomalies)``; ``report`` is :func:`empty_report` when no VBA
    project was found. Children are the module sources (``vba/<module>.bas``) as UTF-8 text.
    """
    deadline = deadline or NO_DEADLINE
    report = empty_report()
    children: list[Child] = []
    anomalies: list[str] = []
    try:
        from oletools import olevba
    except ImportError as exc:  # pragma: no cover - oletools is a declared dependency
        return report, children, [f"vba: oletools unavailable ({exc})"]
    try:
        parser = olevba.VBA_Parser(filename, data=data, disable_pcode=True)
    except Exception as exc:  # noqa: BLE001 - olevba raises FileOpenError and worse on junk
        return report, children, [f"vba: cannot open ({type(exc).__name__})"]
    try:
        parser.no_xlm = True  # XLM is detected by our own BIFF scan (cheaper, no BIFF plugin)
        parser.vba_stomping_detected = False  # P-code analysis needs a file on disk: not done
        if not parser.detect_vba_macros():
            return report, children, anomalies
        deadline.check()
        documents = _document_module_names(parser)
        all_code: list[str] = []
        total = 0
        for module in parser.extract_macros():
            deadline.check()
            if len(report["macros"]) >= MAX_ITEMS:
                anomalies.append("vba: more than 256 modules, truncated")
                break
            entry, code = _module_entry(parser, module, documents)
            if entry["subfilename"] == filename:
                entry["subfilename"] = ""
            report["macros"].append(entry)
            if total < MAX_SCAN_CHARS:
                all_code.append(code)
                total += len(code)
            children.append(
                {
                    "relationship": "embedded_files",
                    "name": _safe_child_name(entry["vba_filename"]),
                    "data": code.encode("utf-8", "replace"),
                }
            )
        try:
            for _, _, form_string in parser.extract_form_strings():
                if total >= MAX_SCAN_CHARS:
                    break
                all_code.append(form_string)
                total += len(form_string)
        except Exception:  # noqa: BLE001 - forms are a bonus
            anomalies.append("vba: could not read form strings")
        deadline.check()
        _summarise(_scan("\n".join(all_code)), report)
    except Exception as exc:
        if isinstance(exc, AnalysisTimeout):
            raise
        logger.debug("olevba failed", exc_info=True)
        anomalies.append(f"vba: extraction failed ({type(exc).__name__})")
    finally:
        with contextlib.suppress(Exception):
            parser.close()
    return report, children, anomalies


def vba_tags(report: dict[str, Any]) -> list[str]:
    """VirusTotal-style tags implied by a VBA report."""
    tags: list[str] = []
    if report.get("macros"):
        tags.append("macros")
    if report.get("auto_exec"):
        tags.append("auto-open")
    for item in report.get("suspicious", []):
        tag = CAPABILITY_TAGS.get(item["description"])
        if tag and tag not in tags:
            tags.append(tag)
    return tags
