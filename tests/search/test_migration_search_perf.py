"""Migration 0006_search_perf on a database created by the earlier migrations: the covering
``(type_tag, size)`` index, name trigrams and ``file_av_words`` backfilled, ``file_av_labels``
dropped, and the modifiers that read them answer as before."""

from __future__ import annotations

import json
import time
from pathlib import Path

import sqlalchemy as sa

from kinfile import search
from kinfile.services import Services
from kinfile.settings import load_settings
from kinfile.storage import avterms, migrations, schema
from kinfile.storage.store import Store, create_engine_for

SHA256 = "a" * 64
REPORT = {
    "type_tag": "peexe",
    "last_analysis_results": {
        "Microsoft": {"category": "malicious", "result": "Trojan:Win32/Zbot.A!MTB"},
        "Kaspersky": {"category": "malicious", "result": "HEUR:Trojan.Win32.Generic"},
        "ClamAV": {"category": "undetected", "result": None},
    },
    "last_analysis_stats": {"malicious": 2},
}
NEW = {schema.file_name_trigrams.name, schema.file_av_words.name}


def old_schema() -> sa.MetaData:
    """Today's tables minus what 0006 adds, plus 0002's ``file_av_labels``; no new index."""
    old = sa.MetaData()
    for table in schema.metadata.sorted_tables:
        if table.name in NEW:
            continue
        columns = [
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in table.columns
        ]
        sa.Table(table.name, old, *columns)
    sa.Table(
        "file_av_labels",
        old,
        sa.Column("value", sa.String(512), primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
    )
    return old


def test_0006_upgrades_an_older_database(db_url: str, tmp_path: Path) -> None:
    engine = create_engine_for(db_url)
    old_schema().create_all(engine)
    earlier = [name for name, _step in migrations.MIGRATIONS]
    earlier = earlier[: earlier.index("0006_search_perf")]
    with engine.begin() as conn:
        for name in earlier:
            conn.execute(schema.schema_migrations.insert().values(name=name, applied=int(time.time())))
        conn.execute(
            schema.files.insert().values(
                sha256=SHA256,
                md5="d" * 32,
                sha1="c" * 40,
                size=4096,
                type_tag="peexe",
                times_submitted=1,
                unique_sources=1,
                positives=2,
                downloadable=False,
                schema_version=2,
                report=json.dumps(REPORT),
                last_submission_date=1_790_000_000,
            )
        )
        conn.execute(schema.file_names.insert().values(value="Invoice_2024.PDF", sha256=SHA256))
        conn.execute(
            sa.text("INSERT INTO file_av_labels (value, sha256) VALUES (:v, :s)"),
            {"v": "*:zbot", "s": SHA256},
        )
    engine.dispose()
    ran = Store(db_url).migrate()
    assert ran[0] == "0006_search_perf"
    engine = create_engine_for(db_url)
    try:
        inspector = sa.inspect(engine)
        assert not inspector.has_table("file_av_labels")
        assert "ix_files_type_tag_size" in {i["name"] for i in inspector.get_indexes("files")}
        with engine.connect() as conn:
            grams = set(conn.execute(sa.select(schema.file_name_trigrams.c.value)).scalars())
            if avterms.uses_terms(conn.dialect.name):  # 0009 made the rows an FTS5 index
                assert not inspector.has_table("file_av_words")
                terms = avterms.vocabulary(conn)
                words = {}
                for value in ("zbot", "trojan", "trojan:win32/zbot.a!mtb", "generic"):
                    engines = [
                        e
                        for e in ("kaspersky", "microsoft")
                        if avterms.engine_prefix(e) + avterms.encode(value) in terms
                    ]
                    assert terms.get(avterms.value_term(value)) == 1
                    words[value] = f",{','.join(engines)},"
            else:
                av = schema.file_av_words
                words = {r[0]: r[1] for r in conn.execute(sa.select(av.c.value, av.c.engines))}
    finally:
        engine.dispose()
    assert words["zbot"] == ",microsoft,"
    assert words["trojan"] == ",kaspersky,microsoft,"
    assert words["trojan:win32/zbot.a!mtb"] == ",microsoft,"
    assert {"inv", "_20", ".pd", "pdf"} <= grams
    services = Services(load_settings({"home": str(tmp_path / "home"), "db": db_url}, env={}))
    try:
        for query, hit in (
            ("engines:zbot", True),
            ("engines:trojan", True),
            ("microsoft:zbot", True),
            ("kaspersky:zbot", False),
            ("kaspersky:generic", True),
            ("clamav:trojan", False),
            ("name:invoice_2024", True),
            ("name:*.pdf", True),
            ("name:voice_2023", False),
            ("invoice", True),
        ):
            assert [h.sha256 for h in search.search(services, query).hits] == ([SHA256] if hit else []), query
        assert services.store.migrate() == []
    finally:
        services.close()
