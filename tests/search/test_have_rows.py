"""``file_have`` keyed (value, sha256) only (migration 0010): its rows always equal the ``have:``
values of the stored reports, through imports, enrichments, re-analyses and deletions (which
delete the rows by key, from the stored report), and an older database is upgraded."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kinfile.importer import Importer
from kinfile.services import Services
from kinfile.settings import Settings
from kinfile.storage import migrations, schema, searchable
from kinfile.storage.store import Store
from tests.engines.helpers import VT_DIR

LABELS = VT_DIR / "av_labels_500.jsonl"
PE = Path(__file__).resolve().parents[1] / "data" / "pe" / "ClrLoader-x86.dll_"
pytestmark = pytest.mark.skipif(not LABELS.is_file(), reason="../shared/vt not present")


def _rows(store: Store) -> set[tuple[str, str]]:
    with store.engine.connect() as conn:
        return {
            (v, s) for v, s in conn.execute(sa.select(schema.file_have.c.value, schema.file_have.c.sha256))
        }


def _expected(store: Store) -> set[tuple[str, str]]:
    reports = store.get_reports(list(store.iter_sha256()))
    return {(v, sha) for sha, stored in reports.items() for v in searchable.extract_have(stored.report)}


@pytest.fixture
def services(backend_settings: Settings) -> Iterator[Services]:
    found = Services(backend_settings)
    yield found
    found.close()


def test_rows_follow_every_write(services: Services) -> None:
    store = services.store
    data = PE.read_bytes()
    pe: dict[str, Any] = {
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "av_labels": [["Microsoft", "Trojan:Win32/Agent"]],
    }
    lines = [*LABELS.read_text().splitlines()[:100], json.dumps(pe)]
    assert Importer(store, "test", jobs=1).import_lines(lines).created == 101
    assert _rows(store) == _expected(store) and len(_rows(store)) > 500
    victim, other = sorted(set(store.iter_sha256()) - {pe["sha256"]})[:2]
    v3 = {"type": "file", "id": victim, "attributes": {"vhash": "0150366d1570e0z", "names": ["a.exe"]}}
    assert Importer(store, "newer").import_lines([json.dumps(v3)]).enriched == 1  # replace_reports
    assert ("vhash", victim) in _rows(store) == _expected(store)
    before = {v for v, s in _rows(store) if s == pe["sha256"]}
    services.submit_bytes(data, PE.name, "test")  # the bytes of a report-only file: _replace_file
    after = {v for v, s in _rows(store) if s == pe["sha256"]}
    assert before < after and "pe_info" in after
    assert _rows(store) == _expected(store)
    assert services.delete_files([victim, other, pe["sha256"]]) == sorted([victim, other, pe["sha256"]])
    assert not {s for _v, s in _rows(store)} & {victim, other, pe["sha256"]}
    assert _rows(store) == _expected(store)


def test_keyed_only(services: Services) -> None:
    with services.store.engine.connect() as conn:
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("file_have")}
        assert "ix_file_have_sha256" not in indexes
        if conn.dialect.name == "sqlite":
            ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'file_have'").scalar()
            assert "WITHOUT ROWID" in str(ddl)


def test_0010_upgrades_an_older_table(db_url: str) -> None:
    store = Store(db_url)
    store.migrate()
    assert Importer(store, "test").import_lines(LABELS.read_text().splitlines()[:20]).created == 20
    expected = _expected(store)
    with store.engine.begin() as conn:  # 0009's table: rowid, sha256 index, a stale row
        conn.exec_driver_sql("DROP TABLE file_have")
        conn.exec_driver_sql(
            "CREATE TABLE file_have (value VARCHAR(512), sha256 VARCHAR(64), PRIMARY KEY (value, sha256))"
        )
        conn.exec_driver_sql("CREATE INDEX ix_file_have_sha256 ON file_have (sha256)")
        conn.exec_driver_sql("INSERT INTO file_have VALUES ('stale', 'f')")
        conn.execute(
            schema.schema_migrations.delete().where(schema.schema_migrations.c.name == "0010_have_by_key")
        )
    assert migrations.migrate(store.engine) == ["0010_have_by_key"]
    assert _rows(store) == expected
    with store.engine.connect() as conn:
        assert "ix_file_have_sha256" not in {i["name"] for i in sa.inspect(conn).get_indexes("file_have")}
    store.close()


def test_0015_drops_the_internal_keys_rows(db_url: str) -> None:
    """``have:`` holds served attributes only: ``verdict_sources`` (kinfile's own bookkeeping,
    never served) is no value, and 0015 removes the rows an older import wrote."""
    store = Store(db_url)
    store.migrate()
    assert Importer(store, "test").import_lines(LABELS.read_text().splitlines()[:20]).created == 20
    values = {v for v, _s in _rows(store)}
    assert "verdict_sources" not in values and {"imported", "last_analysis_results"} <= values
    expected = _expected(store)
    shas = sorted({s for _v, s in expected})
    with store.engine.begin() as conn:  # as an import before 0015 left it
        conn.execute(schema.file_have.insert(), [{"value": "verdict_sources", "sha256": s} for s in shas])
        conn.execute(
            schema.schema_migrations.delete().where(
                schema.schema_migrations.c.name == "0015_have_served_keys_only"
            )
        )
    assert migrations.migrate(store.engine) == ["0015_have_served_keys_only"]
    assert _rows(store) == expected
    store.close()
