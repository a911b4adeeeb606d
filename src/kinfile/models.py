"""Plain types shared across layers (analysis, storage, services, adapters)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kinfile.jsontext import storable

SCHEMA_VERSION = 2
"""Version of the analysis report. Bump it when analysis output changes; ``kinfile reanalyse``
re-runs analysis on stored bytes for files whose report is older.

2: ``vhash`` (issue 7)."""

INTERNAL_KEYS = frozenset({"analysis_seconds", "verdict_sources"})
"""Report keys kinfile keeps for itself: never served in ``attributes``, never a ``have:`` value."""

# Parent -> child relationship name and its reverse (child -> parent).
RELATIONSHIP_PAIRS: dict[str, str] = {
    "bundled_files": "compressed_parents",
    "pe_resource_children": "pe_resource_parents",
    "overlay_children": "overlay_parents",
    "embedded_files": "embedded_parents",
}


@dataclass(frozen=True)
class Submission:
    """One act of submitting a file: recorded every time, even for a known sha256."""

    date: int
    name: str | None
    source_key: str
    interface: str  # "cli", "api", "extracted", "import"

    def __post_init__(self) -> None:
        if self.name is not None:  # an uploaded name with NUL or a lone surrogate: as stored
            object.__setattr__(self, "name", storable(self.name) or None)
        # a --source of undecodable bytes failed every file's store (UnicodeEncodeError)
        object.__setattr__(self, "source_key", storable(self.source_key))


@dataclass
class FileRecord:
    """What analysis produced for one file: the report attributes and where the bytes are."""

    sha256: str
    md5: str
    sha1: str
    size: int
    attributes: dict[str, Any]
    schema_version: int = SCHEMA_VERSION
    downloadable: bool = True
    # The ``files`` row and side-table rows, when already built (by ingest workers, so that the
    # single writer only executes statements); the store builds them otherwise.
    rows: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Relation:
    parent: str
    child: str
    relationship: str
    name: str | None

    def __post_init__(self) -> None:
        if self.name is not None:  # a member name with NUL or undecodable bytes: as stored
            object.__setattr__(self, "name", storable(self.name) or None)


@dataclass
class IngestItem:
    """Everything one submitted file brings to the store in one transaction.

    ``record`` is ``None`` for a known file whose report is current: only the submission (and
    relation) is written then. ``submission`` is ``None`` for a reanalysis, which is not a
    submission.
    """

    sha256: str
    submission: Submission | None
    record: FileRecord | None = None
    children: list[IngestItem] = field(default_factory=list)
    relation: Relation | None = None
    replace_report: bool = False
