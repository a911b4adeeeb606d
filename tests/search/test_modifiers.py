"""Every modifier on the real files of tests/data, on SQLite and PostgreSQL alike.

Each case compares the search result with an oracle computed in Python from the stored rows
(report attributes, columns, names), so both backends must return exactly the same sets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kinfile import search
from kinfile.errors import InvalidArgumentError
from kinfile.storage.store import FileRow
from tests.search.conftest import Loaded
from tests.search.corpus import BASE_DATE, HOUR

Predicate = Callable[[FileRow], bool]
DAY = 86400


def found(loaded: Loaded, query: str) -> set[str]:
    return {hit.sha256 for hit in search.iter_hits(loaded.services, query)}


def a(row: FileRow, *path: str) -> Any:
    value: Any = row.report
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def type_is(tag: str) -> Predicate:
    return lambda r: r.report.get("type_tag") == tag or tag in (r.report.get("type_tags") or [])


def lower_in(values: Any, wanted: str) -> bool:
    return any(isinstance(v, str) and v.lower() == wanted for v in values or [])


def imports_of(r: FileRow) -> list[str]:
    pe = a(r, "pe_info", "import_list") or []
    out = [i["library_name"] for i in pe] + [f for i in pe for f in i.get("imported_functions", [])]
    elf = r.report.get("elf_info") or {}
    out += elf.get("shared_libraries", []) + [i["name"] for i in elf.get("import_list", [])]
    return out


def sections_of(r: FileRow) -> list[str]:
    out = [s["name"] for s in a(r, "pe_info", "sections") or []]
    return out + [s["name"] for s in a(r, "elf_info", "section_list") or []]


STATIC_CASES: list[tuple[str, Predicate]] = [
    ("type:peexe", type_is("peexe")),
    ("type:pedll", type_is("pedll")),
    ("type:document", type_is("document")),
    ("type:js", type_is("javascript")),
    ("type:elf", type_is("elf")),
    ("size:10kb-", lambda r: r.columns["size"] < 10240),
    ("size:10kb+", lambda r: r.columns["size"] >= 10240),
    ("size:404", lambda r: r.columns["size"] == 404),
    ("positives:0", lambda r: True),
    ("p:1+", lambda r: False),
    ("submissions:2+", lambda r: r.columns["times_submitted"] >= 2),
    ("s:1", lambda r: r.columns["times_submitted"] == 1),
    ("sources:2+", lambda r: r.columns["unique_sources"] >= 2),
    ("name:clam", lambda r: any("clam" in n.lower() for n in r.names)),
    ("name:*.pdf", lambda r: any(n.lower().endswith(".pdf") for n in r.names)),
    ("name:CLAM.EXE", lambda r: any("clam.exe" in n.lower() for n in r.names)),
    ("tag:upx", lambda r: "upx" in r.report.get("tags", [])),
    ("tag:64bits", lambda r: "64bits" in r.report.get("tags", [])),
    ("tag:js-*", lambda r: any(t.startswith("js-") for t in r.report.get("tags", []))),
    ("section:.rsrc", lambda r: ".rsrc" in sections_of(r)),
    ("section:UPX0", lambda r: "UPX0" in sections_of(r)),
    ("imports:kernel32.dll", lambda r: lower_in(imports_of(r), "kernel32.dll")),
    ("imports:getprocaddress", lambda r: lower_in(imports_of(r), "getprocaddress")),
    ("exports:free", lambda r: lower_in([e["name"] for e in a(r, "elf_info", "export_list") or []], "free")),
    ("have:overlay", lambda r: bool(a(r, "pe_info", "overlay"))),
    ("have:telfhash", lambda r: bool(r.report.get("telfhash"))),
    ("have:signature_info", lambda r: bool(r.report.get("signature_info"))),
    ('magic:"pdf document"', lambda r: "pdf document" in (r.report.get("magic") or "").lower()),
    ("magika:pdf", lambda r: (r.report.get("magika") or "").lower() == "pdf"),
    ("packer:upx", lambda r: "UPX" in (r.report.get("packers") or {}).values()),
    ("signature:microsoft", lambda r: "microsoft" in str(r.report.get("signature_info", "")).lower()),
    (
        "lang:english",
        lambda r: (
            any("ENGLISH" in k for k in a(r, "pe_info", "resource_langs") or {})
            or "english" in (a(r, "exiftool", "LanguageCode") or "").lower()
            or any("English" in x for x in a(r, "rtf_info", "document_properties", "default_languages") or [])
        ),
    ),
    (
        'metadata:"Steering Committee Minutes"',
        # a phrase matches a whole value or every one of its words: "... Minutes (revised)" too
        lambda r: any(
            "Steering Committee Minutes" in (t or "")
            for t in (
                a(r, "openxml_info", "docprops", "core", "title"),
                a(r, "office_info", "summary_info", "title"),
            )
        ),
    ),
    ("creation_date:2020-01-01+", lambda r: (r.report.get("creation_date") or 0) >= 1577836800),
    (
        "generated:2020-01-01-",
        lambda r: r.report.get("creation_date") is not None and r.report["creation_date"] < 1577836800,
    ),
    (
        "subspan:100000000+",
        lambda r: (
            r.report.get("creation_date") is not None
            and r.columns["first_submission_date"] - r.report["creation_date"] >= 100_000_000
        ),
    ),
    (
        "fs:2026-05-28+ fs:2026-05-29-",
        lambda r: 1779926400 <= r.columns["first_submission_date"] < 1780012800,
    ),
    ("ls:2026-05-28", lambda r: 1779926400 <= r.columns["last_submission_date"] < 1780012800),
    ("fs:2026-05-28T05:00:00-", lambda r: r.columns["first_submission_date"] < 1779944400),
    ("la:1d+", lambda r: True),
    ("ls:36500d+", lambda r: True),
    ("type:pdf OR type:rtf", lambda r: type_is("pdf")(r) or type_is("rtf")(r)),
    ("NOT type:pdf", lambda r: not type_is("pdf")(r)),
    (
        "type:pe NOT (tag:64bits OR tag:overlay)",
        lambda r: type_is("pe")(r) and not {"64bits", "overlay"} & set(r.report.get("tags", [])),
    ),
    ("NOT have:imphash", lambda r: not a(r, "pe_info", "imphash")),
    ("clam", lambda r: any("clam" in n.lower() for n in r.names)),
    ("entity:file type:macho", type_is("macho")),
]


@pytest.mark.parametrize(("query", "predicate"), STATIC_CASES, ids=[c[0] for c in STATIC_CASES])
def test_modifier_on_real_files(loaded: Loaded, query: str, predicate: Predicate) -> None:
    expected = loaded.where(predicate)
    assert found(loaded, query) == expected


def test_nonempty_oracles(loaded: Loaded) -> None:
    """The cases above are not vacuous: most of them select some but not all files."""
    total = len(loaded.rows)
    sizes = [len(loaded.where(p)) for _q, p in STATIC_CASES]
    assert sum(1 for s in sizes if 0 < s < total) >= len(STATIC_CASES) - 6


HASH_COLUMNS = {
    "imphash": ("pe_info", "imphash"),
    "authentihash": ("authentihash",),
    "rich_pe_header_hash": ("pe_info", "rich_pe_header_hash"),
    "main_icon_dhash": ("main_icon", "dhash"),
    "main_icon_md5": ("main_icon", "raw_md5"),
    "telfhash": ("telfhash",),
    "md5": ("md5",),
    "sha1": ("sha1",),
    "sha256": ("sha256",),
}


@pytest.mark.parametrize("modifier", sorted(HASH_COLUMNS))
def test_hash_modifiers(loaded: Loaded, modifier: str) -> None:
    path = HASH_COLUMNS[modifier]
    values = sorted({a(r, *path) for r in loaded.rows.values() if a(r, *path)})
    assert values, modifier
    for value in values[:3]:
        expected = loaded.where(lambda r, v=value: a(r, *path) == v)
        assert found(loaded, f"{modifier}:{value.upper()}") == expected


def test_section_md5_and_resources(loaded: Loaded) -> None:
    row = next(r for r in loaded.rows.values() if a(r, "pe_info", "resource_details"))
    resource = row.report["pe_info"]["resource_details"][0]["sha256"]
    md5 = row.report["pe_info"]["sections"][0]["md5"]
    assert row.sha256 in found(loaded, f"peresource:{resource}")
    assert found(loaded, f"sectionmd5:{md5}") == loaded.where(
        lambda r: md5 in [s["md5"] for s in a(r, "pe_info", "sections") or []]
    )


def test_bare_hashes_are_a_lookup(loaded: Loaded) -> None:
    rows = sorted(loaded.rows.values(), key=lambda r: r.sha256)[:3]
    text = " ".join([rows[0].report["md5"], rows[1].report["sha1"], rows[2].sha256])
    assert found(loaded, text) == {r.sha256 for r in rows}
    assert found(loaded, rows[0].report["md5"].upper()) == {rows[0].sha256}


def test_entity_other_than_file_is_rejected(loaded: Loaded) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        search.search(loaded.services, "entity:url google")
    assert info.value.span == (7, 10)
    assert "entity:file" in info.value.message


def test_orders(loaded: Loaded) -> None:
    everything = set(loaded.rows)
    for name in search.ORDERS:
        for sign in "+-":
            hits = [h.sha256 for h in search.iter_hits(loaded.services, "size:1+", f"{name}{sign}")]
            assert set(hits) == everything and len(hits) == len(everything)

            def key(sha: str, name: str = name) -> tuple[Any, ...]:
                value = loaded.rows[sha].columns[name]
                return (value is not None, value if value is not None else 0, sha)

            assert hits == sorted(everything, key=key, reverse=(sign == "-")), name + sign


def test_relative_dates_are_pinned_by_the_cursor(loaded: Loaded) -> None:
    first = search.search(loaded.services, "fs:1d-", limit=2)
    assert first.cursor
    assert BASE_DATE + HOUR  # dates of the corpus are all older than a day
