"""The one table of file types kinfile reports, in VirusTotal's vocabulary.

Each :class:`FileType` row carries what VirusTotal shows for a type: ``type_tag``,
``type_description``, ``type_extension`` and ``type_tags``, plus the analyser key
(``format``) the ingest pipeline dispatches to and the type tags VirusTotal also puts in the
file's ``tags``. :func:`kinfile.formats.detect.identify` picks one row per file (by its
``key``); nothing else in kinfile should hard-code these strings.

``key`` is kinfile's own row name: it equals ``tag`` except where VirusTotal uses one tag
with several descriptions (``peexe`` is both ``Win32 EXE`` and ``Win64 EXE``).
"""

from __future__ import annotations

from dataclasses import dataclass

# Analyser keys (``format``) the pipeline dispatches to; ``None`` means generic analysis only.
FORMATS = ("pe", "pdf", "ole", "ooxml", "rtf", "elf", "macho", "archive")

_PE = ("executable", "windows", "win32", "pe")
_OFFICE = ("document", "msoffice")
_SOURCE = ("source",)


@dataclass(frozen=True, slots=True)
class FileType:
    key: str
    tag: str
    description: str
    extension: str | None
    type_tags: tuple[str, ...]
    format: str | None = None
    tags: tuple[str, ...] = ()


def _t(
    key: str,
    description: str,
    extension: str | None,
    type_tags: tuple[str, ...],
    format: str | None = None,
    tags: tuple[str, ...] = (),
    tag: str | None = None,
) -> FileType:
    return FileType(key, tag or key, description, extension, type_tags, format, tags)


