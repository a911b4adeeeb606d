"""The API's JSON response: Starlette's, made safe for whatever a stored report holds.

A report is JSON that kinfile did not always write itself (``import-vt`` keeps the attributes
it does not compute), and JSON can carry what a UTF-8 JSON response cannot: a lone surrogate
(``"\\ud800"``) or, read by Python's ``json``, ``NaN`` and ``Infinity``. Starlette's
``JSONResponse`` raises on both (a 500 for one odd attribute). Here the normal rendering is
tried first (no cost for the usual response); on failure the content is rendered with
non-ASCII escaped (a lone surrogate becomes its ``\\uXXXX`` escape, which clients read back)
and non-finite numbers as ``null``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi.responses import JSONResponse as _StarletteJSONResponse


def _finite(value: Any) -> Any:
    """``value`` with every NaN/Infinity replaced by ``None``: a copy of its containers, made
    without recursion (a report may nest deeper than Python's recursion limit allows)."""

    def copy(item: Any) -> Any:
        if isinstance(item, float):
            return item if math.isfinite(item) else None
        if isinstance(item, dict):
            out: Any = {}
            pending.append((item.items(), out))
            return out
        if isinstance(item, list | tuple):
            out = []
            pending.append((enumerate(item), out))
            return out
        return item

    pending: list[tuple[Any, Any]] = []
    root = copy(value)
    while pending:
        entries, target = pending.pop()
        for key, item in entries:
            if isinstance(target, list):
                target.append(copy(item))
            else:
                target[key] = copy(item)
    return root


class JSONResponse(_StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except (UnicodeEncodeError, ValueError, RecursionError):  # a lone surrogate; NaN; depth
            text = json.dumps(_finite(content), ensure_ascii=True, allow_nan=False, separators=(",", ":"))
            return text.encode("ascii")
