"""A report's clue features: ``(feature_type, canonical value)`` pairs with VirusTotal-style names.

Pure functions of a report's attributes (no storage, no settings). Each extractor of
:data:`EXTRACTORS` reads one part of the report; :func:`extract` runs them all and returns the
sorted, de-duplicated pairs. Canonical values are lower-case, stripped and at most
:data:`MAX_VALUE` characters; lists that form one feature (export names, macro module names,
PDF actions) are sorted and joined with ``,`` / ``+`` (and replaced by ``sha256:<hex>`` of the
joined text when longer than that). docs/clues.md lists every feature type.

On storage a feature is the text ``"<TYPE>:<value>"`` (:func:`encode`) and, for mining, its
64-bit code (:func:`code`): the first 8 bytes of its sha256, signed little-endian.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from kinfile.jsontext import storable

logger = logging.getLogger(__name__)

MAX_VALUE = 400
MAX_TEXT = 512  # an encoded feature, "<TYPE>:<value>", as the side table holds it
MAX_PER_TYPE = 64  # values of one feature type per file (resources, dropped files, ...)
MAX_SECTIONS = 16  # section index features cover the first sections only

Feature = tuple[str, str]
Extractor = Callable[[dict[str, Any]], Iterable[Feature]]

PDF_ACTION_KEYS = (
    ("js", "js"),
    ("javascript", "javascript"),
    ("openaction", "openaction"),
    ("autoaction", "autoaction"),
    ("aa", "autoaction"),
    ("num_launch_actions", "launch"),
    ("launch", "launch"),
    ("embedded_file", "embedded_file"),
    ("embeddedfile", "embedded_file"),
    ("acroform", "acroform"),
    ("xfa", "xfa"),
    ("richmedia", "richmedia"),
    ("jbig2_compression", "jbig2"),
)
BEHAVIOUR_CONTAINERS = ("behaviour", "behaviour_summary", "behavior", "sandbox_behaviour")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def canonical(value: Any) -> str | None:
    """Lower-case stripped text of a scalar, capped; ``None`` for empty or non-scalar values."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value).strip().lower()
        return text[:MAX_VALUE] or None
    return None


def joined(values: Iterable[Any], sep: str = ",") -> str | None:
    """One canonical value for a set: sorted, de-duplicated, joined (hashed when too long)."""
    parts = sorted({c for c in (canonical(v) for v in values) if c})
    if not parts:
        return None
    text = sep.join(parts)
    if len(text) > MAX_VALUE:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def _many(kind: str, values: Iterable[Any]) -> list[Feature]:
    out: list[Feature] = []
    for value in values:
        text = canonical(value)
        if text:
            out.append((kind, text))
        if len(out) >= MAX_PER_TYPE:
            break
    return out


def vsize_range(size: int) -> str:
    """Power-of-two bucket ``"<low>-<high>"`` of a virtual size (``"0-0"`` for 0)."""
    if size <= 0:
        return "0-0"
    low = 1 << (size.bit_length() - 1)
    return f"{low}-{2 * low - 1}"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# -- PE ------------------------------------------------------------------------------------------
def extract_pe_sections(attrs: dict[str, Any]) -> list[Feature]:
    out: list[Feature] = []
    sections = _items(_dict(attrs.get("pe_info")).get("sections"))
    for index, section in enumerate(sections[:MAX_SECTIONS]):
        section = _dict(section)
        name = canonical(section.get("name"))
        if name is not None:
            out.append(("PE_SECTION_NAME_AT_INDEX", f"{index}:{name}"))
        size = _int(section.get("virtual_size"))
        if size is not None:
            out.append(("PE_SECTION_VSIZE_RANGE_AT_INDEX", f"{index}:{vsize_range(size)}"))
    return out


