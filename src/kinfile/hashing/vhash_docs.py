"""vhash features of documents: PDF (``pdf1``), OLE2 (``ole1``), RTF (``rtf1``), OOXML (``oox1``).

Documents are described by their container structure and active content (keyword counts,
stream and part names, macro modules, embedded objects) in log2 buckets, plus the generator
family (producer or application without its version). Text content, metadata values (titles,
authors, dates) and exact sizes are left out: a re-saved or lightly edited document keeps its
vhash, a document with new active content does not. docs/vhash.md gives the reasons.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from kinfile.hashing.vhash_common import (
    Feature,
    as_dict,
    as_int,
    as_list,
    as_text,
    bucket,
    flag,
    joined,
)

NUMBERED = re.compile(r"\d+")
GENERATOR_WORD = re.compile(r"[a-z][a-z+\-_]*")

# pdf_info keys of active content and container structure, in canonical order
PDF_ACTIVE = (
    "js",
    "javascript",
    "openaction",
    "autoaction",
    "num_launch_actions",
    "embedded_file",
    "acroform",
    "xfa",
    "flash",
    "jbig2_compression",
    "suspicious_colors",
)


def generator(value: Any) -> str:
    """The first word of a producer/application string: ``"img2pdf 0.2.4"`` → ``"img2pdf"``."""
    found = GENERATOR_WORD.search(as_text(value))
    return found.group(0) if found else ""


def entry_name(value: Any) -> str:
    """An OLE/part name with numbers collapsed (``_1234567890`` object pools, ``slide12.xml``)."""
    return NUMBERED.sub("#", as_text(value))


# -- PDF -------------------------------------------------------------------------------------
def _pdf(attrs: dict[str, Any]) -> dict[str, Any]:
    return as_dict(attrs.get("pdf_info"))


def extract_pdf_active(attrs: dict[str, Any]) -> Iterator[Feature]:
    info = _pdf(attrs)
    yield "act", ";".join(f"{key}:{bucket(as_int(info.get(key)))}" for key in PDF_ACTIVE)


def extract_pdf_container(attrs: dict[str, Any]) -> Iterator[Feature]:
    info = _pdf(attrs)
    yield "enc", flag(as_int(info.get("encrypted")))
    yield "objstm", flag(as_int(info.get("num_object_streams")))
    yield "obj", bucket(as_int(info.get("num_obj")))
    yield "stream", bucket(as_int(info.get("num_stream")))
    yield "pages", bucket(as_int(info.get("num_pages")))


def extract_pdf_generator(attrs: dict[str, Any]) -> Iterator[Feature]:
    exif = as_dict(attrs.get("exiftool"))
    yield "gen", generator(exif.get("Producer") or exif.get("Creator") or exif.get("CreatorTool"))


PDF_EXTRACTORS = (extract_pdf_active, extract_pdf_container, extract_pdf_generator)


# -- OLE2 ------------------------------------------------------------------------------------
def _office(attrs: dict[str, Any]) -> dict[str, Any]:
    return as_dict(attrs.get("office_info"))


def extract_ole_kind(attrs: dict[str, Any]) -> Iterator[Feature]:
    info = _office(attrs)
    yield "ft", as_text(info.get("file_type"))
    yield "enc", as_text(as_dict(info.get("encryption")).get("method"))


def extract_ole_streams(attrs: dict[str, Any]) -> Iterator[Feature]:
    """Storage and stream names (numbers collapsed), and the log2 size of the largest stream."""
    entries = [as_dict(e) for e in as_list(_office(attrs).get("entries"))]
    yield (
        "st",
        joined(
            f"{as_text(e.get('type_literal'))[:2]}:{entry_name(e.get('decoded_name') or e.get('name'))}"
            for e in entries
            if as_text(e.get("type_literal")) != "root"
        ),
    )
    yield "big", bucket(max((as_int(e.get("size")) for e in entries), default=0))


def extract_ole_active(attrs: dict[str, Any]) -> Iterator[Feature]:
    info = _office(attrs)
    macros = [as_dict(m) for m in as_list(info.get("macros"))]
    yield "vba", joined(f"{as_text(m.get('type'))}:{entry_name(m.get('name'))}" for m in macros)
    yield "xlm", flag(info.get("xlm_macros"))
    yield "dde", flag(info.get("dde"))
    yield "emb", bucket(len(as_list(info.get("embedded_objects"))))


def extract_ole_generator(attrs: dict[str, Any]) -> Iterator[Feature]:
    yield "gen", generator(as_dict(_office(attrs).get("summary_info")).get("application_name"))


OLE_EXTRACTORS = (extract_ole_kind, extract_ole_streams, extract_ole_active, extract_ole_generator)


# -- RTF -------------------------------------------------------------------------------------
def _rtf(attrs: dict[str, Any]) -> dict[str, Any]:
    return as_dict(as_dict(attrs.get("rtf_info")).get("document_properties"))


def extract_rtf_header(attrs: dict[str, Any]) -> Iterator[Feature]:
    props = _rtf(attrs)
    yield "hdr", as_text(props.get("rtf_header"))
    yield "cs", as_text(props.get("default_character_set"))
    yield "cp", as_text(props.get("default_ansi_codepage"))
    yield "lang", ";".join(as_text(x) for x in as_list(props.get("default_languages")))


def extract_rtf_objects(attrs: dict[str, Any]) -> Iterator[Feature]:
    props = _rtf(attrs)
    objects = [as_dict(o) for o in as_list(props.get("objects"))]
    yield "obj", joined(f"{as_text(o.get('type'))}:{as_text(o.get('class'))}" for o in objects)
    yield "nobj", bucket(len(objects))
    for key in ("embedded_pictures", "embedded_drawings", "custom_xml_data_properties", "dos_stubs"):
        yield key[:6], bucket(as_int(props.get(key)))
    yield "hex", bucket(as_int(props.get("longest_hex_string")))
    yield "prot", flag(props.get("read_only_protection")) + flag(props.get("user_protection"))


def extract_rtf_size(attrs: dict[str, Any]) -> Iterator[Feature]:
    summary = as_dict(as_dict(attrs.get("rtf_info")).get("summary_info"))
    yield "pages", bucket(as_int(summary.get("number_of_pages")))


RTF_EXTRACTORS = (extract_rtf_header, extract_rtf_objects, extract_rtf_size)


# -- OOXML -----------------------------------------------------------------------------------
def _oox(attrs: dict[str, Any]) -> dict[str, Any]:
    return as_dict(attrs.get("openxml_info"))


def extract_oox_kind(attrs: dict[str, Any]) -> Iterator[Feature]:
    info = _oox(attrs)
    yield "ft", as_text(info.get("file_type"))
    yield "ct", joined(entry_name(c) for c in as_list(info.get("content_types")))


def extract_oox_relations(attrs: dict[str, Any]) -> Iterator[Feature]:
    rels = [as_dict(r) for r in as_list(_oox(attrs).get("rels"))]
    yield "rel", joined(as_text(r.get("type")) for r in rels)
    yield "ext", joined(as_text(as_dict(r).get("type")) for r in as_list(_oox(attrs).get("external_links")))


def extract_oox_active(attrs: dict[str, Any]) -> Iterator[Feature]:
    info = _oox(attrs)
    macros = [as_dict(m) for m in as_list(info.get("macros"))]
    yield "vba", joined(f"{as_text(m.get('type'))}:{entry_name(m.get('name'))}" for m in macros)
    yield "xlm", flag(info.get("xlm_macros"))
    yield "dde", flag(info.get("dde"))
    yield (
        "emb",
        joined(
            f"{as_text(o.get('kind'))}:{as_text(o.get('content_type'))}"
            for o in map(as_dict, as_list(info.get("embedded_objects")))
        ),
    )


def extract_oox_generator(attrs: dict[str, Any]) -> Iterator[Feature]:
    app = as_dict(as_dict(_oox(attrs).get("docprops")).get("app"))
    yield "gen", generator(app.get("Application"))


OOXML_EXTRACTORS = (extract_oox_kind, extract_oox_relations, extract_oox_active, extract_oox_generator)
