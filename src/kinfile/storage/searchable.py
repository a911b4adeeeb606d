"""What of a report becomes searchable: hot columns of ``files`` and side-table rows.

The store calls these two functions for every report it writes, in the same transaction, so
search never has to scan report JSON. Adding a searchable attribute = a column or side table in
``schema.py`` (with a migration) + one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_VALUE = 512

ColumnExtractor = Callable[[dict[str, Any]], Any]
SideExtractor = Callable[[dict[str, Any]], set[str]]


def _list(key: str) -> SideExtractor:
    def extract(attrs: dict[str, Any]) -> set[str]:
        return {str(v)[:MAX_VALUE] for v in attrs.get(key) or [] if v not in (None, "")}

    return extract


# files column -> value taken from the report
COLUMNS: dict[str, ColumnExtractor] = {
    "type_tag": lambda a: a.get("type_tag"),
    "type_description": lambda a: a.get("type_description"),
    "magic": lambda a: a.get("magic"),
    "magika": lambda a: a.get("magika"),
    "ssdeep": lambda a: a.get("ssdeep"),
    "tlsh": lambda a: a.get("tlsh"),
    "positives": lambda a: int((a.get("last_analysis_stats") or {}).get("malicious") or 0),
}

# side table name (schema.SIDE_TABLES) -> values taken from the report
SIDE_VALUES: dict[str, SideExtractor] = {
    "tags": _list("tags"),
    "type_tags": _list("type_tags"),
}


def file_columns(attrs: dict[str, Any]) -> dict[str, Any]:
    return {column: extract(attrs) for column, extract in COLUMNS.items()}


def side_values(attrs: dict[str, Any]) -> dict[str, set[str]]:
    return {name: extract(attrs) for name, extract in SIDE_VALUES.items()}
