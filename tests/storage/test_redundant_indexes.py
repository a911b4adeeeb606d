"""0011: the single-column ``files`` indexes that a composite index leads with are gone, and the
searches they served still run from an index (both backends)."""

from __future__ import annotations

import sqlalchemy as sa

from kinfile.storage import migrations, schema
from kinfile.storage.store import Store


def _indexes(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return {i["name"] or "" for i in sa.inspect(conn).get_indexes("files")}


def test_new_and_upgraded_stores_lack_the_redundant_indexes(db_url: str) -> None:
    store = Store(db_url)
    store.migrate()
    names = _indexes(store)
    assert not names & set(schema.REDUNDANT_INDEXES)
    leaders = {"ix_files_order_size", "ix_files_type_tag_size", "ix_files_order_positives"}
    assert leaders | {"ix_files_order_first_submission_date", "ix_files_order_last_submission_date"} <= names
    with store.engine.begin() as conn:  # an older store: 0001's single-column indexes
        for name, column in zip(
            schema.REDUNDANT_INDEXES,
            ("size", "type_tag", "first_submission_date", "last_submission_date", "positives"),
            strict=True,
        ):
            conn.exec_driver_sql(f"CREATE INDEX {name} ON files ({column})")
        conn.execute(
            schema.schema_migrations.delete().where(
                schema.schema_migrations.c.name == "0011_drop_redundant_indexes"
            )
        )
    assert set(schema.REDUNDANT_INDEXES) <= _indexes(store)
    assert migrations.migrate(store.engine) == ["0011_drop_redundant_indexes"]
    assert _indexes(store) == names
    store.close()


def test_their_ranges_still_use_an_index(tmp_path: object) -> None:
    store = Store(f"sqlite:///{tmp_path}/k.db")
    store.migrate()
    with store.engine.connect() as conn:
        for where in (
            "positives >= 5",
            "size BETWEEN 10 AND 20",
            "type_tag = 'peexe'",
            "first_submission_date > 5",
            "last_submission_date < 5",
        ):
            plan = " ".join(
                r[-1]
                for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN SELECT sha256 FROM files WHERE {where}")
            )
            assert "USING" in plan and "INDEX" in plan, (where, plan)
    store.close()
