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
    """``value`` with every NaN/Infinity replaced by ``None`` (containers copied as needed)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


class JSONResponse(_StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except (UnicodeEncodeError, ValueError):  # a lone surrogate; NaN or Infinity
            text = json.dumps(_finite(content), ensure_ascii=True, allow_nan=False, separators=(",", ":"))
            return text.encode("ascii")