def extract_pe_hashes(attrs: dict[str, Any]) -> list[Feature]:
    pe = _dict(attrs.get("pe_info"))
    out = _many("PE_IMPHASH", [pe.get("imphash")])
    out += _many("PE_RICH_HEADER_HASH", [pe.get("rich_pe_header_hash")])
    out += _many("PE_RESOURCE_SHA256", (_dict(r).get("sha256") for r in _items(pe.get("resource_details"))))
    pdbs = (_dict(_dict(d).get("codeview")).get("name") for d in _items(pe.get("debug")))
    out += _many("PE_PDB_PATH", pdbs)
    exports = joined(_items(pe.get("exports")))
    if exports:
        out.append(("PE_EXPORTS_SET", exports))
    return out


def extract_signer(attrs: dict[str, Any]) -> list[Feature]:
    signers = _dict(attrs.get("signature_info")).get("signers")
    return _many("PE_SIGNER", [signers])


def extract_packers(attrs: dict[str, Any]) -> list[Feature]:
    packers = attrs.get("packers")
    values = _dict(packers).values() if isinstance(packers, dict) else _items(packers)
    names: list[str] = []
    for value in values:
        if isinstance(value, str):
            names += [part.strip() for part in value.split(",")]
    return _many("PACKER", names)


def extract_dotnet(attrs: dict[str, Any]) -> list[Feature]:
    assembly = _dict(attrs.get("dot_net_assembly"))
    return _many("DOTNET_ASSEMBLY_NAME", [assembly.get("assembly_name")])


def extract_elf(attrs: dict[str, Any]) -> list[Feature]:
    elf = _dict(attrs.get("elf_info"))
    libraries = joined(_items(elf.get("shared_libraries")))
    return [("ELF_SHARED_LIBRARIES_SET", libraries)] if libraries else []


# -- documents -----------------------------------------------------------------------------------
def extract_macros(attrs: dict[str, Any]) -> list[Feature]:
    out: list[Feature] = []
    for key in ("office_info", "openxml_info"):
        names = joined(_dict(m).get("name") for m in _items(_dict(attrs.get(key)).get("macros")))
        if names:
            out.append(("OLE_MACRO_MODULE_NAMES", names))
    return out[:1]


def extract_pdf_actions(attrs: dict[str, Any]) -> list[Feature]:
    pdf = _dict(attrs.get("pdf_info"))
    if not pdf:
        return []
    actions = {name for key, name in PDF_ACTION_KEYS if (_int(pdf.get(key)) or 0) > 0}
    combination = joined(actions, "+")
    return [("PDF_ACTIONS", combination)] if combination else []


def extract_rtf_objects(attrs: dict[str, Any]) -> list[Feature]:
    properties = _dict(_dict(attrs.get("rtf_info")).get("document_properties"))
    objects = [_dict(o) for o in _items(properties.get("objects"))]
    return _many("RTF_OBJECT_CLASS", (o.get("class") or o.get("ole1_class") for o in objects))


