"""Stored reports: SQLite keeps a long one compressed (``schema.stored_report``), PostgreSQL
keeps text. Every reader sees the same report either way, and a store holding both forms (text
rows written before compression, compressed rows written since) reads, enriches, searches,
reindexes and deletes both."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select, update

from kinfile import jsontext, search
from kinfile.importer import Importer
from kinfile.services import Services
from kinfile.settings import Settings
from kinfile.storage import migrations, schema
from kinfile.storage.store import Store
from tests.engines.helpers import VT_DIR

V3 = json.loads((VT_DIR / "vt_v3_file_report_rtf.json").read_text())["data"]
LABELS = [json.loads(line) for line in (VT_DIR / "av_labels_500.jsonl").read_text().splitlines()[:40]]


@pytest.fixture
def services(backend_settings: Settings) -> Iterator[Services]:
    found = Services(backend_settings)
    yield found
    found.store.close()


def _raw(conn: Connection, sha256s: list[str] | None = None) -> dict[str, Any]:
    f = schema.files
    query = select(f.c.sha256, f.c.report)
    if sha256s is not None:
        query = query.where(f.c.sha256.in_(sha256s))
    return dict(conn.execute(query).tuples().all())


def _bytes(path: Path) -> int:
    """A SQLite database's bytes on disk, its write-ahead log included."""
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.is_file())


def _hits(services: Services, query: str) -> list[str]:
    return sorted(h.sha256 for h in search.search(services, query, None, 300).hits)


def test_pack_report_compresses_long_texts_only() -> None:
    short = jsontext.dumps_report({"size": 1})
    assert jsontext.pack_report(short) == short
    text = jsontext.dumps_report(V3["attributes"])
    packed = jsontext.pack_report(text)
    assert isinstance(packed, bytes) and len(packed) * 3 < len(text.encode())
    assert jsontext.unpack_report(packed) == text and jsontext.unpack_report(text) == text
    assert jsontext.loads_report(packed) == jsontext.loads_report(text) == json.loads(text)
    odd = jsontext.dumps_report({"label": "caf\u00e9 \ud800 \x00", "big": 2**70, **V3["attributes"]})
    assert jsontext.loads_report(jsontext.pack_report(odd)) == json.loads(odd)  # json's fallbacks
    with pytest.raises(ValueError, match="not a zstd frame"):
        jsontext.loads_report(b"x\x9c" + packed[2:])  # damaged bytes: a clear error


def test_sqlite_keeps_long_reports_compressed_postgresql_text(services: Services) -> None:
    store = services.store
    summary = Importer(store, "t").import_lines([json.dumps(V3), *map(json.dumps, LABELS)])
    assert summary.created == 1 + len(LABELS) and summary.failed == 0
    with store.engine.connect() as conn:
        raw = _raw(conn)
    kind = bytes if store.dialect == "sqlite" else str
    assert {type(value) for value in raw.values()} == {kind}
    reports = store.get_reports(list(raw))
    for sha256, value in raw.items():
        assert reports[sha256].report == json.loads(jsontext.unpack_report(value))
    served = services.file_attributes(services.get_file(V3["id"]))
    assert served["last_analysis_results"] == V3["attributes"]["last_analysis_results"]
    assert served["trid"] == V3["attributes"]["trid"]


