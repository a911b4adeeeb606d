"""File-type identification: libmagic, Magika and cheap structural checks.

:func:`identify` returns the VirusTotal type attributes of one file (``magic``, ``magika``,
``type_tag``, ``type_description``, ``type_extension``, ``type_tags``), the type tags VT adds
to ``tags`` and ``format``, the analyser key the ingest pipeline dispatches to. The type
comes from structural sniffers run in order (``SNIFFERS``); the first that recognises the
bytes wins. Text without structural magic is named by shebang/markers, then by Magika's
label, then by the file name's extension. The rows themselves live in
:mod:`kinfile.formats.types`.

libmagic and Magika are loaded lazily, once per process (re-created after ``fork``), and
each degrades to a fallback when missing: nothing here raises on any input.
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from kinfile.formats.types import (
    ELF_MACHINES,
    ELF_TYPES,
    EXTENSION_TEXT_TYPES,
    MAGIC_NUMBERS,
    MAGIKA_TEXT_TYPES,
    ODF_MIMETYPES,
    OLE_CLSIDS,
    OLE_STREAMS,
    PE_MACHINES,
    PE_SUBSYSTEMS,
    TYPES,
    FileType,
)

logger = logging.getLogger(__name__)

MAGIC_WINDOW = 64 * 1024  # bytes given to libmagic, and scanned for text heuristics
MAX_ZIP_NAMES = 4096


class Sniff(NamedTuple):
    """What a structural sniffer found: a TYPES key, extra VT tags, a file(1)-like gist."""

    key: str
    tags: tuple[str, ...] = ()
    gist: str = ""


# --- small helpers ----------------------------------------------------------------------


def _u16(data: bytes, offset: int, endian: str = "<") -> int | None:
    if offset < 0 or offset + 2 > len(data):
        return None
    return int(struct.unpack_from(endian + "H", data, offset)[0])


def _u32(data: bytes, offset: int, endian: str = "<") -> int | None:
    if offset < 0 or offset + 4 > len(data):
        return None
    return int(struct.unpack_from(endian + "I", data, offset)[0])


# --- executables ------------------------------------------------------------------------


def sniff_mz(data: bytes, name: str | None) -> Sniff | None:
    if data[:2] not in (b"MZ", b"ZM"):
        return None
    e_lfanew = _u32(data, 0x3C)
    if e_lfanew is not None and data[e_lfanew : e_lfanew + 4] == b"PE\0\0":
        machine = _u16(data, e_lfanew + 4) or 0
        characteristics = _u16(data, e_lfanew + 22) or 0
        is64 = _u16(data, e_lfanew + 24) == 0x20B
        is_dll = bool(characteristics & 0x2000)
        subsystem = PE_SUBSYSTEMS.get(_u16(data, e_lfanew + 24 + 68) or 0, "")
        flavour = "(DLL) " if is_dll else ""
        flavour += f"({subsystem}) " if subsystem else ""
        gist = (
            f"PE32{'+' if is64 else ''} executable {flavour}"
            f"{PE_MACHINES.get(machine, f'machine 0x{machine:x}')}, for MS Windows"
        )
        key = ("pedll" if is_dll else "peexe") + ("64" if is64 else "")
        return Sniff(key, ("64bits",) if is64 else (), gist)
    if e_lfanew is not None and data[e_lfanew : e_lfanew + 2] == b"NE":
        is_dll = bool((_u16(data, e_lfanew + 0x0C) or 0) & 0x8000)
        return Sniff("nedll" if is_dll else "neexe", (), "MS-DOS executable, NE for MS Windows 3.x")
    return Sniff("mz", (), "MS-DOS executable")


def sniff_elf(data: bytes, name: str | None) -> Sniff | None:
    if data[:4] != b"\x7fELF":
        return None
    is64 = data[4:5] == b"\x02"
    endian = ">" if data[5:6] == b"\x02" else "<"
    e_type = ELF_TYPES.get(_u16(data, 16, endian) or 0, "unknown type")
    machine = ELF_MACHINES.get(_u16(data, 18, endian) or 0, "unknown arch")
    order = "MSB" if endian == ">" else "LSB"
    gist = f"ELF {'64' if is64 else '32'}-bit {order} {e_type}, {machine}"
    return Sniff("elf", ("64bits",) if is64 else (), gist)


_MACHO_THIN = {
    b"\xfe\xed\xfa\xce": False,
    b"\xce\xfa\xed\xfe": False,
    b"\xfe\xed\xfa\xcf": True,
    b"\xcf\xfa\xed\xfe": True,
}


def sniff_macho_or_class(data: bytes, name: str | None) -> Sniff | None:
    head = data[:4]
    if head in _MACHO_THIN:
        is64 = _MACHO_THIN[head]
        return Sniff("macho", ("64bits",) if is64 else (), f"Mach-O {'64-bit ' if is64 else ''}binary")
    if head in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf"):
        count = _u32(data, 4, ">")
        if count is None:
            return None
        if 0 < count < 40:  # fat Mach-O: arch count; Java class files have major version >= 45 here
            return Sniff("macho", (), f"Mach-O universal binary with {count} architectures")
        if head == b"\xca\xfe\xba\xbe":
            return Sniff("java-bytecode", (), "compiled Java class data")
    return None


# --- documents --------------------------------------------------------------------------


def sniff_pdf(data: bytes, name: str | None) -> Sniff | None:
    at = data.find(b"%PDF", 0, 1024)
    if at < 0:
        return None
    version = re.match(rb"%PDF-(\d\.\d)", data[at : at + 8])
    return Sniff("pdf", (), "PDF document" + (f", version {version[1].decode()}" if version else ""))


def sniff_rtf(data: bytes, name: str | None) -> Sniff | None:
    if not data.startswith(b"{\\rt"):
        return None
    return Sniff("rtf", (), "Rich Text Format data")


def _ole_key(data: bytes) -> tuple[str, tuple[str, ...]]:
    """Tell doc/xls/ppt/msi/outlook apart from the directory (olefile) and root CLSID."""
    try:
        import olefile

        if len(data) < olefile.MINIMAL_OLEFILE_SIZE:  # olefile would take shorter bytes as a path
            return "msoffice", ()
        with olefile.OleFileIO(data) as ole:
            clsid = (ole.root.clsid or "").upper() if ole.root else ""
            top = [entry.name for entry in (ole.root.kids if ole.root else [])][:MAX_ZIP_NAMES]
    except Exception as exc:  # hostile input: any failure means "generic OLE"
        logger.debug("olefile could not read directory: %s", exc)
        return "msoffice", ()
    if "EncryptedPackage" in top:
        return "msoffice", ("encrypted",)
    for stream in top:
        if stream in OLE_STREAMS:
            return OLE_STREAMS[stream], ()
    if clsid in OLE_CLSIDS:
        return OLE_CLSIDS[clsid], ()
    if any(n.startswith(("__substg1.0_", "__properties_version1.0")) for n in top):
        return "outlook", ()
    if any(n and all(0x3800 <= ord(ch) <= 0x4840 for ch in n) for n in top):  # MSI-encoded names
        return "msi", ()
    return "msoffice", ()


def sniff_ole(data: bytes, name: str | None) -> Sniff | None:
    if not data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return None
    key, tags = _ole_key(data)
    return Sniff(key, tags, "Composite Document File V2 Document")


# --- zip containers ---------------------------------------------------------------------


def _zip_central_names(data: bytes) -> list[str]:
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 65557))
    if eocd < 0:
        return []
    count = _u16(data, eocd + 10) or 0
    pos = _u32(data, eocd + 16) or 0
    names: list[str] = []
    for _ in range(min(count, MAX_ZIP_NAMES)):
        if data[pos : pos + 4] != b"PK\x01\x02":
            break
        name_len, extra_len, comment_len = (
            struct.unpack_from("<HHH", data, pos + 28) if pos + 34 <= len(data) else (0, 0, 0)
        )
        names.append(data[pos + 46 : pos + 46 + name_len].decode("utf-8", "replace"))
        pos += 46 + name_len + extra_len + comment_len
    return names


def _zip_local_names(data: bytes, limit: int = 64) -> list[str]:
    names: list[str] = []
    pos = 0
    while len(names) < limit and data[pos : pos + 4] == b"PK\x03\x04" and pos + 30 <= len(data):
        comp_size, _, name_len, extra_len = struct.unpack_from("<IIHH", data, pos + 18)
        names.append(data[pos + 30 : pos + 30 + name_len].decode("utf-8", "replace"))
        pos += 30 + name_len + extra_len + comp_size
    return names


def _zip_key(data: bytes, names: list[str]) -> str:
    name_set = set(names)
    if "[Content_Types].xml" in name_set:
        for prefix, key in (("word/", "docx"), ("xl/", "xlsx"), ("ppt/", "pptx")):
            if any(n.startswith(prefix) for n in names):
                return key
        if any(n.startswith(("Documents/", "FixedDocumentSequence")) for n in names):
            return "xps"
    if data[30:38] == b"mimetype":  # ODF: stored "mimetype" member comes first
        for mimetype, key in ODF_MIMETYPES.items():
            if data[38 : 38 + len(mimetype)] == mimetype:
                return key
    if "AndroidManifest.xml" in name_set and "classes.dex" in name_set:
        return "android"
    if "META-INF/MANIFEST.MF" in name_set or any(n.endswith(".class") for n in names[:256]):
        return "jar"
    return "zip"


def sniff_zip(data: bytes, name: str | None) -> Sniff | None:
    if data[:4] not in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return None
    names = _zip_central_names(data) or _zip_local_names(data)
    key = _zip_key(data, names)
    gist = "Zip archive data" if key == "zip" else TYPES[key].description
    return Sniff(key, (), gist)


# --- other magic numbers ----------------------------------------------------------------


def sniff_magic_numbers(data: bytes, name: str | None) -> Sniff | None:
    for offset, magic, key, gist in MAGIC_NUMBERS:
        if data[offset : offset + len(magic)] == magic:
            return Sniff(key, (), gist)
    if data[:3] == b"BZh" and data[3:4] in b"123456789" and data[3:4]:
        return Sniff("bzip", (), "bzip2 compressed data")
    if data[:2] == b"\x60\xea" and (_u16(data, 2) or 0xFFFF) <= 2600:
        return Sniff("arj", (), "ARJ archive data")
    if data[2:5] == b"-lh" and data[6:7] == b"-":
        return Sniff("lzh", (), "LHarc archive data")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return Sniff("webp", (), "RIFF (little-endian) data, Web/P image")
    if (
        data[:2] == b"BM"
        and len(data) >= 26
        and data[6:10] == b"\0\0\0\0"
        and (_u32(data, 14) or 0) in (12, 40, 52, 56, 64, 108, 124)
    ):
        return Sniff("bmp", (), "PC bitmap")
    if data[:4] == b"\0\0\1\0" and 0 < (_u16(data, 4) or 0) < 256 and data[9:10] == b"\0" and len(data) > 22:
        return Sniff("ico", (), "MS Windows icon resource")
    return None


SNIFFERS: tuple[Callable[[bytes, str | None], Sniff | None], ...] = (
    sniff_mz,
    sniff_elf,
    sniff_macho_or_class,
    sniff_ole,
    sniff_zip,
    sniff_rtf,
    sniff_magic_numbers,
    sniff_pdf,  # last among binaries: %PDF may sit anywhere in the first KiB
)


# --- text -------------------------------------------------------------------------------

_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))
_SHEBANGS = (
    ("python", "python"),
    ("perl", "perl"),
    ("php", "php"),
    ("node", "javascript"),
    ("ruby", "ruby"),
    ("pwsh", "powershell"),
    ("powershell", "powershell"),
)
_MAIL_HEADER = re.compile(
    rb"^(received|return-path|from|to|subject|date|message-id|mime-version|x-[\w-]+|delivered-to):",
    re.IGNORECASE | re.MULTILINE,
)


def _text_window(data: bytes) -> bytes | None:
    """The first window as UTF-8-ish bytes if the file looks like text, else None."""
    head = data[:MAGIC_WINDOW]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return head.decode("utf-16", "replace").encode("utf-8", "replace")
        except Exception:  # odd lengths, lone surrogates
            return None
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if not head or b"\0" in head:
        return None
    controls = sum(head.count(c) for c in _CONTROL)
    return head if controls * 100 <= len(head) else None


def _text_key_by_markers(text: bytes) -> str | None:
    first_line = text.split(b"\n", 1)[0].lower()
    if first_line.startswith(b"#!"):
        for needle, key in _SHEBANGS:
            if needle.encode() in first_line:
                return key
        return "shell"
    start = text.lstrip()[:1024].lower()
    if start.startswith(b"<?php"):
        return "php"
    if start.startswith((b"<!doctype html", b"<html")) or b"<html" in start[:256]:
        return "html"
    if start.startswith(b"<?xml"):
        return "xml"
    if len(_MAIL_HEADER.findall(text[:4096])) >= 3 and _MAIL_HEADER.match(text):
        return "email"
    return None


def _text_key(text: bytes, magika_label: str | None, name: str | None) -> str:
    by_marker = _text_key_by_markers(text)
    if by_marker:
        return by_marker
    if magika_label and magika_label in MAGIKA_TEXT_TYPES:
        return MAGIKA_TEXT_TYPES[magika_label]
    if name and "." in name:
        extension = name.rsplit(".", 1)[1].lower()
        if extension in EXTENSION_TEXT_TYPES:
            return EXTENSION_TEXT_TYPES[extension]
    return "text"


# --- engines: libmagic and Magika, lazily per process ------------------------------------

_engines: dict[str, Any] = {"pid": None}


def _engine(name: str, factory: Callable[[], Any]) -> Any:
    """One engine object per process; ``None`` (remembered) when it cannot be loaded."""
    if _engines["pid"] != os.getpid():  # first call, or we are a forked child
        _engines.clear()
        _engines["pid"] = os.getpid()
    if name not in _engines:
        try:
            _engines[name] = factory()
        except Exception as exc:  # missing library/model: degrade, never raise
            logger.warning("file-type engine %s unavailable: %s", name, exc)
            _engines[name] = None
    return _engines[name]


def _new_libmagic() -> Any:
    import magic

    return magic.Magic()


def _new_magika() -> Any:
    import onnxruntime
    from magika import Magika

    magika = Magika()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # ingest runs one worker process per core
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    magika._onnx_session = onnxruntime.InferenceSession(
        magika._model_path, sess_options=options, providers=["CPUExecutionProvider"]
    )
    return magika


def libmagic_description(data: bytes) -> str | None:
    engine = _engine("libmagic", _new_libmagic)
    if engine is None:
        return None
    try:
        return str(engine.from_buffer(data[:MAGIC_WINDOW]))
    except Exception as exc:  # libmagic errors on odd input
        logger.debug("libmagic failed: %s", exc)
        return None


def magika_label(data: bytes) -> str | None:
    """Magika's output label in lower case (``pebin``), or None when Magika is unavailable."""
    engine = _engine("magika", _new_magika)
    if engine is None:
        return None
    try:
        result = engine.identify_stream(io.BytesIO(data))
        return str(result.output.label).lower() if result.ok else None
    except Exception as exc:
        logger.debug("magika failed: %s", exc)
        return None


