"""The store contract: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator

import pytest

from kinfile.analysis.pipeline import analyse_bytes
from kinfile.models import FileRecord, IngestItem, Relation, Submission
from kinfile.storage import migrations
from kinfile.storage.store import Store, meaningful_name
from tests.conftest import FOUNDATION


def _record(data: bytes, **attrs: object) -> FileRecord:
    node = analyse_bytes(data)
    node.record.attributes.update(attrs)
    return node.record


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    assert s.migrate() == [name for name, _step in migrations.MIGRATIONS]
    yield s
    s.close()


def test_migrations_are_recorded_and_idempotent(store: Store) -> None:
    assert store.migrate() == []


def test_save_and_read_back_with_hash_lookups(store: Store) -> None:
    data = (FOUNDATION / "wmasf.dll_").read_bytes()
    rec = _record(data)
    sub = Submission(date=1_700_000_000, name="wmasf.dll", source_key="lab", interface="cli")
    assert store.save([IngestItem(sha256=rec.sha256, submission=sub, record=rec)]) == [True]
    for h in (rec.md5, rec.sha1, rec.sha256, rec.sha256.upper()):
        assert store.resolve(h) == rec.sha256
    assert store.resolve("0" * 64) is None
    assert store.resolve("not-a-hash") is None
    row = store.get_file(rec.sha256)
    assert row is not None
    assert row.report["md5"] == hashlib.md5(data).hexdigest()
    assert row.columns["size"] == 37822
    assert row.columns["type_tag"] == "pedll"
    assert row.columns["times_submitted"] == 1
    assert row.columns["first_submission_date"] == 1_700_000_000
    assert row.names == ["wmasf.dll"]


def test_every_submission_counts(store: Store) -> None:
    data = (FOUNDATION / "testxslt.js_").read_bytes()
    rec = _record(data)
    subs = [
        Submission(date=1_700_000_300, name="a.js", source_key="s1", interface="cli"),
        Submission(date=1_700_000_100, name="b.js", source_key="s2", interface="api"),
        Submission(date=1_700_000_200, name="a.js", source_key="s1", interface="cli"),
    ]
    created = store.save([IngestItem(sha256=rec.sha256, submission=s, record=rec) for s in subs])
    assert created == [True, False, False]
    row = store.get_file(rec.sha256)
    assert row is not None
    c = row.columns
    assert (c["times_submitted"], c["unique_sources"]) == (3, 2)
    assert (c["first_submission_date"], c["last_submission_date"]) == (1_700_000_100, 1_700_000_300)
    assert c["meaningful_name"] == "a.js"
    assert sorted(row.names) == ["a.js", "b.js"]
    listed = store.submissions(rec.sha256, 0, 10)
    assert [s["date"] for s in listed] == [1_700_000_300, 1_700_000_200, 1_700_000_100]
    assert store.submissions(rec.sha256, 1, 1)[0]["date"] == 1_700_000_200


def test_side_tables_and_report_replacement(store: Store) -> None:
    rec = _record(b"#!/bin/sh\necho hello world from a shell script\n" * 3)
    sub = Submission(date=1, name=None, source_key="x", interface="cli")
    store.save([IngestItem(sha256=rec.sha256, submission=sub, record=rec)])
    rec2 = FileRecord(
        rec.sha256,
        rec.md5,
        rec.sha1,
        rec.size,
        dict(rec.attributes, tags=["new-tag"]),
        schema_version=rec.schema_version + 1,
    )
    store.save([IngestItem(sha256=rec.sha256, submission=None, record=rec2, replace_report=True)])
    row = store.get_file(rec.sha256)
    assert row is not None
    assert row.report["tags"] == ["new-tag"]
    assert row.columns["schema_version"] == rec.schema_version + 1
    assert row.columns["times_submitted"] == 1
    assert store.known([rec.sha256, "f" * 64]) == {rec.sha256: rec.schema_version + 1}
    assert list(store.iter_sha256(max_schema_version=rec.schema_version + 1)) == []
    assert list(store.iter_sha256()) == [rec.sha256]


def test_relations_are_stored_in_both_directions(store: Store) -> None:
    parent = _record((FOUNDATION / "clam.zip_").read_bytes())
    child = _record(b"MZ" + b"\x90" * 200)
    sub = Submission(date=5, name="clam.zip", source_key="x", interface="cli")
    child_item = IngestItem(
        sha256=child.sha256,
        record=child,
        submission=Submission(date=5, name="clam.exe", source_key="extracted", interface="extracted"),
        relation=Relation(
            parent=parent.sha256, child=child.sha256, relationship="bundled_files", name="clam.exe"
        ),
    )
    store.save([IngestItem(sha256=parent.sha256, submission=sub, record=parent, children=[child_item])])
    down = store.relations(parent.sha256, "bundled_files", 0, 10)
    up = store.relations(child.sha256, "compressed_parents", 0, 10)
    assert [(r["target"], r["name"]) for r in down] == [(child.sha256, "clam.exe")]
    assert [r["target"] for r in up] == [parent.sha256]


def test_analyses_round_trip(store: Store) -> None:
    rec = _record(b"some plain text that is long enough for tlsh to hash it properly" * 4)
    store.save([IngestItem(sha256=rec.sha256, submission=Submission(1, None, "x", "api"), record=rec)])
    ident = store.add_analysis(rec.sha256, 1_700_000_000, "completed", {"malicious": 0}, {})
    found = store.get_analysis(rec.sha256, ident)
    assert found is not None
    assert found["status"] == "completed"
    assert found["stats"] == {"malicious": 0}
    assert store.get_analysis(rec.sha256, "nope") is None


def test_api_keys_are_hashed(store: Store) -> None:
    key = store.create_api_key("alice")
    assert len(key) == 64
    assert store.api_key_name(key) == "alice"
    assert store.api_key_name(key + "x") is None
    assert [k["name"] for k in store.list_api_keys()] == ["alice"]
    assert store.revoke_api_keys("alice") == 1
    assert store.api_key_name(key) is None


def test_concurrent_saves_of_one_file(store: Store) -> None:
    rec = _record((FOUNDATION / "lab-protocol_v5.rtf_").read_bytes())
    errors: list[BaseException] = []

    def submit(i: int) -> None:
        try:
            store.save(
                [
                    IngestItem(
                        sha256=rec.sha256,
                        record=rec,
                        submission=Submission(100 + i, f"n{i}.rtf", f"s{i}", "api"),
                    )
                ]
            )
        except BaseException as exc:  # pragma: no cover - the assertion reports it
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    row = store.get_file(rec.sha256)
    assert row is not None
    assert row.columns["times_submitted"] == 8
    assert row.columns["unique_sources"] == 8


def test_meaningful_name_prefers_real_names() -> None:
    sha = "a" * 64
    assert meaningful_name([(sha, 5, 1), ("invoice.pdf", 1, 2)]) == "invoice.pdf"
    assert meaningful_name([("x.exe", 1, 5), ("y.exe", 2, 9)]) == "y.exe"
    assert meaningful_name([]) is None


def test_type_stats_follow_inserts_and_type_changes(store: Store) -> None:
    pdf = (FOUNDATION / "imagemagick-lzw.pdf_").read_bytes()
    dll = (FOUNDATION / "wmasf.dll_").read_bytes()
    sub = Submission(date=1, name=None, source_key="x", interface="cli")
    recs = [_record(pdf), _record(dll), _record(pdf)]  # the same pdf twice in one batch
    store.save([IngestItem(sha256=r.sha256, submission=sub, record=r) for r in recs])
    stats = store.type_stats()
    assert stats["pdf"]["files"] == 1 and stats["pdf"]["bytes"] == len(pdf)
    assert stats["pedll"] == {"files": 1, "bytes": len(dll), "mean_size": float(len(dll))}
    # a reanalysis that changes the type moves the file between the rows
    moved = FileRecord(
        recs[0].sha256,
        recs[0].md5,
        recs[0].sha1,
        recs[0].size,
        dict(recs[0].attributes, type_tag="text"),
        schema_version=recs[0].schema_version,
    )
    store.save([IngestItem(sha256=moved.sha256, submission=None, record=moved, replace_report=True)])
    stats = store.type_stats()
    assert "pdf" not in stats and stats["text"]["files"] == 1
    store.replace_reports(
        [FileRecord(moved.sha256, moved.md5, moved.sha1, moved.size, dict(moved.attributes, type_tag="pdf"))]
    )
    assert store.type_stats()["pdf"]["files"] == 1 and "text" not in store.type_stats()


def test_type_stats_backfill_matches_an_aggregate(store: Store) -> None:
    import sqlalchemy as sa

    from kinfile.storage import migrations, schema

    sub = Submission(date=1, name=None, source_key="x", interface="cli")
    for path in sorted(FOUNDATION.glob("*_")):
        rec = _record(path.read_bytes())
        store.save([IngestItem(sha256=rec.sha256, submission=sub, record=rec)])
    before = store.type_stats()
    with store.writing() as conn:
        migrations._type_stats(conn)  # the 0007 backfill recomputes the summary from files
        f = schema.files
        agg = {
            r[0]: (r[1], r[2])
            for r in conn.execute(
                sa.select(f.c.type_tag, sa.func.count(), sa.func.sum(f.c.size)).group_by(f.c.type_tag)
            )
        }
    after = store.type_stats()
    assert after == before
    assert {k: (v["files"], v["bytes"]) for k, v in after.items()} == agg
