"""Enriching stored files: replacements computed where the report is parsed (workers), written
by the writer only while the stored report they were computed from is still the stored one."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from kinfile.engines.vtreports import parse_record
from kinfile.importer import Importer, ImportSummary, merge_report, prepare_values
from kinfile.storage import avterms, searchable
from kinfile.storage.store import Store, StoredReport
from tests.engines.helpers import VT_DIR

AV_LINES = VT_DIR / "av_labels_500.jsonl"


def _lines(count: int, salt: str) -> list[str]:
    out = []
    for i, line in enumerate(AV_LINES.read_text().splitlines()[:count]):
        seed = f"rep:{i}".encode()
        rec = {
            **json.loads(line),
            "md5": hashlib.md5(seed).hexdigest(),
            "sha1": hashlib.sha1(seed).hexdigest(),
            "sha256": hashlib.sha256(seed).hexdigest(),
        }
        if salt:  # a newer scan: other labels, one engine fewer, a scan date
            rec["av_labels"] = [[e, f"{salt}.{label}"] for e, label in rec["av_labels"][1:]]
            rec["scan_date"] = "2024-05-01 10:00:00"
        out.append(json.dumps(rec))
    return out


def _state(store: Store, shas: list[str]) -> tuple[dict[str, Any], Any]:
    reports = {sha: r.report for sha, r in store.get_reports(shas).items()}
    for report in reports.values():
        report.pop("last_modification_date", None)
    with store.engine.connect() as conn:
        if avterms.uses_terms(store.dialect):
            avterms.check(conn)  # FTS5's integrity check: every delete matched what was indexed
            words: Any = avterms.vocabulary(conn)
        else:
            words = sorted(
                tuple(r) for r in conn.exec_driver_sql("SELECT value, sha256, engines FROM file_av_words")
            )
        have = sorted(tuple(r) for r in conn.exec_driver_sql("SELECT value, sha256 FROM file_have"))
    return reports, (words, have)


def test_merging_never_mutates_the_stored_report() -> None:
    lines = _lines(30, "")
    newer = _lines(30, "New")
    for old_line, new_line in zip(lines, newer, strict=True):
        created = merge_report(None, parse_record(json.loads(old_line))[0], "a")
        stored = copy.deepcopy(created.attributes)
        existing = StoredReport(created.attributes, False, 1, created.md5, created.sha1, 0)
        merge_report(existing, parse_record(json.loads(new_line))[0], "b")
        assert existing.report == stored


def test_replacements_write_what_the_writer_path_writes(db_url: str, tmp_path: Any) -> None:
    """Enriching through replacements computed at parse time leaves the reports, ``have:`` rows
    and detection words that merging in the writer leaves (the latter on SQLite, compared with
    the replacements on both backends)."""
    lines, newer = _lines(60, ""), _lines(60, "Newer")
    shas = [json.loads(line)["sha256"] for line in lines]
    states: list[tuple[dict[str, Any], Any]] = []
    for url in (db_url, f"sqlite:///{tmp_path / 'writer.db'}"):
        store = Store(url)
        store.migrate()
        Importer(store, "a").import_lines(lines)
        if not states:  # replacements computed at parse time
            summary = Importer(store, "b").import_lines(newer)
        else:  # the writer path: nothing prepared, every report merged at the write
            summary = ImportSummary()
            importer = Importer(store, "b")
            prepared = prepare_values(list(enumerate(newer, 1)), "b", store.known, importer.terms)
            batch = {p.sha256: p for _n, found in prepared if not isinstance(found, str) for p in found}
            assert all(p.replacement is None for p in batch.values())
            importer._flush(batch, summary)
        assert (summary.enriched, summary.created, summary.failed) == (60, 0, 0)
        states.append(_state(store, shas))
        assert all(r["last_analysis_date"] == 1714557600 for r in states[-1][0].values())
        store.close()
    (reports, (words, have)), (writer_reports, (writer_words, writer_have)) = states
    assert reports == writer_reports and have == writer_have
    if db_url.startswith("sqlite"):
        assert words == writer_words
    # the index holds exactly the words of the stored reports (an oracle independent of both paths)
    stored_words = [w for sha, report in writer_reports.items() for w in searchable.av_word_rows(report, sha)]
    assert writer_words == avterms.vocabulary_of(stored_words)


def test_a_report_changed_since_parsing_is_merged_again(tmp_path: Any) -> None:
    """A replacement whose base is no longer stored is not written: the writer merges the report
    onto the newer stored one (nothing the other writer added is lost)."""
    store = Store(f"sqlite:///{tmp_path / 'k.db'}")
    store.migrate()
    lines, newer = _lines(20, ""), _lines(20, "Later")
    Importer(store, "a").import_lines(lines)
    importer = Importer(store, "b")
    prepared = prepare_values(list(enumerate(newer, 1)), "b", None, importer.terms, store.get_reports)
    batch = {p.sha256: p for _n, found in prepared if not isinstance(found, str) for p in found}
    assert all(p.replacement is not None for p in batch.values())
    # meanwhile another writer adds a v3 report with tags to the first file
    first = json.loads(lines[0])["sha256"]
    v3 = {"type": "file", "id": first, "attributes": {"tags": ["meanwhile"], "size": 7}}
    assert Importer(store, "c").import_lines([json.dumps(v3)]).enriched == 1
    summary = ImportSummary()
    importer._flush(batch, summary)
    assert (summary.enriched, summary.failed) == (20, 0)
    report = store.get_reports([first])[first].report
    assert report["tags"] == ["meanwhile"] and report["size"] == 7
    assert all(r["result"].startswith("Later.") for r in report["last_analysis_results"].values())
    store.close()


def test_detection_words_are_rewritten_only_when_labels_change() -> None:
    from kinfile.storage import replacing

    results = {f"Engine{i}": {"result": f"Trojan.Fam{i}", "engine_update": "20240101"} for i in range(5)}
    before = {"last_analysis_results": results}
    reordered = dict(reversed(list(results.items())))
    rescan = {e: {**r, "engine_update": "20240501"} for e, r in reordered.items()}
    values = {"sha256": "a" * 64}
    for terms in (True, False):
        same = replacing.replacement(values, {"last_analysis_results": rescan}, before, "", terms)
        assert same.documents is None and same.words == [] == same.old_words
    relabelled = {**results, "Engine0": {"result": None}, "Engine9": {"result": "Worm.X"}}
    changed = replacing.replacement(values, {"last_analysis_results": relabelled}, before, "", True)
    assert changed.documents is not None
    old, new = changed.documents
    words = searchable.extract_av_words
    assert sorted(old.split(" ")) == sorted(avterms.document(words(before)).split(" "))
    assert sorted(new.split(" ")) == sorted(
        avterms.document(words({"last_analysis_results": relabelled})).split(" ")
    )
    rows = replacing.replacement(values, {"last_analysis_results": relabelled}, before, "", False)
    assert {r["value"] for r in rows.words} == set(words({"last_analysis_results": relabelled}))
    assert {r["value"] for r in rows.old_words} == set(words(before))


def test_a_report_at_the_value_cap_is_indexed_as_it_is_stored(db_url: str) -> None:
    """Labels enough to reach the side-value cap, engines not in key order: the words indexed
    at creation are those recomputed from the stored report (engines in key order) when it is
    replaced, so the index stays exact (FTS5 deletes exactly what it indexed)."""
    store = Store(db_url)
    store.migrate()
    engines = [f"Engine{i:03d}" for i in range(300)][::-1]  # reverse key order
    sha = hashlib.sha256(b"cap").hexdigest()
    line = {
        "sha256": sha,
        "av_labels": [[e, f"Fam{i}.Variant.{i * 7} gen!{i}"] for i, e in enumerate(engines)],
    }
    assert Importer(store, "a").import_lines([json.dumps(line)]).created == 1
    newer = {**line, "av_labels": [[e, f"{label}.B"] for e, label in line["av_labels"]]}
    assert Importer(store, "b").import_lines([json.dumps(newer)]).enriched == 1
    reports, (words, _have) = _state(store, [sha])
    expected = searchable.av_word_rows(reports[sha], sha)
    assert len(expected) > 100
    if avterms.uses_terms(store.dialect):
        assert words == avterms.vocabulary_of(expected)
    else:
        assert words == sorted((r["value"], r["sha256"], r["engines"]) for r in expected)
    store.close()


def test_0012_rebuilds_the_index_of_a_store_with_a_capped_report(db_url: str) -> None:
    from kinfile.storage import migrations, schema

    store = Store(db_url)
    store.migrate()
    lines = _lines(5, "")
    Importer(store, "a").import_lines(lines)
    engines = [f"Engine{i:03d}" for i in range(300)][::-1]
    sha = hashlib.sha256(b"cap0012").hexdigest()
    capped = {
        "sha256": sha,
        "av_labels": [[e, f"Fam{i}.Variant.{i * 7} gen!{i}"] for i, e in enumerate(engines)],
    }
    shas = [json.loads(line)["sha256"] for line in lines]
    for extra, rebuilt in (([], False), ([json.dumps(capped)], True)):
        Importer(store, "b").import_lines(extra)
        with store.engine.begin() as conn:
            conn.execute(
                schema.schema_migrations.delete().where(
                    schema.schema_migrations.c.name == "0012_words_in_key_order"
                )
            )
            if avterms.uses_terms(store.dialect):  # a stale index: only a rebuild restores it
                avterms.clear(conn)
            else:
                conn.execute(schema.file_av_words.delete())
        assert migrations.migrate(store.engine) == ["0012_words_in_key_order"]
        reports, (words, _have) = _state(store, shas + [sha])
        expected = [w for s, report in reports.items() for w in searchable.av_word_rows(report, s)]
        if not rebuilt:
            assert not words  # no capped report: the migration left the index alone
        elif avterms.uses_terms(store.dialect):
            assert words == avterms.vocabulary_of(expected)
        else:
            assert words == sorted((r["value"], r["sha256"], r["engines"]) for r in expected)
    store.close()