def _puremagic_description(data: bytes) -> str | None:
    try:
        import puremagic

        matches = puremagic.magic_string(data[:MAGIC_WINDOW])
        return str(matches[0].name) if matches else None
    except Exception:  # puremagic raises on no match
        return None


# --- identify ---------------------------------------------------------------------------


def _sniff(data: bytes, name: str | None) -> Sniff | None:
    for sniffer in SNIFFERS:
        try:
            found = sniffer(data, name)
        except Exception as exc:  # a sniffer bug must not stop identification
            logger.debug("%s failed: %s", sniffer.__name__, exc)
            continue
        if found is not None:
            return found
    return None


def _attributes(row: FileType, sniff_tags: tuple[str, ...], description: str | None = None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "type_tag": row.tag,
        "type_description": description or row.description,
        "type_tags": list(row.type_tags),
        "format": row.format,
        "tags": list(dict.fromkeys((*row.tags, *sniff_tags))),
    }
    if row.extension:
        attributes["type_extension"] = row.extension
    return attributes


MAGIKA_MODES = ("all", "auto", "off")


def identify(data: bytes, name: str | None = None, *, magika: str = "all") -> dict[str, Any]:
    """VirusTotal type attributes for ``data`` plus ``format`` (the analyser key) and ``tags``.

    ``name`` (the submitted file name) only breaks ties for text files. ``magika`` says when the
    Magika model runs: ``all`` files, ``auto`` only files the structural checks cannot name
    (text, scripts, unknown data; the model costs ~4 ms of CPU per file), or ``off``.
    Never raises.
    """
    try:
        return _identify(bytes(data), name, magika)
    except Exception as exc:  # last line of defence: identification never fails
        logger.warning("identify failed: %s", exc)
        return {"magic": "data", **_attributes(TYPES["unknown"], ())}


def _identify(data: bytes, name: str | None, mode: str) -> dict[str, Any]:
    if not data:
        return {"magic": "empty", **_attributes(TYPES["empty"], ())}
    found = _sniff(data, name)
    run_model = mode == "all" or (mode == "auto" and found is None)
    label = magika_label(data) if run_model else None
    text = None if found else _text_window(data)
    if found is not None:
        row, sniff_tags, gist = TYPES[found.key], found.tags, found.gist
    elif text is not None:
        row, sniff_tags, gist = TYPES[_text_key(text, label, name)], (), ""
    else:
        row, sniff_tags, gist = TYPES["unknown"], (), ""
    description = libmagic_description(data)
    if description is None:  # no libmagic: our own gist, then puremagic's best guess
        description = gist or (row.description if row.key not in ("unknown", "text") else None)
        description = description or _puremagic_description(data) or ("ASCII text" if text else "data")
    type_description = None
    if row.key == "unknown" and description not in ("data", ""):
        type_description = description.split(",", 1)[0]  # VT: libmagic's gist for unknown types
    result: dict[str, Any] = {"magic": description}
    if label:
        result["magika"] = label.upper()
    result.update(_attributes(row, sniff_tags, type_description))
    return result
