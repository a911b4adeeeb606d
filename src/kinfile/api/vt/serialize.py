"""VirusTotal wire shapes: the only place that knows the v3 envelope.

Objects are ``{"type", "id", "links": {"self"}, "attributes", ["relationships"],
["context_attributes"]}``; collections are ``{"data": [...], "meta": {"cursor"}, "links":
{"self", "next"}}``. Wire rules enforced here (docs/api.md): attributes never hold the reserved
keys, every ``*_date``/``date`` attribute is an int or absent, a page with a cursor is never empty,
and ``links.next`` is absolute and keeps every query parameter.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

RESERVED_ATTRIBUTES = frozenset({"type", "id", "error", "relationships", "context_attributes", "links"})
COLLECTIONS = {"file": "files", "analysis": "analyses", "submission": "submissions"}


def clean_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """Drop reserved keys; coerce top-level ``*_date`` values to int, dropping unusable ones."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if key in RESERVED_ATTRIBUTES:
            continue
        if key == "date" or key.endswith("_date"):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                continue
            value = int(value)
        out[key] = value
    return out


def object_url(base: str, obj_type: str, ident: str) -> str:
    return f"{base}/api/v3/{COLLECTIONS.get(obj_type, obj_type + 's')}/{ident}"


def vt_object(
    base: str,
    obj_type: str,
    ident: str,
    attributes: dict[str, Any] | None = None,
    *,
    relationships: dict[str, Any] | None = None,
    context_attributes: dict[str, Any] | None = None,
    descriptor: bool = False,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": obj_type,
        "id": ident,
        "links": {"self": object_url(base, obj_type, ident)},
    }
    if not descriptor:
        obj["attributes"] = clean_attributes(attributes or {})
    if relationships:
        obj["relationships"] = relationships
    if context_attributes:
        obj["context_attributes"] = context_attributes
    return obj


def error_item(obj_type: str, ident: str, code: str, message: str) -> dict[str, Any]:
    return {"type": obj_type, "id": ident, "error": {"code": code, "message": message}}


def page_url(url: str, params: list[tuple[str, str]], cursor: str | None) -> str:
    """``url`` with the original query parameters, the cursor replaced (or removed)."""
    kept = [(k, v) for k, v in params if k != "cursor"]
    if cursor:
        kept.append(("cursor", cursor))
    return f"{url}?{urlencode(kept)}" if kept else url


def collection(
    items: list[dict[str, Any]],
    cursor: str | None,
    self_url: str,
    params: list[tuple[str, str]],
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"data": items, "meta": dict(meta or {}), "links": {}}
    body["links"]["self"] = page_url(self_url, params, dict(params).get("cursor"))
    if cursor and items:
        body["meta"]["cursor"] = cursor
        body["links"]["next"] = page_url(self_url, params, cursor)
    if not body["meta"]:
        del body["meta"]
    return body


def relationship_block(
    base: str, obj_type: str, ident: str, name: str, descriptors: list[dict[str, Any]], cursor: str | None
) -> dict[str, Any]:
    """``data.relationships.<name>`` inside an object fetched with ``?relationships=``."""
    self_url = f"{object_url(base, obj_type, ident)}/relationships/{name}"
    block: dict[str, Any] = {
        "data": descriptors,
        "links": {"self": self_url, "related": f"{object_url(base, obj_type, ident)}/{name}"},
    }
    if cursor and descriptors:
        block["meta"] = {"cursor": cursor}
        block["links"]["next"] = page_url(self_url, [("limit", str(len(descriptors)))], cursor)
    return block
