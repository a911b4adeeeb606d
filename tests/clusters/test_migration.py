"""Migration 0004_clusters on a database created before it: columns, index, cache table, backfill."""

from __future__ import annotations

import json
import time

import sqlalchemy as sa

from kinfile import clusters
from kinfile.storage import schema
from kinfile.storage.store import Store, create_engine_for

REPORT = {
    "type_tag": "peexe",
    "vhash": "pe1_0123456789abcdef0123",
    "last_analysis_stats": {"malicious": 7},
    "popular_threat_classification": {
        "popular_threat_name": [{"count": 3, "value": "vilsel"}, {"count": 5, "value": "Sality"}],
        "popular_threat_category": [{"count": 4, "value": "trojan"}],
    },
}
DAY = "2024-01-02"


def old_schema() -> sa.MetaData:
    """Today's schema minus what 0004 adds."""
    new_columns = {c.name for c in schema.CLUSTER_COLUMNS}
    old = sa.MetaData()
    for table in schema.metadata.sorted_tables:
        if table.name == schema.vhash_cluster_days.name:
            continue
        columns = [
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in table.columns
            if not (table.name == "files" and c.name in new_columns)
        ]
        sa.Table(table.name, old, *columns)
    return old


def test_0004_upgrades_an_older_database(db_url: str) -> None:
    engine = create_engine_for(db_url)
    old_schema().create_all(engine)
    start = int(clusters.parse_date(DAY).timestamp())
    with engine.begin() as conn:
        for name in ("0001_initial", "0002_search"):
            conn.execute(schema.schema_migrations.insert().values(name=name, applied=int(time.time())))
        for i in range(2):
            conn.execute(
                sa.table(
                    "files",
                    *(
                        sa.column(n)
                        for n in ("sha256", "md5", "sha1", "size", "times_submitted", "unique_sources")
                    ),
                    *(
                        sa.column(n)
                        for n in ("positives", "downloadable", "schema_version", "report", "vhash")
                    ),
                    *(sa.column(n) for n in ("first_submission_date", "last_modification_date", "type_tag")),
                )
                .insert()
                .values(
                    sha256=f"{i}" * 64,
                    md5="d" * 32,
                    sha1="c" * 40,
                    size=10,
                    times_submitted=1,
                    unique_sources=1,
                    positives=7,
                    downloadable=True,
                    schema_version=2,
                    report=json.dumps(REPORT),
                    vhash=REPORT["vhash"],
                    first_submission_date=start + 60,
                    last_modification_date=start + 60,
                    type_tag="peexe",
                )
            )
    engine.dispose()
    store = Store(db_url)
    assert "0004_clusters" in store.migrate()
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(schema.files.c.threat_family, schema.files.c.threat_category)).all()
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("files")}
    assert rows == [("sality", "trojan")] * 2  # the highest count wins, lower-cased
    assert "ix_files_fs_vhash" in indexes
    day = clusters.day_clusters(store, DAY)
    assert (day.num_candidates, day.num_clusters, day.size_top200) == (2, 1, 2)
    assert (day.clusters[0].label, day.clusters[0].avg_positives) == ("sality [0000]", 7)
    assert store.migrate() == []
    store.close()
