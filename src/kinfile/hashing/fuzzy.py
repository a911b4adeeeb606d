"""Fuzzy hashes: ssdeep (pydeep2, bundled libfuzzy) and TLSH (py-tlsh).

Both libraries are optional at import time: when one is missing the hash is simply absent and
:func:`availability` says why, so analysis never fails on a missing native module.
"""

from __future__ import annotations

import importlib
import logging
from functools import cache
from types import ModuleType

logger = logging.getLogger(__name__)

TLSH_MIN_BYTES = 50


@cache
def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        logger.warning("%s unavailable: %s", name, exc)
        return None


def availability() -> dict[str, bool]:
    return {"ssdeep": _module("pydeep") is not None, "tlsh": _module("tlsh") is not None}


def ssdeep_hash(data: bytes) -> str | None:
    pydeep = _module("pydeep")
    if pydeep is None or not data:
        return None
    value = pydeep.hash_buf(data)
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def tlsh_hash(data: bytes) -> str | None:
    """TLSH (``T1`` + 70 hex) or ``None`` when TLSH returns TNULL (small or low-entropy input)."""
    tlsh = _module("tlsh")
    if tlsh is None or len(data) < TLSH_MIN_BYTES:
        return None
    value = tlsh.hash(data)
    if not value or value == "TNULL":
        return None
    return str(value)


def ssdeep_compare(a: str, b: str) -> int:
    pydeep = _module("pydeep")
    if pydeep is None:
        return 0
    return int(pydeep.compare(a.encode(), b.encode()))


def tlsh_distance(a: str, b: str) -> int:
    tlsh = _module("tlsh")
    if tlsh is None:
        raise RuntimeError("py-tlsh is not installed")
    return int(tlsh.diff(a, b))