_ROWS: tuple[FileType, ...] = (
    # --- executables -------------------------------------------------------------------
    _t("peexe", "Win32 EXE", "exe", (*_PE, "peexe"), "pe", ("peexe",)),
    _t("pedll", "Win32 DLL", "dll", (*_PE, "pedll"), "pe", ("pedll",)),
    _t("peexe64", "Win64 EXE", "exe", (*_PE, "peexe"), "pe", ("peexe", "64bits"), tag="peexe"),
    _t("pedll64", "Win64 DLL", "dll", (*_PE, "pedll"), "pe", ("pedll", "64bits"), tag="pedll"),
    _t("neexe", "Win16 NE executable", "exe", ("executable", "windows", "win16", "ne", "neexe")),
    _t("nedll", "Win16 NE DLL", "dll", ("executable", "windows", "win16", "ne", "nedll")),
    _t("mz", "DOS EXE", "exe", ("executable", "mz")),
    _t("elf", "ELF", "elf", ("executable", "linux", "elf"), "elf", ("elf",)),
    _t("macho", "Mach-O", "macho", ("executable", "apple", "mac", "macho"), "macho", ("macho",)),
    _t("java-bytecode", "Java Bytecode", "class", ("executable", "java", "java-bytecode")),
    _t("dex", "Android DEX", "dex", ("executable", "android", "dex")),
    _t("wasm", "WebAssembly", "wasm", ("executable", "wasm")),
    _t("msi", "Windows Installer", "msi", ("executable", "windows", "msi"), "ole", ("msi",)),
    _t("lnk", "Windows shortcut", "lnk", ("windows", "lnk"), None, ("lnk",)),
    # --- documents ---------------------------------------------------------------------
    _t("pdf", "PDF", "pdf", ("document", "pdf"), "pdf", ("pdf",)),
    _t("doc", "MS Word Document", "doc", (*_OFFICE, "text", "word", "doc"), "ole", ("doc",)),
    _t("xls", "MS Excel Spreadsheet", "xls", (*_OFFICE, "spreadsheet", "excel", "xls"), "ole", ("xls",)),
    _t(
        "ppt",
        "MS PowerPoint Presentation",
        "ppt",
        (*_OFFICE, "presentation", "powerpoint", "ppt"),
        "ole",
        ("ppt",),
    ),
    _t("msoffice", "MS Office Document", None, (*_OFFICE,), "ole", ("msoffice",)),
    _t("outlook", "Outlook", "msg", ("email", "outlook"), "ole", ("outlook",)),
    _t("docx", "Office Open XML Document", "docx", (*_OFFICE, "text", "word", "docx"), "ooxml", ("docx",)),
    _t(
        "xlsx",
        "Office Open XML Spreadsheet",
        "xlsx",
        (*_OFFICE, "spreadsheet", "excel", "xlsx"),
        "ooxml",
        ("xlsx",),
    ),
    _t(
        "pptx",
        "Office Open XML Presentation",
        "pptx",
        (*_OFFICE, "presentation", "powerpoint", "pptx"),
        "ooxml",
        ("pptx",),
    ),
    _t("rtf", "Rich Text Format", "rtf", (*_OFFICE, "text", "word", "rtf"), "rtf", ("rtf",)),
    _t("odt", "OpenDocument Text", "odt", ("document", "openoffice", "text", "odt"), "archive", ("odt",)),
    _t(
        "ods",
        "OpenDocument Spreadsheet",
        "ods",
        ("document", "openoffice", "spreadsheet", "ods"),
        "archive",
        ("ods",),
    ),
    _t(
        "odp",
        "OpenDocument Presentation",
        "odp",
        ("document", "openoffice", "presentation", "odp"),
        "archive",
        ("odp",),
    ),
    _t("xps", "XPS", "xps", ("document", "xps"), "archive", ("xps",)),
    _t("chm", "MS Compiled HTML Help", "chm", ("document", "chm"), None, ("chm",)),
    _t("email", "Email", "eml", ("email",)),
    _t("tnef", "Outlook TNEF", "dat", ("email", "tnef")),
    # --- archives ----------------------------------------------------------------------
    _t("zip", "ZIP", "zip", ("compressed", "zip"), "archive", ("zip",)),
    _t("jar", "JAR", "jar", ("executable", "java", "compressed", "zip", "jar"), "archive", ("jar",)),
    _t("android", "Android", "apk", ("executable", "mobile", "android", "apk"), "archive", ("apk",)),
    _t("7zip", "7ZIP", "7z", ("compressed", "7zip"), "archive", ("7zip",)),
    _t("rar", "RAR", "rar", ("compressed", "rar"), "archive", ("rar",)),
    _t("gzip", "GZIP", "gz", ("compressed", "gzip"), "archive", ("gzip",)),
    _t("bzip", "BZIP", "bz2", ("compressed", "bzip"), "archive", ("bzip",)),
    _t("xz", "XZ", "xz", ("compressed", "xz"), "archive", ("xz",)),
    _t("tar", "TAR", "tar", ("compressed", "tar"), "archive", ("tar",)),
    _t("cab", "CAB", "cab", ("compressed", "cab"), "archive", ("cab",)),
    _t("arj", "ARJ", "arj", ("compressed", "arj"), "archive", ("arj",)),
    _t("cpio", "CPIO", "cpio", ("compressed", "cpio"), "archive", ("cpio",)),
    _t("lzh", "LZH", "lzh", ("compressed", "lzh")),
    _t("zstd", "ZSTD", "zst", ("compressed", "zstd")),
    _t("mscompress", "MS Compress", None, ("compressed", "mscompress")),
    _t("isoimage", "ISO image", "iso", ("compressed", "isoimage"), None, ("iso",)),
    # --- scripts and markup (text) -----------------------------------------------------
    _t("powershell", "Powershell", "ps1", (*_SOURCE, "powershell", "ps1"), None, ("powershell",)),
    _t("javascript", "JavaScript", "js", (*_SOURCE, "javascript"), None, ("javascript",)),
    _t("vbs", "VBScript", "vbs", (*_SOURCE, "vbs"), None, ("vbs",)),
    _t("batch", "Batch", "bat", (*_SOURCE, "batch"), None, ("batch",)),
    _t("shell", "Shell script", "sh", (*_SOURCE, "shell"), None, ("shell",)),
    _t("python", "Python", "py", (*_SOURCE, "python"), None, ("python",)),
    _t("perl", "Perl", "pl", (*_SOURCE, "perl"), None, ("perl",)),
    _t("php", "PHP", "php", (*_SOURCE, "php"), None, ("php",)),
    _t("ruby", "Ruby", "rb", (*_SOURCE, "ruby"), None, ("ruby",)),
    _t("c", "C", "c", (*_SOURCE, "c"), None, ("c",)),
    _t("html", "HTML", "html", ("internet", "html"), None, ("html",)),
    _t("xml", "XML", "xml", ("internet", "xml"), None, ("xml",)),
    _t("json", "JSON", "json", ("text", "json")),
    _t("text", "Text", "txt", ("text",)),
    # --- media -------------------------------------------------------------------------
    _t("png", "PNG", "png", ("image", "png")),
    _t("jpeg", "JPEG", "jpg", ("image", "jpeg")),
    _t("gif", "GIF", "gif", ("image", "gif")),
    _t("bmp", "BMP", "bmp", ("image", "bmp")),
    _t("ico", "ICO", "ico", ("image", "ico")),
    _t("tiff", "TIFF", "tif", ("image", "tiff")),
    _t("webp", "WEBP", "webp", ("image", "webp")),
    _t("flash", "Flash", "swf", ("multimedia", "flash")),
    # --- fallbacks ---------------------------------------------------------------------
    _t("empty", "Empty file", None, ("empty",)),
    _t("unknown", "unknown", None, ()),
)

TYPES: dict[str, FileType] = {row.key: row for row in _ROWS}

# Magika output label -> TYPES key, used to name text files (scripts, markup) that have no
# structural magic. Only text labels are listed: binary types are decided structurally.
MAGIKA_TEXT_TYPES: dict[str, str] = {
    "powershell": "powershell",
    "javascript": "javascript",
    "typescript": "javascript",
    "vba": "vbs",
    "batch": "batch",
    "shell": "shell",
    "python": "python",
    "perl": "perl",
    "php": "php",
    "ruby": "ruby",
    "c": "c",
    "html": "html",
    "mht": "html",
    "asp": "html",
    "xml": "xml",
    "svg": "xml",
    "rdf": "xml",
    "json": "json",
    "eml": "email",
    "rtf": "rtf",
}