# -- imported behaviour ---------------------------------------------------------------------------
def _behaviour_sources(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """The report itself and any imported behaviour container (VT behaviour_summary names)."""
    return [attrs, *(_dict(attrs.get(key)) for key in BEHAVIOUR_CONTAINERS if attrs.get(key))]


def _names(values: Any, *keys: str) -> list[Any]:
    out: list[Any] = []
    for value in _items(values):
        if isinstance(value, dict):
            out.append(next((value[k] for k in keys if value.get(k)), None))
        else:
            out.append(value)
    return out


def extract_behaviour(attrs: dict[str, Any]) -> list[Feature]:
    out: list[Feature] = []
    for source in _behaviour_sources(attrs):
        dropped = _items(source.get("files_dropped"))
        out += _many("FILE_DROPPED_PATH", _names(dropped, "path"))
        out += _many("FILE_DROPPED_SHA256", [_dict(d).get("sha256") for d in dropped])
        out += _many("MUTEX", _names(source.get("mutexes_created"), "name", "value"))
        domains = _names(source.get("contacted_domains"), "id", "domain", "hostname")
        domains += _names(source.get("dns_lookups"), "hostname")
        out += _many("CONTACTED_DOMAIN", domains)
    return out


EXTRACTORS: tuple[Extractor, ...] = (
    extract_pe_sections,
    extract_pe_hashes,
    extract_signer,
    extract_packers,
    extract_dotnet,
    extract_elf,
    extract_macros,
    extract_pdf_actions,
    extract_rtf_objects,
    extract_behaviour,
)
FEATURE_TYPES = (
    "PE_SECTION_NAME_AT_INDEX",
    "PE_SECTION_VSIZE_RANGE_AT_INDEX",
    "PE_IMPHASH",
    "PE_RICH_HEADER_HASH",
    "PE_RESOURCE_SHA256",
    "PE_PDB_PATH",
    "PE_EXPORTS_SET",
    "PE_SIGNER",
    "PACKER",
    "DOTNET_ASSEMBLY_NAME",
    "ELF_SHARED_LIBRARIES_SET",
    "OLE_MACRO_MODULE_NAMES",
    "PDF_ACTIONS",
    "RTF_OBJECT_CLASS",
    "FILE_DROPPED_PATH",
    "FILE_DROPPED_SHA256",
    "MUTEX",
    "CONTACTED_DOMAIN",
)


# the top-level attributes each extractor reads (it finds nothing in a report without them)
READS: dict[Extractor, frozenset[str]] = {
    extract_pe_sections: frozenset({"pe_info"}),
    extract_pe_hashes: frozenset({"pe_info"}),
    extract_signer: frozenset({"signature_info"}),
    extract_packers: frozenset({"packers"}),
    extract_dotnet: frozenset({"dot_net_assembly"}),
    extract_elf: frozenset({"elf_info"}),
    extract_macros: frozenset({"office_info", "openxml_info"}),
    extract_pdf_actions: frozenset({"pdf_info"}),
    extract_rtf_objects: frozenset({"rtf_info"}),
    extract_behaviour: frozenset(
        {"files_dropped", "mutexes_created", "contacted_domains", "dns_lookups", *BEHAVIOUR_CONTAINERS}
    ),
}
_READ_KEYS = frozenset().union(*READS.values())


def extract(attrs: dict[str, Any]) -> list[Feature]:
    """Every clue feature of a report, sorted and de-duplicated."""
    if _READ_KEYS.isdisjoint(attrs):  # an imported detections-only report: nothing to read
        return []
    present = _READ_KEYS.intersection(attrs)
    found: set[Feature] = set()
    for extractor in EXTRACTORS:
        if present.isdisjoint(READS[extractor]):
            continue
        try:
            found.update(extractor(attrs))
        except Exception:  # a malformed imported report must not block the write
            logger.warning("clue feature extractor %s failed", extractor.__name__, exc_info=True)
    return sorted(found)


def encode(feature: Feature) -> str:
    """Storage text of a feature: ``"<TYPE>:<value>"``."""
    # a side value: as the databases hold it, within the column (PostgreSQL VARCHAR(512))
    return storable(f"{feature[0]}:{feature[1]}")[:MAX_TEXT]


def decode(text: str) -> Feature:
    kind, _, value = text.partition(":")
    return kind, value


def code(text: str) -> int:
    """The 64-bit mining code of an encoded feature."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little", signed=True)


def feature_texts(attrs: dict[str, Any]) -> set[str]:
    """Side-table values (``file_clue_features``)."""
    return {encode(f) for f in extract(attrs)}


def packed_codes(texts: Iterable[str]) -> bytes:
    """Sorted unique codes of encoded features as little-endian int64 bytes (``file_clue_codes``)."""
    codes = np.unique(np.fromiter((code(t) for t in texts), dtype=np.int64))
    return codes.astype("<i8").tobytes()


def feature_codes(attrs: dict[str, Any]) -> set[bytes]:
    """The one ``file_clue_codes`` value of a report (empty set when it has no features)."""
    texts = feature_texts(attrs)
    return {packed_codes(texts)} if texts else set()