def test_a_store_holding_both_forms(services: Services) -> None:
    """Rows written as text (before compression) next to compressed ones: enrichment (its
    compare-and-swap on the stored value), search, reindex and deletion see both alike."""
    store = services.store
    Importer(store, "t").import_lines(map(json.dumps, LABELS))
    shas = [line["sha256"] for line in LABELS]
    old = shas[::2]  # these rows as an older kinfile wrote them: JSON text
    f = schema.files
    with store.writing() as conn:
        for sha256, value in _raw(conn, old).items():
            conn.execute(update(f).where(f.c.sha256 == sha256).values(report=jsontext.unpack_report(value)))
    with store.engine.connect() as conn:
        assert all(isinstance(v, str) for v in _raw(conn, old).values())
    engine, label = LABELS[0]["av_labels"][0]
    word = "kinfilepackedword"
    assert _hits(services, f"engines:{word}") == []
    newer = [
        {**line, "av_labels": [[e, f"{word}.{i}" if e == engine else lab] for e, lab in line["av_labels"]]}
        for i, line in enumerate(LABELS)
    ]
    summary = Importer(store, "t", jobs=1).import_lines(map(json.dumps, newer))
    assert (summary.enriched, summary.failed) == (len(LABELS), 0)
    having = sorted(line["sha256"] for line in LABELS if any(e == engine for e, _l in line["av_labels"]))
    assert _hits(services, f"engines:{word}") == having
    key = engine.lower().replace(" ", "")
    assert _hits(services, f"{key}:{word}") == having
    kind = bytes if store.dialect == "sqlite" else str
    with store.engine.connect() as conn:
        assert {type(v) for v in _raw(conn).values()} == {kind}  # rewritten in the store's form
    for sha256, stored in store.get_reports(shas).items():
        result = stored.report["last_analysis_results"].get(engine) or {}
        assert str(result.get("result")).startswith(word) == (sha256 in having)
    # a reindex reads both forms (a text row again, to have both)
    with store.writing() as conn:
        for sha256, value in _raw(conn, old).items():
            conn.execute(update(f).where(f.c.sha256 == sha256).values(report=jsontext.unpack_report(value)))
        batches = list(migrations._stored_reports(conn, '"last_analysis_results"'))
        assert sorted(sha for rows in batches for sha, _a in rows) == sorted(shas)
        nowhere = migrations._stored_reports(conn, '"no-such-key-anywhere"')
        assert not [row for rows in nowhere for row in rows]
        migrations.rebuild_detection_index(conn)
        migrations.rebuild_have(conn)
    assert _hits(services, f"engines:{word}") == having
    assert _hits(services, "have:last_analysis_results") == sorted(shas)
    assert services.delete_files(shas[:4]) == sorted(shas[:4])
    assert _hits(services, f"engines:{word}") == sorted(set(having) - set(shas[:4]))


def test_kinfile_compact_compresses_a_store_written_as_text(tmp_path: Path, db_url: str) -> None:
    """``kinfile compact``: the text reports of an older store compressed, the file smaller
    after VACUUM, every report and search answer the same; again: nothing left to do."""
    from tests.cli.test_ingest_cli import run

    home = tmp_path / "home"
    lines = tmp_path / "labels.jsonl"
    lines.write_text("\n".join(map(json.dumps, [V3, *LABELS])))
    assert run(home, "import-vt", str(lines), db=db_url)[0] == 0
    store = Store(db_url)
    f = schema.files
    with store.writing() as conn:  # as a store written before compression holds them
        for sha256, value in _raw(conn).items():
            conn.execute(update(f).where(f.c.sha256 == sha256).values(report=jsontext.unpack_report(value)))
        texts = _raw(conn)
    store.close()
    reports = {sha256: jsontext.loads_report(text) for sha256, text in texts.items()}
    code, before, _err = run(home, "search", "engines:trojan", db=db_url)
    assert code == 0 and len(json.loads(before)) > 5
    path = Path(db_url.split("///", 1)[1]) if db_url.startswith("sqlite") else None
    if path is not None:  # the WAL checkpointed or not, as connections happened to close: checkpointed
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = _bytes(path) if path else 0
    code, out, _err = run(home, "compact", db=db_url)
    assert code == 0, out
    store = Store(db_url)
    with store.engine.connect() as conn:
        after = _raw(conn)
    store.close()
    assert {sha: jsontext.loads_report(value) for sha, value in after.items()} == reports
    if path is None:
        assert out.startswith("nothing to do: postgresql")
        assert {type(value) for value in after.values()} == {str}
        return
    assert out.startswith(f"compressed {len(reports)} reports: ") and "VACUUM gave back" in out
    assert {type(value) for value in after.values()} == {bytes}
    saved = sum(len(text.encode()) for text in texts.values()) - sum(len(v) for v in after.values())
    assert size - _bytes(path) >= saved * 0.8  # VACUUM gave back (nearly) what compression saved
    assert run(home, "search", "engines:trojan", db=db_url)[1] == before
    assert run(home, "compact", "--no-vacuum", db=db_url)[1].startswith("compressed 0 reports")
