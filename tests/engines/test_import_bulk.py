"""import-vt's bulk write path (storage/bulk.py): the same rows as the store's, one transaction."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
from sqlalchemy import select

from kinfile.engines.vtreports import parse_record
from kinfile.errors import KinfileError
from kinfile.importer import Importer, merge_report
from kinfile.storage import avterms, bulk, schema, searchable
from kinfile.storage.store import Store, file_columns
from tests.engines.helpers import VT_DIR

AV_LINES = VT_DIR / "av_labels_500.jsonl"
V3 = VT_DIR / "vt_v3_file_report_rtf.json"
V2 = VT_DIR / "vt_v2_file_reports.jsonl"
pytestmark = pytest.mark.skipif(not AV_LINES.is_file(), reason="../shared/vt not present")


def _records(copies: int = 1) -> list[Any]:
    """The shared AVClass lines (with fresh hashes per copy), the v2 reports and the v3 report."""
    lines = []
    for copy in range(copies):
        for i, line in enumerate(AV_LINES.read_text().splitlines()):
            seed = f"bulk{copy}:{i}".encode()
            hashes = {
                "md5": hashlib.md5(seed).hexdigest(),
                "sha1": hashlib.sha1(seed).hexdigest(),
                "sha256": hashlib.sha256(seed).hexdigest(),
            }
            lines.append(json.dumps({**json.loads(line), **hashes}))
    lines += V2.read_text().splitlines() + [json.dumps(json.loads(V3.read_text())["data"])]
    return [merge_report(None, r, "test") for line in lines for r in parse_record(json.loads(line))]


def test_av_words_equal_the_searchable_extractor() -> None:
    records = _records()
    assert len(records) > 500
    for rec in records:
        assert searchable.extract_av_words(rec.attributes) == searchable._av_words_walk(rec.attributes)
    # engine names with one key ("Foo Bar", "foobar") and a report that reaches the value cap
    clash = {"Foo Bar": {"result": "Trojan.Agent"}, "foobar": {"result": "Agent.X"}, "B": {"result": None}}
    many = {f"Engine{i}": {"result": f"Trojan.Family{i}.Variant{i}.Generic"} for i in range(300)}
    for results in (clash, many, {"x": "not a result"}):
        attrs = {"last_analysis_results": results}
        assert searchable.extract_av_words(attrs) == searchable._av_words_walk(attrs)
    assert searchable.extract_av_words({"last_analysis_results": clash})["agent"] == ",foobar,"


def test_av_document_has_the_terms_of_the_words() -> None:
    """The terms bulk.av_document makes without the words are those of avterms.document(words):
    on the real label sets, and on odd ones (two engines with one key, non-text labels, the cap)."""
    odd: list[dict[str, Any]] = [
        {"McAfee": {"result": "Trojan.A"}, "mcafee": {"result": "Trojan.B"}},
        {"A": {"result": None}, "B": {"result": 5}, "C": "x", "D": {"result": "  "}, "E": {"result": "ok"}},
        {f"E{i}": {"result": f"Fam{i}.Variant.{i * 7} gen!{i}"} for i in range(300)},
        {"Ünï": {"result": "Trojan:Wïn32/Ümlaut%_x"}, "ESET-NOD32": {"result": "a variant of Win32/X.B"}},
        {},
    ]
    reports = [rec.attributes for rec in _records()] + [{"last_analysis_results": r} for r in odd]
    reports.append({"last_analysis_results": "not a dict"})
    for attrs in reports:
        expected = avterms.document(searchable._av_words_walk(attrs))
        assert sorted(bulk.av_document(attrs).split(" ")) == sorted(expected.split(" "))


def _side_contents(store: Store, shas: list[str]) -> dict[str, set[tuple[Any, ...]]]:
    """Side rows of ``shas``; on SQLite the detection words are the FTS5 vocabulary (term, files)
    of the whole store (the tests' stores hold only ``shas``)."""
    out: dict[str, set[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        for name, table in schema.SIDE_TABLES.items():
            if name == "av_words" and avterms.uses_terms(store.dialect):
                avterms.check(conn)
                out[name] = set(avterms.vocabulary(conn).items())
                continue
            rows = conn.execute(select(table).where(table.c.sha256.in_(shas))).all()
            out[name] = {tuple(sorted(r._mapping.items())) for r in rows}
    return out


def _expected_contents(
    store: Store, rows: dict[str, list[dict[str, Any]]]
) -> dict[str, set[tuple[Any, ...]]]:
    """:func:`_side_contents` of files whose side rows (``searchable.side_rows``) are ``rows``."""
    out: dict[str, set[tuple[Any, ...]]] = {
        name: {tuple(sorted(row.items())) for row in found} for name, found in rows.items()
    }
    if avterms.uses_terms(store.dialect):
        out["av_words"] = set(avterms.vocabulary_of(rows.get("av_words", [])).items())
    return out


def test_bulk_rows_equal_the_store_rows(db_url: str) -> None:
    """Every files column and side-table row as the store writes them (both backends)."""
    records = _records()
    now = int(time.time())
    store = Store(db_url)
    store.migrate()
    new = [bulk.new_file(rec, file_columns(rec, now)) for rec in records]
    assert bulk.write_new(store, new + new[:3]) == {rec.sha256 for rec in records}  # repeats: once
    assert bulk.write_new(store, new[:5]) == set()  # stored already: nothing written
    shas = [rec.sha256 for rec in records]
    got = _side_contents(store, shas)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in schema.SIDE_TABLES}
    for rec in records:
        for name, found in searchable.side_rows(rec.attributes, rec.sha256).items():
            rows[name].extend(found)
        # VirusTotal's submission names of a report-only file join the names index
        names, grams = searchable.imported_name_rows(searchable.imported_names(rec.attributes), rec.sha256)
        rows["names"].extend(names)
        rows["name_trigrams"].extend(grams)
    assert got == _expected_contents(store, rows)
    assert got["names"] and got["name_trigrams"]
    assert len(got["av_words"]) > 10_000 and got["have"]
    f = schema.files
    with store.engine.connect() as conn:
        stored = {r.sha256: dict(r._mapping) for r in conn.execute(select(f).where(f.c.sha256.in_(shas)))}
    for rec, item in zip(records, new, strict=True):
        row = stored[rec.sha256]
        assert {k: row[k] for k in item.row} == {**item.row, "downloadable": False}
    assert sum(t["files"] for t in store.type_stats().values()) == len(records)
    store.close()


def test_a_failed_batch_leaves_nothing(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The files rows and side rows of a batch commit together: a failure part-way rolls all back."""
    records = _records()[:50]
    store = Store(db_url)
    store.migrate()
    terms = avterms.uses_terms(store.dialect)
    new = [bulk.new_file(rec, file_columns(rec, 0), terms=terms) for rec in records]
    real = store._bump_type_stats
    calls = []

    def failing(conn: Any, deltas: Any) -> None:
        calls.append(deltas)
        real(conn, deltas)  # the last step: after the files rows and every side table
        raise KinfileError("disk full")

    monkeypatch.setattr(store, "_bump_type_stats", failing)
    with pytest.raises(KinfileError):
        bulk.write_new(store, new)
    assert calls
    assert store.count_files() == 0
    assert _side_contents(store, [r.sha256 for r in records]) == {n: set() for n in schema.SIDE_TABLES}
    monkeypatch.setattr(store, "_bump_type_stats", real)
    assert len(bulk.write_new(store, new)) == 50
    store.close()


def test_bulk_import_search_answers_equal_the_store_path(tmp_path: Any) -> None:
    """A run of new reports grows its batches; engines:/<engine>:/p:/suggested_threat_label:
    answer exactly as on the same reports written through the store's own insert path."""
    from kinfile import search
    from kinfile.services import Services
    from kinfile.settings import load_settings

    records = _records(copies=5)[:2400]
    lines = [
        json.dumps(
            {
                "md5": rec.md5,
                "sha1": rec.sha1,
                "sha256": rec.sha256,
                "av_labels": [
                    [engine, result["result"]]
                    for engine, result in rec.attributes["last_analysis_results"].items()
                    if isinstance(result.get("result"), str)
                ],
            }
        )
        for rec in records
    ]
    bulk_side = Services(load_settings({"home": str(tmp_path / "bulk")}, env={}))
    importer = Importer(bulk_side.store, "test")
    summary = importer.import_lines([*lines[:1200], "[1, 2", *lines[1200:]], "in")
    assert (summary.created, summary.failed, summary.errors[0][1]) == (2400, 1, 1201)
    assert importer.batch > 1000  # all new: bulk batches
    store_side = Services(load_settings({"home": str(tmp_path / "store")}, env={}))
    parsed = [merge_report(None, parse_record(json.loads(line))[0], "test") for line in lines]
    store_side.store.insert_files(parsed)
    label = bulk_side.file_attributes(bulk_side.get_file(records[0].sha256))["popular_threat_classification"]
    family = label["popular_threat_name"][0]["value"]
    queries = [
        f"engines:{family}",
        "engines:trojan p:10+",
        f"microsoft:{family}",
        "kaspersky:trojan",
        "microsoft:nothing-like-this",
        "p:20-",
        f"suggested_threat_label:{label['suggested_threat_label']}",
    ]
    answered = 0
    for query in queries:
        hits = [h.sha256 for h in search.search(bulk_side, query, "positives-", 300).hits]
        assert hits == [h.sha256 for h in search.search(store_side, query, "positives-", 300).hits], query
        answered += bool(hits)
    assert answered >= 5


def test_rows_of_a_file_gone_since_parsing_are_made_by_the_writer(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files stored when parsed get no new-file rows; if one is gone at the write, the writer makes them."""
    from kinfile.importer import prepare_values
    from kinfile.services import Services

    lines = AV_LINES.read_text().splitlines()[:40]
    prepared = prepare_values(list(enumerate(lines, 1)), "test", lambda shas: set(shas[::2]))
    news = [p.new for _n, found in prepared if not isinstance(found, str) for p in found]
    assert news.count(None) == 20 and len(news) == 40
    services = Services(settings)
    from kinfile import importer

    def all_stored(values: Any, source: str, _known: Any, terms: bool, _reports: Any) -> Any:
        return prepare_values(values, source, lambda shas: set(shas), terms)  # "all stored"

    monkeypatch.setattr(importer, "prepare_values", all_stored)
    summary = Importer(services.store, "test").import_lines(lines, "in")
    assert (summary.created, summary.enriched, summary.failed) == (40, 0, 0)
    monkeypatch.undo()
    other = Services(load_settings_for(settings, "other"))
    Importer(other.store, "test").import_lines(lines, "in")
    for line in lines[:5]:
        sha = json.loads(line)["sha256"]
        got = services.file_attributes(services.get_file(sha))
        want = other.file_attributes(other.get_file(sha))
        for attrs in (got, want):
            attrs.pop("last_modification_date")
        assert got == want


def load_settings_for(settings: Any, name: str) -> Any:
    from kinfile.settings import load_settings

    return load_settings({"home": str(settings.home.parent / name)}, env={})


def test_enrich_rewrites_only_changed_side_tables(db_url: str) -> None:
    """An import enriching a stored file: side rows follow the new report (changed tables only)."""
    store = Store(db_url)
    store.migrate()
    doc = json.loads(V3.read_text())["data"]
    sha = doc["id"]
    assert Importer(store, "a").import_lines([json.dumps(doc)]).created == 1
    before = _side_contents(store, [sha])
    assert {row[1][1] for row in before["tags"]} == set(doc["attributes"]["tags"])
    changed = {**doc, "attributes": {**doc["attributes"], "tags": ["exploit", "cve-2017-11882"]}}
    assert Importer(store, "b").import_lines([json.dumps(changed)]).enriched == 1
    after = _side_contents(store, [sha])
    assert {row[1][1] for row in after["tags"]} == {"exploit", "cve-2017-11882"}
    assert after["metadata"] == before["metadata"] and after["av_words"] == before["av_words"]
    expected = _expected_contents(store, searchable.side_rows(store.get_reports([sha])[sha].report, sha))
    for name, rows in expected.items():
        assert after[name] == rows, name
    store.close()


def test_new_files_go_in_bulk_transactions_stored_ones_in_small(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of new files only is written at BULK_BATCH (as a store grows, fewer transactions
    dirty fewer index pages); once a batch holds a report for a stored file, at BATCH."""
    from kinfile import importer as module

    monkeypatch.setattr(module, "BATCH", 100)
    monkeypatch.setattr(module, "BULK_BATCH", 400)
    sizes: list[int] = []
    write = module.Importer._write

    def recorded(self: Any, batch: dict[str, Any], summary: Any) -> None:
        sizes.append(len(batch))
        write(self, batch, summary)

    monkeypatch.setattr(module.Importer, "_write", recorded)
    lines = AV_LINES.read_text().splitlines()  # 500 new files
    store = Store(db_url)
    store.migrate()
    summary = module.Importer(store, "t").import_lines(lines)
    assert (summary.created, sizes) == (500, [400, 100])
    sizes.clear()
    again = module.Importer(store, "t").import_lines(lines[:250])  # stored: enriched
    assert (again.enriched, sizes) == (250, [100, 100, 50])
    store.close()
