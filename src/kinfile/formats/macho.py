"""Mach-O analyser: VirusTotal's ``macho_info`` (one entry per architecture), ``exiftool``, tags.

Headers and load commands are read with ``struct`` (every read bounded by the slice, truncated
command tables kept up to the last whole command, with an anomaly); imported/exported symbols
come from LIEF, which decodes dyld bind info, chained fixups and export tries.
"""

from __future__ import annotations

import logging
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from kinfile.formats import macho_names as names
from kinfile.formats.common import NO_DEADLINE, Deadline, clean_text, run_extractors

logger = logging.getLogger(__name__)

MAX_ENTRIES = 256
"""Every list is capped like VirusTotal caps them."""
MAX_ARCHS = 16
"""Fat-binary slices analysed at most (real universal binaries have 2–4)."""
MAX_COMMANDS = 4096
"""Load commands walked at most per slice."""
FAT_MAGICS = {b"\xca\xfe\xba\xbe": 20, b"\xca\xfe\xba\xbf": 32}
THIN_MAGICS = {
    b"\xfe\xed\xfa\xce": (">", False),
    b"\xce\xfa\xed\xfe": ("<", False),
    b"\xfe\xed\xfa\xcf": (">", True),
    b"\xcf\xfa\xed\xfe": ("<", True),
}
JAVA_CLASS_MIN_VERSION = 30
"""A ``CAFEBABE`` file whose "arch count" is at least this is a Java class file (as ExifTool)."""

LC_SEGMENT, LC_SEGMENT_64, LC_UUID, LC_CODE_SIGNATURE, LC_BUILD_VERSION = 0x1, 0x19, 0x1B, 0x1D, 0x32
LC_ENCRYPTION_INFO, LC_ENCRYPTION_INFO_64, LC_MAIN = 0x21, 0x2C, 0x80000028
DYLIB_COMMANDS = {0xC, 0x80000018, 0x8000001F, 0x20, 0x80000023}


class MachOFormatError(ValueError):
    """Not a Mach-O image (or fat container), or its header is unreadable."""


@dataclass
class ArchContext:
    """One Mach-O image (a thin file, or one slice of a fat file) while it is analysed."""

    data: bytes
    endian: str
    is_64: bool
    header: tuple[int, ...]  # magic, cputype, cpusubtype, filetype, ncmds, sizeofcmds, flags
    deadline: Deadline
    commands: list[tuple[int, int, int]] = field(default_factory=list)  # (cmd, offset, size)
    entry: dict[str, Any] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)
    binary: Any = None

    def unpack(self, fmt: str, offset: int) -> tuple[Any, ...]:
        return struct.unpack_from(self.endian + fmt, self.data, offset)

    def cstring(self, start: int, end: int) -> str:
        raw = self.data[start:end].split(b"\x00", 1)[0]
        return raw.decode("utf-8", "replace")


def find_slices(data: bytes, anomalies: list[str]) -> tuple[list[bytes], bool]:
    """The Mach-O images in ``data`` and whether it is a fat (universal) container."""
    magic = data[:4]
    if magic in THIN_MAGICS:
        return [data], False
    entry_size = FAT_MAGICS.get(magic)
    if entry_size is None or len(data) < 8:
        raise MachOFormatError("no Mach-O magic")
    (count,) = struct.unpack_from(">I", data, 4)
    if count == 0 or count >= JAVA_CLASS_MIN_VERSION:
        raise MachOFormatError(f"fat header with {count} architectures (Java class file?)")
    if count > MAX_ARCHS:
        anomalies.append(f"fat header claims {count} architectures, {MAX_ARCHS} read")
    slices = []
    for i in range(min(count, MAX_ARCHS)):
        pos = 8 + i * entry_size
        if pos + entry_size > len(data):
            anomalies.append(f"fat architecture table truncated at entry {i}")
            break
        if entry_size == 20:
            _cpu, _sub, offset, size, _align = struct.unpack_from(">iiIII", data, pos)
        else:
            _cpu, _sub, offset, size, _align, _res = struct.unpack_from(">iiQQII", data, pos)
        if offset >= len(data):
            anomalies.append(f"fat slice {i} starts beyond the end of the file")
            continue
        if offset + size > len(data):
            anomalies.append(f"fat slice {i} truncated ({len(data) - offset} of {size} bytes)")
        slices.append(data[offset : offset + size])
    return slices, True


def parse_arch(data: bytes, deadline: Deadline) -> ArchContext:
    if data[:4] not in THIN_MAGICS:
        raise MachOFormatError("slice without Mach-O magic")
    endian, is_64 = THIN_MAGICS[data[:4]]
    header_size = 32 if is_64 else 28
    if len(data) < header_size:
        raise MachOFormatError("truncated Mach-O header")
    header = struct.unpack_from(endian + "IiiIIII", data, 0)
    ctx = ArchContext(data=data, endian=endian, is_64=is_64, header=header, deadline=deadline)
    _walk_commands(ctx, header_size)
    return ctx


