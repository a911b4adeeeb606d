"""Migration 0002_search on a database created by 0001: columns added, reports backfilled."""

from __future__ import annotations

import json
import time
from pathlib import Path

import sqlalchemy as sa

from kinfile import search
from kinfile.services import Services
from kinfile.settings import load_settings
from kinfile.storage import schema
from kinfile.storage.store import Store, create_engine_for

REPORT = {
    "type_tag": "pedll",
    "type_tags": ["executable", "pedll"],
    "tags": ["pedll"],
    "pe_info": {
        "imphash": "AF457A899DFF0BE8F96C758B66FD5F37",
        "sections": [{"name": ".text", "md5": "ab" * 16}],
    },
    "signature_info": {"product": "Simple Launcher"},
}


def old_schema() -> sa.MetaData:
    """The 0001 schema: today's tables minus what 0002 adds."""
    new_columns = {c.name for c in schema.SEARCH_COLUMNS}
    new_tables = {t.name for t in schema.SEARCH_SIDE_TABLES.values()}
    old = sa.MetaData()
    for table in schema.metadata.sorted_tables:
        if table.name in new_tables:
            continue
        columns = [
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in table.columns
            if not (table.name == "files" and c.name in new_columns)
        ]
        sa.Table(table.name, old, *columns)
    return old


def test_0002_upgrades_a_0001_database(db_url: str, tmp_path: Path) -> None:
    engine = create_engine_for(db_url)
    old_schema().create_all(engine)
    sha256 = "e" * 64
    with engine.begin() as conn:
        conn.execute(schema.schema_migrations.insert().values(name="0001_initial", applied=int(time.time())))
        conn.execute(
            sa.table(
                "files",
                *(
                    sa.column(n)
                    for n in ("sha256", "md5", "sha1", "size", "times_submitted", "unique_sources")
                ),
                *(
                    sa.column(n)
                    for n in ("positives", "downloadable", "schema_version", "report", "type_tag")
                ),
            )
            .insert()
            .values(
                sha256=sha256,
                md5="d" * 32,
                sha1="c" * 40,
                size=10,
                times_submitted=0,
                unique_sources=0,
                positives=0,
                downloadable=True,
                schema_version=1,
                report=json.dumps(REPORT),
                type_tag="pedll",
            )
        )
    engine.dispose()
    ran = Store(db_url).migrate()
    assert ran[0] == "0002_search"  # later migrations (other features) may follow
    services = Services(load_settings({"home": str(tmp_path / "home"), "db": db_url}, env={}))
    try:
        for query in (
            "imphash:af457a899dff0be8f96c758b66fd5f37",
            "section:.text",
            f"sectionmd5:{'ab' * 16}",
            'signature:"simple launcher"',
            "type:pedll",
        ):
            assert [h.sha256 for h in search.search(services, query).hits] == [sha256], query
        assert services.store.migrate() == []
    finally:
        services.close()
