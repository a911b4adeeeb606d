"""Byte statistics of PE parts (sections, resources, overlay, .NET streams)."""

from __future__ import annotations

import hashlib
from typing import Any

from kinfile.formats.common import byte_stats

__all__ = ["blob_summary", "byte_stats"]


def blob_summary(data: bytes) -> dict[str, Any]:
    """md5, entropy and chi² of a blob (sections, overlay, .NET streams)."""
    ent, c2 = byte_stats(data)
    return {"md5": hashlib.md5(data).hexdigest(), "entropy": ent, "chi2": c2}
