"""The one schema, valid on SQLite and PostgreSQL (and kept Citus-compatible).

Rules (see docs/architecture.md):

* ``files.sha256`` is the primary key; every other file table has ``sha256`` in its primary
  key, so each table can be distributed by ``sha256`` and no query needs a cross-shard join.
* Every attribute search filters or sorts on is a real column or a side table
  ``(value, sha256)``; the full analysis report is kept as JSON text alongside for retrieval
  (on SQLite compressed from ``jsontext.PACK_FROM`` characters on: :func:`stored_report`).
* No foreign keys between file tables (Citus cannot enforce them across shards).
* Dates are UTC epoch seconds (BIGINT).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from kinfile import jsontext

metadata = MetaData()

files = Table(
    "files",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("md5", String(32), nullable=False),
    Column("sha1", String(40), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("type_tag", String(32)),
    Column("type_description", String(128)),
    Column("magic", Text),
    Column("magika", String(64)),
    Column("ssdeep", Text),
    Column("tlsh", String(80)),
    Column("meaningful_name", Text),
    Column("first_submission_date", BigInteger),
    Column("last_submission_date", BigInteger),
    Column("times_submitted", Integer, nullable=False, default=0),
    Column("unique_sources", Integer, nullable=False, default=0),
    Column("last_analysis_date", BigInteger),
    Column("last_modification_date", BigInteger),
    Column("positives", Integer, nullable=False, default=0),
    Column("downloadable", Boolean, nullable=False, default=True),
    Column("schema_version", Integer, nullable=False),
    Column("report", Text, nullable=False),
)


def packs_reports(dialect: str) -> bool:
    """Whether a database keeps ``files.report`` compressed (:func:`stored_report`)."""
    return dialect == "sqlite"


def stored_report(value: str | bytes, dialect: str) -> str | bytes:
    """A ``files.report`` value (JSON text, or already packed) as the database ``dialect`` keeps
    it. SQLite: compressed from ``jsontext.PACK_FROM`` characters on (a BLOB in the TEXT column:
    a report of VirusTotal's ~70 engine results shrinks from ~6 KB to ~1.3 KB and is written
    faster); PostgreSQL: the text (it compresses long values itself, TOAST)."""
    return jsontext.pack_report(value) if packs_reports(dialect) and isinstance(value, str) else value


Index("ix_files_md5", files.c.md5)
Index("ix_files_sha1", files.c.sha1)
Index("ix_files_schema_version", files.c.schema_version)
# 0001 also indexed size, type_tag, first/last_submission_date and positives alone; each is the
# leading column of a later index (ix_files_order_*, ix_files_type_tag_size), which answers the
# same ranges, so 0011 dropped them: five fewer B-trees to update per written file.
REDUNDANT_INDEXES = ("ix_files_size", "ix_files_type_tag", "ix_files_fs", "ix_files_ls", "ix_files_positives")

# -- search (issue 4, migration 0002_search): hot columns of the search modifiers --------------
SEARCH_COLUMNS: tuple[Column[Any], ...] = (
    Column("imphash", String(32)),
    Column("vhash", String(128)),
    Column("authentihash", String(64)),
    Column("rich_pe_header_hash", String(32)),
    Column("main_icon_dhash", String(32)),
    Column("main_icon_md5", String(32)),
    Column("telfhash", String(80)),
    Column("creation_date", BigInteger),
    Column("suggested_threat_label", String(256)),
    Column("reputation", Integer),
    # when the row's report was last written (not a report value): the fuzzy-hash indexes read
    # the rows written since their last refresh through this column (similarity/indexes.py)
    Column("stored_at", BigInteger),
)
for _column in SEARCH_COLUMNS:
    files.append_column(_column)
SEARCH_INDEXES: tuple[Index, ...] = (
    *(
        Index(f"ix_files_{name}", files.c[name])
        for name in (
            "imphash",
            "vhash",
            "authentihash",
            "rich_pe_header_hash",
            "main_icon_dhash",
            "main_icon_md5",
            "telfhash",
            "creation_date",
            "suggested_threat_label",
            "last_modification_date",
            "stored_at",
        )
    ),
    # keyset pagination: ORDER BY <key>, sha256 walks one index
    *(
        Index(f"ix_files_order_{name}", files.c[name], files.c.sha256)
        for name in ("first_submission_date", "last_submission_date", "positives", "times_submitted", "size")
    ),
)


def side_table(name: str) -> Table:
    """A searchable multi-valued attribute: ``(value, sha256)`` with a composite key."""
    table = Table(
        name,
        metadata,
        Column("value", String(512), primary_key=True),
        Column("sha256", String(64), primary_key=True),
    )
    Index(f"ix_{name}_sha256", table.c.sha256)
    return table


file_names = side_table("file_names")
file_tags = side_table("file_tags")
file_type_tags = side_table("file_type_tags")

SIDE_TABLES = {"names": file_names, "tags": file_tags, "type_tags": file_type_tags}


def keyed_table(name: str, width: int = 512, *extra: Column[Any]) -> Table:
    """A side table keyed ``(value, sha256)`` only: no rowid on SQLite, no sha256 index."""
    return Table(
        name,
        metadata,
        Column("value", String(width), primary_key=True),
        Column("sha256", String(64), primary_key=True),
        *extra,
        sqlite_with_rowid=False,
    )


# ``have:`` values are in most files (md5, last_analysis_results...): of ~10 rows per file, each
# lands at a random place of its value's range. Keyed (value, sha256) only: no rowid on SQLite,
# no sha256 index (migration 0010), so a row is one B-tree insert, not three. The rows of a
# replaced or deleted file are deleted by key, from its stored report (store.delete_side_rows).
file_have = keyed_table("file_have")
# side tables without a sha256 index (their rows are deleted by key: store.delete_side_rows)
KEYED_SIDE_TABLES = frozenset({"have", "name_trigrams"})

# -- search side tables (issue 4): one per multi-valued modifier, filled by storage/searchable.py
SEARCH_SIDE_TABLES = {
    name: file_have if name == "have" else side_table(f"file_{name}")
    for name in (
        "sections",  # section:
        "section_md5s",  # sectionmd5:
        "imports",  # imports:
        "exports",  # exports:
        "resources",  # peresource:
        "langs",  # lang:
        "packers",  # packer:
        "netguids",  # netguid:
        "signature",  # signature:
        "metadata",  # metadata:
        "have",  # have:
        "yara_rules",  # crowdsourced_yara_rule:
    )
}
SIDE_TABLES.update(SEARCH_SIDE_TABLES)

submissions = Table(
    "submissions",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("date", BigInteger, nullable=False),
    Column("name", Text),
    Column("source_key", String(128), nullable=False),
    Column("interface", String(32), nullable=False),
)
Index("ix_submissions_date", submissions.c.date)

analyses = Table(
    "analyses",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("date", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("stats", Text, nullable=False),
    Column("results", Text, nullable=False),
)

# Links between files (parent -> child and the reverse), stored once per direction and keyed
# by the subject so that every relationship lookup stays on the subject's shard.
file_relations = Table(
    "file_relations",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("relationship", String(64), primary_key=True),
    Column("target", String(64), primary_key=True),
    Column("name", Text),
    Column("date", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("created", BigInteger, nullable=False),
)

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("applied", BigInteger, nullable=False),
)

# -- vhash clusters (issue 7, migration 0004_clusters) -----------------------------------------
# Each file's AVClass family and category (top of popular_threat_classification), for cluster
# labels; the covering index answers a day's GROUP BY vhash and its cache check from the index.
CLUSTER_COLUMNS: tuple[Column[Any], ...] = (
    Column("threat_family", String(128)),
    Column("threat_category", String(64)),
)
for _column in CLUSTER_COLUMNS:
    files.append_column(_column)
CLUSTER_INDEXES: tuple[Index, ...] = (
    Index(
        "ix_files_fs_vhash",
        files.c.first_submission_date,
        files.c.vhash,
        files.c.positives,
        files.c.last_modification_date,
    ),
)

# One computed day (or window of days) of vhash clusters. Not a file table (no sha256): a small
# local table, valid while the day's candidate count and newest modification date are unchanged.
vhash_cluster_days = Table(
    "vhash_cluster_days",
    metadata,
    Column("day", BigInteger, primary_key=True),  # UTC epoch seconds of the first day
    Column("days", Integer, primary_key=True),  # window length
    Column("candidates", BigInteger, nullable=False),
    Column("max_modified", BigInteger, nullable=False),
    Column("computed", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
)

# -- clue rules (issue 8, migration 0005_clues) ---------------------------------------------------
# Each file's clue features: as text "<TYPE>:<value>" (search, live matching, clue files) and as
# one packed row of 64-bit codes (monthly mining reads a month of files in one pass).
file_clue_features = side_table("file_clue_features")
file_clue_codes = Table(
    "file_clue_codes",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),  # sorted little-endian int64 codes
)
CLUE_SIDE_TABLES = {"clue_features": file_clue_features, "clue_codes": file_clue_codes}
SIDE_TABLES.update(CLUE_SIDE_TABLES)

# The mined rules, keyed by clue id (sha256 of the canonical feature list). Not a file table.
clue_rules = Table(
    "clue_rules",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("label", String(16), nullable=False),
    Column("month", String(7), nullable=False),  # YYYY-MM of the mining month
    Column("features", Text, nullable=False),  # JSON ["<TYPE>:<value>", ...], sorted
    Column("anchor", String(512), nullable=False),  # the feature with the fewest files
    Column("support", BigInteger, nullable=False),
    Column("in_label", BigInteger, nullable=False),
    Column("positive_rate", Float, nullable=False),
    Column("mined_at", BigInteger, nullable=False),
)
Index("ix_clue_rules_month", clue_rules.c.month)


# -- search performance (migration 0006_search_perf) -------------------------------------------
# Covering index for per-type aggregates over size (AVG(size) GROUP BY type_tag from the index).
PERF_INDEXES: tuple[Index, ...] = (Index("ix_files_type_tag_size", files.c.type_tag, files.c.size),)

# Trigrams of every submitted name (``name:`` and bare words have "contains" semantics): the
# candidates of a pattern are the files holding its rarest trigrams; the exact LIKE runs on those.
# Keyed (trigram, sha256), no rowid on SQLite; names are never deleted, so no sha256 index.
file_name_trigrams = keyed_table("file_name_trigrams", 16)

# Detection labels (replaces 0002's ``file_av_labels``): one row per distinct label or label word
# of a file, across all its engines, with the engines that gave it (``",eset-nod32,microsoft,"``).
# ``engines:<x>`` is ``value = x``; ``<engine>:<x>`` adds ``engines LIKE '%,<engine>,%'``. Rows
# of a replaced report are deleted by primary key from the old report's values (no sha256 index).
file_av_words = keyed_table("file_av_words", 512, Column("engines", Text, nullable=False))
SIDE_TABLES.update({"name_trigrams": file_name_trigrams, "av_words": file_av_words})


# A summary kept on every write (store._insert_file_rows, report replacement): files and bytes
# per type tag, so per-type statistics are a lookup, not an aggregate over every file. A small
# table of its own (on Citus: a reference or coordinator-local table, not distributed).
type_stats = Table(
    "type_stats",
    metadata,
    Column("type_tag", String(32), primary_key=True),
    Column("files", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
)


# Files whose bytes are stored but not yet in the content index (issue 5). Written in the same
# transaction as the file; the indexer deletes a row once the file's segment is committed. Keyed
# by sha256 like every per-file table (Citus: distributed by sha256).
content_pending = Table(
    "content_pending",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("queued", BigInteger, nullable=False),
)