def _walk_commands(ctx: ArchContext, pos: int) -> None:
    ncmds, sizeofcmds = ctx.header[4], ctx.header[5]
    if ncmds > MAX_COMMANDS:
        ctx.anomalies.append(f"{ncmds} load commands claimed, {MAX_COMMANDS} read")
    end_of_commands = pos + sizeofcmds
    for i in range(min(ncmds, MAX_COMMANDS)):
        if i % 256 == 0:
            ctx.deadline.check()
        if pos + 8 > len(ctx.data):
            ctx.anomalies.append(f"load commands truncated: {i} of {ncmds} in the file")
            return
        cmd, size = ctx.unpack("II", pos)
        if size < 8 or pos + size > len(ctx.data):
            ctx.anomalies.append(f"load command {i} ({names.load_command_name(cmd)}) has a bad size {size}")
            return
        ctx.commands.append((cmd, pos, size))
        pos += size
    if pos > end_of_commands:
        ctx.anomalies.append(f"load commands overrun sizeofcmds ({pos - end_of_commands} bytes)")


def extract_headers(ctx: ArchContext) -> None:
    magic, cpu_type, cpu_subtype, file_type, ncmds, sizeofcmds, flags = ctx.header
    ctx.entry["headers"] = {
        "magic": f"{magic:#x}",
        "cpu_type": names.cpu_type_name(cpu_type),
        "cpu_subtype": names.cpu_subtype_name(cpu_type, cpu_subtype),
        "file_type": names.file_type_name(file_type),
        "num_cmds": ncmds,
        "size_cmds": sizeofcmds,
        "flags": names.header_flag_names(flags),
    }


def extract_commands(ctx: ArchContext) -> None:
    ctx.entry["commands"] = [{"type": names.load_command_name(c)} for c, _, _ in ctx.commands[:MAX_ENTRIES]]


def _segment(ctx: ArchContext, offset: int, size: int, is_64: bool) -> dict[str, Any]:
    seg_fmt, sect_fmt = ("16sQQQQiiII", "16s16sQQIIIIIIII") if is_64 else ("16sIIIIiiII", "16s16sIIIIIIIII")
    seg_size, sect_size = struct.calcsize("=" + seg_fmt), struct.calcsize("=" + sect_fmt)
    if size < 8 + seg_size:
        raise MachOFormatError("segment command too short")
    segname, vmaddr, vmsize, fileoff, filesize, _maxprot, _initprot, nsects, _flags = ctx.unpack(
        seg_fmt, offset + 8
    )
    sections = []
    room = (size - 8 - seg_size) // sect_size
    if nsects > room:
        ctx.anomalies.append(
            f"segment {ctx.cstring(offset + 8, offset + 24)!r} claims {nsects} sections, {room} fit"
        )
    for i in range(min(nsects, room, MAX_ENTRIES)):
        raw = ctx.unpack(sect_fmt, offset + 8 + seg_size + i * sect_size)
        sect_flags = raw[8]
        sections.append(
            {
                "name": raw[0].split(b"\x00", 1)[0].decode("utf-8", "replace"),
                "type": names.section_type_name(sect_flags),
                "flags": names.section_attribute_names(sect_flags),
            }
        )
    return {
        "name": segname.split(b"\x00", 1)[0].decode("utf-8", "replace"),
        "vmaddr": f"{vmaddr:x}",
        "vmsize": f"{vmsize:x}",
        "fileoff": f"{fileoff:x}",
        "filesize": f"{filesize:x}",
        "sections": sections,
    }


def extract_segments(ctx: ArchContext) -> None:
    segments: list[dict[str, Any]] = []
    for cmd, offset, size in ctx.commands:
        if cmd in (LC_SEGMENT, LC_SEGMENT_64) and len(segments) < MAX_ENTRIES:
            segments.append(_segment(ctx, offset, size, cmd == LC_SEGMENT_64))
    ctx.entry["segments"] = segments


def extract_libs(ctx: ArchContext) -> None:
    libs: list[str] = []
    for cmd, offset, size in ctx.commands:
        if cmd in DYLIB_COMMANDS and size >= 24 and len(libs) < MAX_ENTRIES:
            (name_offset,) = ctx.unpack("I", offset + 8)
            if 8 <= name_offset < size:
                libs.append(ctx.cstring(offset + name_offset, offset + size))
    if libs:
        ctx.entry["libs"] = libs


