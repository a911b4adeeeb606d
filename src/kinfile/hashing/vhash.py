"""vhash: kinfile's documented structural feature hash (VirusTotal's own vhash is not public).

``compute_vhash(attributes)`` reads the report attributes the format analysers produce and
returns ``"<type><version>_<20 hex digits>"`` (e.g. ``pe1_3f0c...``) or ``None`` for types it
does not cover. Per file type an ordered tuple of extractors yields ``(name, value)`` features
(sorted sets, log2-bucketed counts, no volatile fields, packer structure explicit); they are
joined into one canonical string, ``pe1|k=dll|ss=windows gui|...``, whose blake2b digest is the
hash. The prefix carries the type and the feature-set version: changing what a type's features
are means bumping its version (and ``SCHEMA_VERSION`` so ``kinfile reanalyse`` recomputes), and
old and new values can never collide. docs/vhash.md lists every feature and why.

Pure: no I/O, no storage; the pipeline calls it after the format analyser.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kinfile.hashing import vhash_docs, vhash_pe, vhash_unix
from kinfile.hashing.vhash_common import Extractor, Feature

logger = logging.getLogger(__name__)

DIGEST_BYTES = 10


@dataclass(frozen=True)
class VhashType:
    prefix: str  # type and feature-set version, e.g. "pe1"
    applies: Callable[[dict[str, Any]], bool]
    extractors: tuple[Extractor, ...]


def _has(key: str) -> Callable[[dict[str, Any]], bool]:
    return lambda attrs: bool(attrs.get(key))


TYPES: tuple[VhashType, ...] = (
    # .NET first: an assembly also has pe_info, but its identity is in the CLR metadata.
    VhashType("net1", _has("dot_net_assembly"), vhash_pe.NET_EXTRACTORS),
    VhashType("pe1", _has("pe_info"), vhash_pe.PE_EXTRACTORS),
    VhashType("pdf1", _has("pdf_info"), vhash_docs.PDF_EXTRACTORS),
    VhashType("ole1", _has("office_info"), vhash_docs.OLE_EXTRACTORS),
    VhashType("rtf1", _has("rtf_info"), vhash_docs.RTF_EXTRACTORS),
    VhashType("oox1", _has("openxml_info"), vhash_docs.OOXML_EXTRACTORS),
    VhashType("elf1", _has("elf_info"), vhash_unix.ELF_EXTRACTORS),
    VhashType("macho1", _has("macho_info"), vhash_unix.MACHO_EXTRACTORS),
)
PREFIXES = frozenset(t.prefix for t in TYPES)


def vhash_type(attributes: dict[str, Any]) -> VhashType | None:
    if not isinstance(attributes, dict):
        return None
    return next((t for t in TYPES if t.applies(attributes)), None)


def vhash_features(attributes: dict[str, Any]) -> tuple[str, list[Feature]] | None:
    """The type prefix and the ordered features of a report, or ``None`` when not covered."""
    kind = vhash_type(attributes)
    if kind is None:
        return None
    features: list[Feature] = []
    for extract in kind.extractors:
        features.extend(extract(attributes))
    return kind.prefix, features


def canonical(prefix: str, features: list[Feature]) -> str:
    return "|".join([prefix, *(f"{name}={value}" for name, value in features)])


def compute_vhash(attributes: dict[str, Any]) -> str | None:
    """``"<prefix>_<hex>"`` for a PE, .NET, PDF, OLE2, RTF, OOXML, ELF or Mach-O report, else None."""
    try:
        found = vhash_features(attributes)
    except Exception:  # a malformed stored report must never break ingest or reanalysis
        logger.exception("vhash feature extraction failed")
        return None
    if found is None:
        return None
    prefix, features = found
    digest = hashlib.blake2b(canonical(prefix, features).encode("utf-8", "replace"), digest_size=DIGEST_BYTES)
    return f"{prefix}_{digest.hexdigest()}"


def is_vhash(value: str) -> bool:
    """Whether ``value`` looks like a kinfile vhash (any type, any version)."""
    prefix, sep, digest = value.partition("_")
    return bool(sep) and prefix[:1].isalpha() and len(digest) == 2 * DIGEST_BYTES and _is_hex(digest)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
