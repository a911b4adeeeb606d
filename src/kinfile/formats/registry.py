"""Format analysers by name: ``detect.identify()`` names the format, this module runs it.

Built-in analysers are modules ``kinfile.formats.<name>`` exposing ``analyse(data, deadline)``;
they are imported lazily, the first time a file of that format is seen.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from functools import cache
from typing import Any

from kinfile.formats.common import Deadline

logger = logging.getLogger(__name__)

Analyser = Callable[[bytes, Deadline | None], dict[str, Any]]

BUILTIN_FORMATS: dict[str, str] = {
    "pe": "kinfile.formats.pe",
    "pdf": "kinfile.formats.pdf",
    "ole": "kinfile.formats.ole",
    "ooxml": "kinfile.formats.ooxml",
    "rtf": "kinfile.formats.rtf",
    "elf": "kinfile.formats.elf",
    "macho": "kinfile.formats.macho",
    "archive": "kinfile.formats.archive",
}


@cache
def analyser_for(fmt: str | None) -> Analyser | None:
    """The analyser of a format, or ``None`` when there is none (generic analysis only)."""
    if not fmt or fmt not in BUILTIN_FORMATS:
        return None
    try:
        module = importlib.import_module(BUILTIN_FORMATS[fmt])
    except ImportError as exc:
        logger.warning("analyser for %s unavailable: %s", fmt, exc)
        return None
    func = getattr(module, "analyse", None)
    return func if callable(func) else None
