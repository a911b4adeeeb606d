"""The relationships registry: name → resolver of related objects for a file.

A resolver returns a page of *related items* ``{"type", "id", "attributes"?, "context_attributes"?}``.
Items of type ``file`` without attributes are completed by the API (full-object form) or sent as
descriptors (``/relationships/`` form). Later features register more relationships here
(``similar_files``, ``clues`` ...); ``/metadata`` lists them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kinfile.models import RELATIONSHIP_PAIRS

if TYPE_CHECKING:
    from kinfile.services import Services

Resolver = Callable[["Services", str, int, int], list[dict[str, Any]]]


@dataclass(frozen=True)
class Relationship:
    name: str
    description: str
    resolve: Resolver
    object_type: str = "file"


REGISTRY: dict[str, Relationship] = {}


def register(rel: Relationship) -> None:
    REGISTRY[rel.name] = rel


def get(name: str) -> Relationship | None:
    return REGISTRY.get(name)


def _submissions(services: Services, sha256: str, offset: int, limit: int) -> list[dict[str, Any]]:
    rows = services.store.submissions(sha256, offset, limit)
    items = []
    for r in rows:
        attrs = {"date": r["date"], "interface": r["interface"], "source_key": r["source_key"]}
        if r["name"]:
            attrs["name"] = r["name"]
        items.append({"type": "submission", "id": r["id"], "attributes": attrs})
    return items


def _file_relation(relationship: str) -> Resolver:
    def resolve(services: Services, sha256: str, offset: int, limit: int) -> list[dict[str, Any]]:
        rows = services.store.relations(sha256, relationship, offset, limit)
        items = []
        for r in rows:
            item: dict[str, Any] = {"type": "file", "id": r["target"]}
            if r["name"]:
                item["context_attributes"] = {"name": r["name"]}
            items.append(item)
        return items

    return resolve


DESCRIPTIONS = {
    "bundled_files": "Files contained by the file (archive members)",
    "compressed_parents": "Archives that contain the file",
    "pe_resource_children": "Files found in the PE resources of the file",
    "pe_resource_parents": "PE files that contain the file as a resource",
    "overlay_children": "Files found in the overlay of the file",
    "overlay_parents": "Files that contain the file in their overlay",
    "embedded_files": "Objects embedded in the document (OLE objects, PDF attachments, VBA source)",
    "embedded_parents": "Documents in which the file is embedded",
}

register(Relationship("submissions", "Submissions of the file", _submissions, "submission"))
for _child, _parent in RELATIONSHIP_PAIRS.items():
    register(Relationship(_child, DESCRIPTIONS[_child], _file_relation(_child)))
    register(Relationship(_parent, DESCRIPTIONS[_parent], _file_relation(_parent)))

# Relationships of later features register themselves from their own modules.
from kinfile.search import register_relationships as _register_search  # noqa: E402

_register_search()