# File-name extension -> TYPES key, the last hint for text files Magika leaves as plain text.
EXTENSION_TEXT_TYPES: dict[str, str] = {
    "ps1": "powershell",
    "psm1": "powershell",
    "js": "javascript",
    "jse": "javascript",
    "vbs": "vbs",
    "vbe": "vbs",
    "vba": "vbs",
    "bat": "batch",
    "cmd": "batch",
    "sh": "shell",
    "bash": "shell",
    "py": "python",
    "pyw": "python",
    "pl": "perl",
    "pm": "perl",
    "php": "php",
    "rb": "ruby",
    "htm": "html",
    "html": "html",
    "hta": "html",
    "xml": "xml",
    "json": "json",
    "eml": "email",
}


# --- structural identification data (used by kinfile.formats.detect) ---------------------

PE_MACHINES = {
    0x14C: "Intel 80386",
    0x8664: "x86-64",
    0xAA64: "Aarch64",
    0x1C0: "ARM",
    0x1C4: "ARMv7 Thumb",
    0x200: "Intel Itanium",
    0xEBC: "EFI byte code",
}
PE_SUBSYSTEMS = {
    1: "native",
    2: "GUI",
    3: "console",
    10: "EFI application",
    11: "EFI boot service driver",
    12: "EFI runtime driver",
}
ELF_MACHINES = {
    3: "Intel 80386",
    8: "MIPS",
    20: "PowerPC",
    21: "64-bit PowerPC",
    22: "IBM S/390",
    40: "ARM",
    62: "x86-64",
    183: "ARM aarch64",
    243: "UCB RISC-V",
}
ELF_TYPES = {1: "relocatable", 2: "executable", 3: "shared object", 4: "core file"}
OLE_CLSIDS = {
    "00020906-0000-0000-C000-000000000046": "doc",
    "00020900-0000-0000-C000-000000000046": "doc",
    "00020810-0000-0000-C000-000000000046": "xls",
    "00020820-0000-0000-C000-000000000046": "xls",
    "64818D10-4F9B-11CF-86EA-00AA00B929E8": "ppt",
    "000C1084-0000-0000-C000-000000000046": "msi",
    "000C1086-0000-0000-C000-000000000046": "msi",
    "000C1082-0000-0000-C000-000000000046": "msi",
}
OLE_STREAMS = {"WordDocument": "doc", "Workbook": "xls", "Book": "xls", "PowerPoint Document": "ppt"}
ODF_MIMETYPES = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
}
# Magic numbers: (offset, magic, TYPES key, file(1)-like gist), first match wins.
MAGIC_NUMBERS: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"7z\xbc\xaf\x27\x1c", "7zip", "7-zip archive data"),
    (0, b"Rar!\x1a\x07", "rar", "RAR archive data"),
    (0, b"\x1f\x8b\x08", "gzip", "gzip compressed data"),
    (0, b"\xfd7zXZ\x00", "xz", "XZ compressed data"),
    (0, b"MSCF\0\0\0\0", "cab", "Microsoft Cabinet archive data"),
    (257, b"ustar", "tar", "POSIX tar archive"),
    (0, b"070701", "cpio", "ASCII cpio archive (SVR4 with no CRC)"),
    (0, b"070702", "cpio", "ASCII cpio archive (SVR4 with CRC)"),
    (0, b"070707", "cpio", "ASCII cpio archive (pre-SVR4 or odc)"),
    (0, b"\x28\xb5\x2f\xfd", "zstd", "Zstandard compressed data"),
    (0, b"SZDD\x88\xf0\x27\x33", "mscompress", "MS Compress archive data, SZDD variant"),
    (0, b"KWAJ\x88\xf0\x27\xd1", "mscompress", "MS Compress archive data, KWAJ variant"),
    (0x8001, b"CD001", "isoimage", "ISO 9660 CD-ROM filesystem data"),
    (0, b"L\0\0\0\x01\x14\x02\0\0\0\0\0\xc0\0\0\0\0\0\0F", "lnk", "MS Windows shortcut"),
    (0, b"ITSF\x03\0\0\0", "chm", "MS Windows HtmlHelp Data"),
    (0, b"\x78\x9f\x3e\x22", "tnef", "Transport Neutral Encapsulation Format"),
    (0, b"dex\n", "dex", "Dalvik dex file"),
    (0, b"\0asm", "wasm", "WebAssembly (wasm) binary module"),
    (0, b"\x89PNG\r\n\x1a\n", "png", "PNG image data"),
    (0, b"\xff\xd8\xff", "jpeg", "JPEG image data"),
    (0, b"GIF87a", "gif", "GIF image data, version 87a"),
    (0, b"GIF89a", "gif", "GIF image data, version 89a"),
    (0, b"II*\0", "tiff", "TIFF image data, little-endian"),
    (0, b"MM\0*", "tiff", "TIFF image data, big-endian"),
    (0, b"FWS", "flash", "Macromedia Flash data"),
    (0, b"CWS", "flash", "Macromedia Flash data (compressed)"),
    (0, b"ZWS", "flash", "Macromedia Flash data (LZMA compressed)"),
)
