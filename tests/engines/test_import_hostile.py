"""Hostile values in imported reports (both backends): what a column or an index cannot hold
is fitted to it, never fatal for the import; a malformed verdict part is that line's error; the
API renders whatever a stored report keeps (lone surrogates, NaN).

Found by feeding mutated copies of the shared VT reports to the importer: before, a ``true``
type tag, a list where a text belongs, an integer beyond the column's range, a NUL in a label
(PostgreSQL) or a lone surrogate anywhere made the whole batch fail and stopped the import.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from kinfile.importer import Importer
from kinfile.settings import Settings
from kinfile.storage import avterms, schema, searchable
from kinfile.storage.store import Store
from tests.api.test_files_api import make_client


def _sha(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


COLUMNS = _sha("columns")
LABELS = _sha("labels")
HOSTILE: list[dict[str, Any]] = [
    {
        "type": "file",
        "id": COLUMNS,
        "attributes": {
            "type_tag": True,
            "type_description": ["a", "list"],
            "magic": {"an": "object"},
            "ssdeep": "3:a\x00b:c",
            "size": 2**70,
            "creation_date": 2**70,
            "reputation": 2**40,  # beyond PostgreSQL's INTEGER
            "vhash": "v" * 300,  # beyond its VARCHAR(128)
            "meaningful_name": "x\ud800y",
            "tags": ["ok", "nul\x00tag", "\udfff"],
            "popular_threat_classification": {
                "suggested_threat_label": "t" * 600,
                "popular_threat_category": [{"count": 2, "value": "c" * 200}],
                "popular_threat_name": [{"count": 2, "value": "fam\x00ily"}],
            },
            "last_analysis_results": {
                "Eng": {"category": "malicious", "engine_name": "Eng", "result": "Troj\x00an.Gen\ud800"},
                "Odd": 5,  # not an object: dropped, as v2 scans that are not objects are
            },
            "last_analysis_stats": {"malicious": 2**70},
        },
    },
    {"sha256": LABELS, "av_labels": [["Eng\x00One", "Worm\x00.Agent"], ["Two", "Worm.Agent!x\ud800"]]},
]
BAD = [
    (
        {"type": "file", "id": _sha("s"), "attributes": {"last_analysis_stats": True}},
        "last_analysis_stats is not an object",
    ),
    (
        {"type": "file", "id": _sha("y"), "attributes": {"crowdsourced_yara_results": ["x"]}},
        "crowdsourced_yara_results holds an entry that is not an object",
    ),
    (
        {"type": "file", "id": _sha("p"), "attributes": {"popular_threat_classification": [1]}},
        "popular_threat_classification is not an object",
    ),
]


def _search(client: TestClient, query: str) -> list[str]:
    r = client.get("/api/v3/intelligence/search", params={"query": query})
    assert r.status_code == 200, r.text
    return sorted(item["id"] for item in r.json()["data"])


def test_hostile_values_are_fitted_and_searchable(backend_settings: Settings) -> None:
    client, _key = make_client(backend_settings)
    lines = [json.dumps(v) for v in HOSTILE] + [json.dumps(v) for v, _m in BAD]
    r = client.post("/api/v3/kinfile/imports", content="\n".join(lines).encode())
    assert r.status_code == 200, r.text
    summary = r.json()["data"]["attributes"]
    assert (summary["created"], summary["failed"]) == (2, 3)
    errors = [(e["line"], e["message"]) for e in summary["errors"]]
    assert errors == [(line, message) for line, (_v, message) in enumerate(BAD, 3)]

    store = Store(backend_settings.db)
    f = schema.files
    with store.engine.connect() as conn:
        row = conn.execute(select(f).where(f.c.sha256 == COLUMNS)).one()._mapping
    assert (row["type_tag"], row["type_description"], row["magic"]) == (None, None, None)
    assert row["ssdeep"] == "3:ab:c"
    assert (row["size"], row["creation_date"], row["reputation"], row["positives"]) == (0, None, None, 0)
    assert row["vhash"] == "v" * 128 and row["suggested_threat_label"] == "t" * 256
    assert (row["threat_category"], row["threat_family"]) == ("c" * 64, "family")
    store.close()

    # the report keeps what was imported; the API renders it (a lone surrogate as its escape)
    r = client.get(f"/api/v3/files/{COLUMNS}")
    assert r.status_code == 200
    assert "\\ud800" in r.text
    attrs = r.json()["data"]["attributes"]
    assert attrs["meaningful_name"] == "x\ud800y" and attrs["reputation"] == 2**40
    assert list(attrs["last_analysis_results"]) == ["Eng"]

    # indexed without NUL, a lone surrogate as "?"
    assert _search(client, "engines:trojan") == [COLUMNS]
    assert _search(client, 'engines:"trojan.gen?"') == [COLUMNS]
    assert _search(client, "engines:worm") == [LABELS]
    assert _search(client, 'engines:"worm.agent"') == [LABELS]
    assert _search(client, "tag:nultag") == [COLUMNS]

    # a newer report for both (the enrichment path) replaces what they indexed, exactly
    newer = [
        {"type": "file", "id": COLUMNS, "attributes": {"last_analysis_results": {"E": {"result": "C\x00"}}}},
        {"sha256": LABELS, "av_labels": [["Two", "Virus.X"]], "scan_date": "2024-05-01 10:00:00"},
    ]
    r = client.post("/api/v3/kinfile/imports", content="\n".join(json.dumps(v) for v in newer).encode())
    assert r.json()["data"]["attributes"]["enriched"] == 2
    assert _search(client, "engines:trojan") == [] and _search(client, "engines:worm") == []
    assert _search(client, "engines:virus") == [LABELS]
    store = Store(backend_settings.db)
    reports = {sha: r.report for sha, r in store.get_reports([COLUMNS, LABELS]).items()}
    with store.engine.connect() as conn:
        have = sorted(tuple(r) for r in conn.exec_driver_sql("SELECT value, sha256 FROM file_have"))
        if avterms.uses_terms(store.dialect):
            avterms.check(conn)
            expected = [w for sha, rep in reports.items() for w in searchable.av_word_rows(rep, sha)]
            assert avterms.vocabulary(conn) == avterms.vocabulary_of(expected)
    assert have == sorted((v, sha) for sha, rep in reports.items() for v in searchable.extract_have(rep))
    store.close()


def test_non_finite_numbers_are_null(settings: Settings) -> None:
    """An imported NaN/Infinity/1e999 is read as null (what a stored report holds for it), so a
    second import of the same line enriches instead of colliding with its own ``have:`` rows;
    a stored report that does hold NaN (written by ``json`` in an older version) is served with
    null."""
    client, _key = make_client(settings)
    sha = _sha("nan")
    line = '{"type": "file", "id": "' + sha + '", "attributes": {"score": NaN, "n": 1e999, "x": [-Infinity]}}'
    assert _import_line(client, line)["created"] == 1
    assert _import_line(client, line)["enriched"] == 1
    attrs = client.get(f"/api/v3/files/{sha}").json()["data"]["attributes"]
    assert attrs["score"] is None and attrs["n"] is None and attrs["x"] == [None]

    from kinfile.models import FileRecord
    from kinfile.storage import bulk
    from kinfile.storage.store import file_columns

    old = _sha("stored-nan")  # orjson refuses the 2**70, so json wrote the text, NaN included
    rec = FileRecord(old, "", "", 0, {"big": 2**70, "score": float("nan")}, 2, False)
    store = Store(settings.db)
    bulk.write_new(store, [bulk.new_file(rec, file_columns(rec, 0))])
    store.close()
    r = client.get(f"/api/v3/files/{old}")
    assert r.status_code == 200
    assert r.json()["data"]["attributes"]["score"] is None and r.json()["data"]["attributes"]["big"] == 2**70


def _import_line(client: TestClient, line: str) -> dict[str, Any]:
    r = client.post("/api/v3/kinfile/imports", content=line.encode())
    assert r.status_code == 200, r.text
    return r.json()["data"]["attributes"]  # type: ignore[no-any-return]


def test_0013_reindexes_a_store_holding_nul(db_url: str, monkeypatch: Any) -> None:
    """A store whose reports were indexed with NUL in their values (before 0013): the migration
    makes the index what the reports give now, so replacing such a file removes exactly what it
    indexed (on SQLite a contentless FTS5 delete of other terms corrupts the index)."""
    from kinfile.storage import migrations

    store = Store(db_url)
    store.migrate()
    line = {"sha256": LABELS, "av_labels": [["Eng", "Worm\x00.Agent"]]}
    if avterms.uses_terms(store.dialect):  # index it as before 0013 (PostgreSQL never could)
        monkeypatch.setattr(searchable, "storable", lambda text: text)
        _clear_memos()
    Importer(store, "a").import_lines([json.dumps(line)])
    monkeypatch.undo()
    _clear_memos()
    with store.engine.begin() as conn:
        conn.execute(
            schema.schema_migrations.delete().where(schema.schema_migrations.c.name == "0013_storable_values")
        )
    assert migrations.migrate(store.engine) == ["0013_storable_values"]
    newer = {"sha256": LABELS, "av_labels": [["Eng", "Virus.Y"]], "scan_date": "2024-05-01 10:00:00"}
    assert Importer(store, "b").import_lines([json.dumps(newer)]).enriched == 1
    report = store.get_reports([LABELS])[LABELS].report
    with store.engine.connect() as conn:
        if avterms.uses_terms(store.dialect):
            avterms.check(conn)
            assert avterms.vocabulary(conn) == avterms.vocabulary_of(searchable.av_word_rows(report, LABELS))
        have = sorted(r[0] for r in conn.exec_driver_sql("SELECT value FROM file_have"))
    assert have == sorted(searchable.extract_have(report))
    store.close()


def _clear_memos() -> None:
    from kinfile.storage import bulk

    searchable.engine_label.cache_clear()
    searchable._label_parts.cache_clear()
    bulk._label_terms.cache_clear()
    from kinfile import import_avclass

    import_avclass._ENTRIES.clear()


def test_odd_dates_internal_keys_deep_nesting_and_capital_tags(backend_settings: Settings) -> None:
    """Round two of the import fuzzing (both backends): an AVClass scan date an offset pushes
    past year 9999, or written in superscript digits, is dropped (it was a 500 on SQLite's fast
    lane); kinfile's internal keys are never taken from a report (``"verdict_sources": "xy"``
    made every later enrichment fail); a line nested deeper than Python reads is that line's
    error (it was a RecursionError for the whole import); imported tags are found whatever their
    case; a clue feature longer than its column (a 300-digit section size) is cut to fit."""
    client, _key = make_client(backend_settings)
    late, odd, keys, deep, tags = (_sha(s) for s in ("late", "odd", "keys", "deep", "tags"))
    lines = [
        json.dumps({"sha256": late, "av_labels": [["E", "T.A"]], "scan_date": "9999-12-31T23:59:59-01:00"}),
        json.dumps({"sha256": odd, "av_labels": [["Eng", "Troj.B"]], "first_seen": "³"}),
        json.dumps({"type": "file", "id": keys, "attributes": {"verdict_sources": "xy", "imported": 5}}),
        "[" * 100_000,
        json.dumps({"type": "file", "id": tags, "attributes": {"tags": ["PEEXE", "Étag"]}}),
        json.dumps(
            {"type": "file", "id": deep, "attributes": {"pe_info": {"sections": [{"virtual_size": 10**300}]}}}
        ),
    ]
    summary = _import_line(client, "\n".join(lines))
    assert (summary["created"], summary["failed"]) == (5, 1)
    assert summary["errors"][0]["line"] == 4 and "nested too deeply" in summary["errors"][0]["message"]
    for sha in (late, odd):
        attrs = client.get(f"/api/v3/files/{sha}").json()["data"]["attributes"]
        assert attrs.get("last_analysis_date", 2_000_000_000) > 1_700_000_000  # kinfile's clock
        assert "first_submission_date" not in attrs
    newer = {"type": "file", "id": keys, "attributes": {"last_analysis_results": {"E": {"result": "Worm.X"}}}}
    assert _import_line(client, json.dumps(newer))["enriched"] == 1
    assert _search(client, "engines:worm") == [keys]
    assert _search(client, "tag:peexe") == [tags] and _search(client, "tag:étag") == [tags]
    assert client.get(f"/api/v3/files/{deep}").status_code == 200


def test_a_surrogate_in_a_deeply_nested_report_is_served(settings: Settings) -> None:
    client, _key = make_client(settings)
    sha = _sha("nested")
    nested: Any = "\ud800"
    for _ in range(400):
        nested = {"n": nested}
    line = json.dumps({"type": "file", "id": sha, "attributes": {"exiftool": nested}})
    assert _import_line(client, line)["created"] == 1
    r = client.get(f"/api/v3/files/{sha}")
    assert r.status_code == 200 and "\\ud800" in r.text
