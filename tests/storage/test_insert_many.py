"""``store.insert_many`` and ``store.delete_keys``: on PostgreSQL one statement over a JSON
document (json_populate_recordset / json_array_elements) instead of a driver round per row, on
SQLite the driver's executemany. Texts of every kind, integers, NULL and duplicates come back as
they went in, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from kinfile.storage import schema
from kinfile.storage.store import Store, delete_keys, insert_many

TEXTS = [
    "plain",
    "quote ' and \" and \\ backslash",
    "Счёт-Фактура.PDF",
    "emoji 🦠 and CJK 病毒",
    '{"json": [1, 2]}',
    "tab\tnew\nline",
    "x" * 5000,
    "",
]


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    found = Store(db_url)
    found.migrate()
    yield found
    found.close()


def _all(store: Store, table: object) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(select(table)))  # type: ignore[call-overload]


def test_texts_integers_and_null_round_trip(store: Store) -> None:
    rows = [
        {
            "sha256": f"{i:064x}",
            "relationship": "contained",
            "target": f"{i + 1:064x}",
            "name": text,
            "date": 2**40 + i,
        }
        for i, text in enumerate(TEXTS)
    ]
    rows.append({"sha256": "f" * 64, "relationship": "r", "target": "e" * 64, "name": None, "date": -1})
    with store.engine.begin() as conn:
        insert_many(conn, schema.file_relations, rows)
        insert_many(conn, schema.file_relations, rows[:3], ignore=True)  # stored already: skipped
    expected = sorted((r["sha256"], r["relationship"], r["target"], r["name"], r["date"]) for r in rows)
    assert _all(store, schema.file_relations) == expected


def test_keyed_rows_inserted_ignoring_duplicates_and_deleted_by_key(store: Store) -> None:
    table = schema.file_have
    rows = [{"value": text[:512], "sha256": f"{i % 3:064x}"} for i, text in enumerate(TEXTS)]
    with store.engine.begin() as conn:
        insert_many(conn, table, rows + rows[:2], ignore=True)  # duplicates within one call
    assert _all(store, table) == sorted((r["value"], r["sha256"]) for r in rows)
    gone = [
        (rows[1]["value"], rows[1]["sha256"]),
        (rows[2]["value"], rows[2]["sha256"]),
        ("absent", "0" * 64),
    ]
    with store.engine.begin() as conn:
        delete_keys(conn, table, gone)
        delete_keys(conn, table, [])
    assert _all(store, table) == sorted((r["value"], r["sha256"]) for r in rows[:1] + rows[3:])


def test_bytes_go_through_executemany(store: Store) -> None:
    """Rows a JSON document cannot carry exactly (bytes) take the driver's path."""
    rows = [{"sha256": "a" * 64, "value": bytes(range(256))}, {"sha256": "b" * 64, "value": b"\x00"}]
    with store.engine.begin() as conn:
        insert_many(conn, schema.file_clue_codes, rows)
    assert _all(store, schema.file_clue_codes) == [("a" * 64, bytes(range(256))), ("b" * 64, b"\x00")]