def extract_identity(ctx: ArchContext) -> None:
    for cmd, offset, size in ctx.commands:
        if cmd == LC_UUID and size >= 24:
            ctx.entry["uuid"] = str(uuid.UUID(bytes=ctx.data[offset + 8 : offset + 24])).upper()
        elif cmd in names.VERSION_MIN_PLATFORMS and size >= 16:
            version, sdk = ctx.unpack("II", offset + 8)
            ctx.entry["min_version"] = {
                "platform": names.VERSION_MIN_PLATFORMS[cmd],
                "version": names.version_string(version),
                "sdk": names.version_string(sdk),
            }
        elif cmd == LC_BUILD_VERSION and size >= 24:
            platform, minos, sdk, _ntools = ctx.unpack("IIII", offset + 8)
            ctx.entry["build_version"] = {
                "platform": names.PLATFORMS.get(platform, str(platform)),
                "min_os": names.version_string(minos),
                "sdk": names.version_string(sdk),
            }
        elif cmd == LC_CODE_SIGNATURE and size >= 16:
            dataoff, datasize = ctx.unpack("II", offset + 8)
            ctx.entry["signature"] = {
                "offset": dataoff,
                "size": datasize,
                "in_file": dataoff + datasize <= len(ctx.data),
            }
        elif cmd in (LC_ENCRYPTION_INFO, LC_ENCRYPTION_INFO_64) and size >= 20:
            ctx.entry["encrypted"] = bool(ctx.unpack("III", offset + 8)[2])
        elif cmd == LC_MAIN and size >= 16:
            ctx.entry["entry_point"] = ctx.unpack("Q", offset + 8)[0]


def _lief_binary(ctx: ArchContext) -> Any:
    try:
        import lief
    except ImportError:
        ctx.anomalies.append("lief not installed: no imports/exports")
        return None
    lief.logging.disable()
    fat = lief.MachO.parse(ctx.data)
    if fat is None or fat.size == 0:
        ctx.anomalies.append("LIEF could not parse the Mach-O image")
        return None
    return fat.at(0)


def _names(symbols: Any, deadline: Deadline) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for count, sym in enumerate(symbols):
        if count % 1024 == 0:
            deadline.check()
        name = sym.name
        if isinstance(name, bytes):  # LIEF gives bytes for a name that is not UTF-8
            name = clean_text(name, 512)
        if name and name not in seen:
            seen.add(name)
            out.append(name[:512])
            if len(out) >= MAX_ENTRIES:
                break
    return out


def extract_symbols(ctx: ArchContext) -> None:
    binary = _lief_binary(ctx)
    if binary is None:
        return
    imports = _names(binary.imported_symbols, ctx.deadline)
    exports = _names(binary.exported_symbols, ctx.deadline)
    if imports:
        ctx.entry["imports"] = imports
    if exports:
        ctx.entry["exports"] = exports


EXTRACTORS = (
    extract_headers,
    extract_commands,
    extract_segments,
    extract_libs,
    extract_identity,
    extract_symbols,
)


def _exiftool(archs: list[ArchContext], fat: bool) -> dict[str, Any]:
    first = archs[0].header
    label, ext = names.EXIF_FILE_TYPES.get(first[3], ("binary executable" if fat else "executable", ""))
    exif: dict[str, Any] = {"FileType": f"Mach-O {'fat ' if fat else ''}{label}"}
    if ext:
        exif["FileTypeExtension"] = ext
    exif["MIMEType"] = "application/octet-stream"
    cpu_types = [names.exif_cpu_type(a.header[1]) for a in archs]
    subtypes = [names.exif_cpu_subtype(a.header[1], a.header[2]) for a in archs]
    if fat:
        exif.update(CPUCount=len(archs), CPUType=cpu_types, CPUSubtype=subtypes)
    else:
        exif["CPUArchitecture"] = "64 bit" if archs[0].is_64 else "32 bit"
        exif["CPUByteOrder"] = "Little endian" if archs[0].endian == "<" else "Big endian"
        exif.update(CPUType=cpu_types[0], CPUSubtype=subtypes[0])
    exif["ObjectFileType"] = names.EXIF_OBJECT_TYPES.get(first[3], f"Unknown ({first[3]})")
    if not fat:
        exif["ObjectFlags"] = names.exif_flags(first[6])
    return exif


def analyse(data: bytes, deadline: Deadline | None = None) -> dict[str, Any]:
    """``macho_info`` for a thin or fat Mach-O file; hostile input yields anomalies, never raises."""
    deadline = deadline or NO_DEADLINE
    anomalies: list[str] = []
    try:
        slices, fat = find_slices(data, anomalies)
    except MachOFormatError as exc:
        return {"anomalies": [f"not a parseable Mach-O file: {exc}"]}
    archs: list[ArchContext] = []
    for index, image in enumerate(slices):
        try:
            ctx = parse_arch(image, deadline)
        except MachOFormatError as exc:
            anomalies.append(f"slice {index}: {exc}")
            continue
        run_extractors(EXTRACTORS, ctx, anomalies=ctx.anomalies)
        anomalies.extend(f"slice {index}: {a}" if fat else a for a in ctx.anomalies)
        archs.append(ctx)
    tags = {"macho"}
    if fat:
        tags.add("universal")
    if any(a.is_64 for a in archs):
        tags.add("64bits")
    if any("signature" in a.entry for a in archs):
        tags.add("signed")
    result: dict[str, Any] = {"tags": sorted(tags)}
    if archs:
        result["macho_info"] = [a.entry for a in archs]
        result["exiftool"] = _exiftool(archs, fat)
    if anomalies:
        result["anomalies"] = anomalies[:MAX_ENTRIES]
    return result
