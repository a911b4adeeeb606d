"""Many new report-only files in one transaction (``import-vt``): the writer only executes.

Everything a new file needs is computed where its report is parsed (a worker process with
``--jobs``): the ``files`` row and, per side table, ONE JSON text of its values (a list; for
``file_av_words`` a ``{value: engines}`` object). The writer then sends each side table of a
batch to the database as one JSON document ``{sha256: values}`` and one ``INSERT ... SELECT``
expands it (SQLite ``json_each``, PostgreSQL ``json_each``/``json_array_elements_text``): the rows
never cross the driver one by one (on SQLite the per-row binding cost more than the B-tree
insert), and SQLite inserts them in key order, so each B-tree is filled page after page.

The rows are exactly :func:`kinfile.storage.searchable.side_rows`'; the ``files`` row, the side
rows and the type statistics of a batch are written in ONE transaction, so after a crash a file
is either fully searchable or absent.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from kinfile.clues import features
from kinfile.models import FileRecord
from kinfile.storage import avterms, schema, searchable

AV_WORDS = "av_words"


@dataclass
class NewFile:
    """A new report-only file, ready to write: ``files`` row and side-table values as JSON."""

    sha256: str
    row: dict[str, Any]
    side: dict[str, str]  # side table name -> JSON list of values ({value: engines} for av_words)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # non-text values (bytes)
    terms: str = ""  # SQLite: the detection words as an avterms document (instead of side)


def new_file(rec: FileRecord, row: dict[str, Any], terms: bool = False) -> NewFile:
    """The :class:`NewFile` of a report whose ``files`` row is ``row`` (``store.file_columns``);
    with ``terms`` (a SQLite store) its detection words as an avterms document."""
    side: dict[str, str] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, values in _side_values(rec.attributes).items():
        if not values:
            continue
        if all(isinstance(v, str) for v in values):
            side[name] = json_list(values)
        else:
            rows[name] = [{"value": v, "sha256": rec.sha256} for v in sorted(values)]
    names = searchable.imported_names(rec.attributes)
    if names:  # VirusTotal's submission names: name: finds the imported file
        side["names"] = json_list(names)
        side["name_trigrams"] = json_list(searchable.names_trigrams(names))
    if terms:
        return NewFile(rec.sha256, row, side, rows, av_document(rec.attributes))
    words = searchable.extract_av_words(rec.attributes)
    if words:
        side[AV_WORDS] = json.dumps(words, separators=(",", ":"))
    return NewFile(rec.sha256, row, side, rows)


def json_list(values: Iterable[str]) -> str:
    """A side table's values as :class:`NewFile` carries them: a sorted, compact JSON list."""
    return json.dumps(sorted(values), separators=(",", ":"))


def _side_values(attrs: dict[str, Any]) -> dict[str, Any]:
    """:func:`searchable.side_values`, the clue features extracted once (their packed codes are
    made from the same texts instead of a second extraction)."""
    clue_codes = searchable.SIDE_VALUES.get("clue_codes")
    if clue_codes is not features.feature_codes or "clue_features" not in searchable.SIDE_VALUES:
        return searchable.side_values(attrs)
    out: dict[str, Any] = {
        name: extract(attrs) for name, extract in searchable.SIDE_VALUES.items() if name != "clue_codes"
    }
    texts = out["clue_features"]
    out["clue_codes"] = {features.packed_codes(texts)} if texts else set()
    return out


# -- detection words ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=200_000)
def _label_terms(engine: str, label: str) -> tuple[str, str, tuple[str, ...]]:
    """An engine's label as avterms terms: its engine key, its pair terms joined by spaces and its
    value terms (all repeat across reports)."""
    key, parts = searchable.engine_label(engine, label)
    values = tuple(avterms.value_term(part) for part in parts)
    prefix = avterms.engine_prefix(key)
    return key, " ".join(prefix + value[1:] for value in values), values


LabelTerms = tuple[str, str, tuple[str, ...]]  # one label's _label_terms


def av_document(attrs: dict[str, Any]) -> str:
    """``avterms.document(searchable.extract_av_words(attrs))`` without building the words: the same terms (in
    another order), from a memo per (engine, label) (:func:`document_of`)."""
    results = attrs.get("last_analysis_results")
    if not isinstance(results, dict):
        return ""
    labels: list[LabelTerms] = []
    for engine, result in results.items():
        label = result.get("result") if isinstance(result, dict) else None
        if isinstance(label, str) and isinstance(engine, str):
            labels.append(_label_terms(engine, label))
    found = document_of(labels)
    return avterms.document(searchable.extract_av_words(attrs)) if found is None else found


