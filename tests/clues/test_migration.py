"""Migration 0005_clues on a database created before it: tables created, features backfilled."""

from __future__ import annotations

import json
import time

import sqlalchemy as sa

from kinfile.clues import sql
from kinfile.storage import schema
from kinfile.storage.store import Store, create_engine_for

REPORT = {"pe_info": {"sections": [{"name": ".Upack", "virtual_size": 200000}], "imphash": "ABC"}}
NEW_TABLES = {"file_clue_features", "file_clue_codes", "clue_rules"}


def test_0005_upgrades_an_older_database(db_url: str) -> None:
    engine = create_engine_for(db_url)
    old = sa.MetaData()
    for table in schema.metadata.sorted_tables:
        if table.name not in NEW_TABLES:
            table.to_metadata(old)
    old.create_all(engine)
    with engine.begin() as conn:
        for name in ("0001_initial", "0002_search", "0004_clusters"):
            conn.execute(schema.schema_migrations.insert().values(name=name, applied=int(time.time())))
        conn.execute(
            schema.files.insert().values(
                sha256="a" * 64,
                md5="b" * 32,
                sha1="c" * 40,
                size=1,
                times_submitted=0,
                unique_sources=0,
                positives=0,
                downloadable=True,
                schema_version=1,
                report=json.dumps(REPORT),
            )
        )
    engine.dispose()
    store = Store(db_url)
    assert "0005_clues" in store.migrate()
    assert sorted(sql.file_features(store, "a" * 64)) == [
        "PE_IMPHASH:abc",
        "PE_SECTION_NAME_AT_INDEX:0:.upack",
        "PE_SECTION_VSIZE_RANGE_AT_INDEX:0:131072-262143",
    ]
    with store.engine.connect() as conn:
        blob = conn.execute(sa.select(schema.file_clue_codes.c.value)).scalar()
    assert blob is not None and len(blob) == 3 * 8
    assert store.migrate() == []