def document_of(labels: Iterable[LabelTerms]) -> str | None:
    """The avterms document of a report's labels (:func:`_label_terms` of each, in results
    order), or ``None`` where only the words dict gives the exact terms: two engines with one
    modifier key, or enough labels to reach the side-value cap."""
    pairs: list[str] = []
    values: set[str] = set()
    keys: set[str] = set()
    total = 0
    for key, joined, terms in labels:
        if terms:
            if key in keys:
                return None
            keys.add(key)
            pairs.append(joined)
            values.update(terms)
            total += len(terms)
    if 2 * total >= searchable.MAX_SIDE_VALUES:  # pairs + values could reach the cap
        return None
    return " ".join((*values, *pairs))


# -- writing -------------------------------------------------------------------------------------
def write_new(store: Any, files: Sequence[NewFile]) -> set[str]:
    """Insert the files not stored yet, their side rows and type statistics in ONE transaction.

    ``store`` is a :class:`kinfile.storage.store.Store`. Returns the sha256s inserted (a file
    stored meanwhile by another writer is skipped: the caller enriches it instead).
    """
    unique = list({f.sha256: f for f in reversed(files)}.values())[::-1]  # first of each sha256
    if not unique:
        return set()
    with store.writing() as conn:
        if conn.dialect.name == "sqlite":
            inserted = _insert_files_sqlite(conn, unique)
        else:
            statement = store._insert_ignore(schema.files).returning(
                schema.files.c.sha256, sort_by_parameter_order=True
            )
            inserted = {r[0] for r in conn.execute(statement, [f.row for f in unique])}
        chosen = [f for f in unique if f.sha256 in inserted]
        names = sorted({name for f in chosen for name in f.side})
        if avterms.uses_terms(conn.dialect.name):
            documents = {
                f.sha256: f.terms or avterms.document(json.loads(f.side[AV_WORDS]))
                for f in chosen
                if f.terms or AV_WORDS in f.side
            }
            avterms.insert_documents(conn, documents)
            names = [name for name in names if name != AV_WORDS]
        for name in names:
            payload = ",".join(f'"{f.sha256}":{f.side[name]}' for f in chosen if name in f.side)
            _expand(conn, schema.SIDE_TABLES[name].name, name == AV_WORDS, "{" + payload + "}")
        extra: dict[str, list[dict[str, Any]]] = {}
        per_type: dict[str, list[int]] = {}
        for f in chosen:
            for name, found in f.rows.items():
                extra.setdefault(name, []).extend(found)
            counts = per_type.setdefault(f.row.get("type_tag") or "", [0, 0])
            counts[0] += 1
            counts[1] += int(f.row["size"])
        for name, found in extra.items():
            conn.execute(schema.SIDE_TABLES[name].insert(), found)
        store._bump_type_stats(conn, per_type)
    return inserted


def _insert_files_sqlite(conn: Connection, files: list[NewFile]) -> set[str]:
    """Plain INSERT of the files not stored (inside ``BEGIN IMMEDIATE``: no one else writes)."""
    shas = json.dumps([f.sha256 for f in files])
    stored = {
        r[0]
        for r in conn.exec_driver_sql(
            "SELECT sha256 FROM files WHERE sha256 IN (SELECT value FROM json_each(?))", (shas,)
        )
    }
    fresh = [f for f in files if f.sha256 not in stored]
    if fresh:
        columns = list(fresh[0].row)
        sql = f"INSERT INTO files ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        values = operator.itemgetter(*columns)  # by name: rows of other paths may differ in order
        params = sorted((values(f.row) for f in fresh), key=operator.itemgetter(0))
        conn.exec_driver_sql(sql, params)  # in sha256 order (the first column)
    return {f.sha256 for f in fresh}


def _expand(conn: Connection, table: str, words: bool, payload: str) -> None:
    """Insert the rows of ``{sha256: values}`` (``{sha256: {value: engines}}`` when ``words``)."""
    if conn.dialect.name == "sqlite":
        if words:
            sql = (
                f"INSERT INTO {table} (value, sha256, engines) SELECT v.key, f.key, v.value "
                "FROM json_each(?) AS f, json_each(f.value) AS v ORDER BY 1, 2"
            )
        else:
            sql = (
                f"INSERT INTO {table} (value, sha256) SELECT v.value, f.key "
                "FROM json_each(?) AS f, json_each(f.value) AS v ORDER BY 1, 2"
            )
        conn.exec_driver_sql(sql, (payload,))
        return
    if words:
        sql = (
            f"INSERT INTO {table} (value, sha256, engines) SELECT v.key, f.key, v.value "
            "FROM json_each(CAST(:p AS json)) AS f CROSS JOIN LATERAL json_each_text(f.value) AS v"
        )
    else:
        sql = (
            f"INSERT INTO {table} (value, sha256) SELECT v.value, f.key "
            "FROM json_each(CAST(:p AS json)) AS f "
            "CROSS JOIN LATERAL json_array_elements_text(f.value) AS v(value)"
        )
    conn.execute(text(sql), {"p": payload})
