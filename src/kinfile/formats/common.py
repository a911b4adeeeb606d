"""Helpers shared by the format analysers: the analyser contract, entropy, chi², deadlines.

The contract every ``formats/<name>.py`` module follows::

    def analyse(data: bytes, deadline: Deadline | None = None) -> dict[str, Any]

It returns VirusTotal-shaped top-level attributes to merge into the file's report (for
example ``{"pe_info": {...}, "signature_info": {...}, "tags": ["peexe"]}``) plus two reserved
keys the pipeline pops before storing:

* ``"anomalies"``: list of short strings describing hostile or malformed input; never raise.
* ``"children"``: list of :class:`Child` dicts (sub-files worth analysing on their own).

An analyser never raises on bad input. It calls ``deadline.check()`` in loops; when the time
budget is spent, :class:`AnalysisTimeout` propagates to the pipeline, which keeps what is done
and records the anomaly.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, TypedDict

import numpy as np


class Child(TypedDict):
    """A sub-file found inside a file.

    ``relationship`` is the VT relationship from the parent to the child (``bundled_files``,
    ``pe_resource_children``, ``overlay_children``, ``embedded_files``), ``name`` a display name.
    """

    relationship: str
    name: str
    data: bytes


class AnalysisTimeout(Exception):
    """Raised by :meth:`Deadline.check` when an analyser exceeds its time budget."""


class Deadline:
    """A monotonic time budget for one file's analysis."""

    __slots__ = ("expires",)

    def __init__(self, seconds: float) -> None:
        self.expires = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.expires:
            raise AnalysisTimeout("analysis time budget exceeded")

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())


logger = logging.getLogger(__name__)

NO_DEADLINE = Deadline(float("inf"))
MAX_ANOMALIES = 256
SMALL = 512  # below this a Counter beats numpy's set-up cost


def byte_histogram(data: bytes) -> list[int]:
    if len(data) < SMALL:
        counts = Counter(data)
        return [counts.get(i, 0) for i in range(256)]
    return [int(c) for c in np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)]


def byte_stats(data: bytes) -> tuple[float, float]:
    """``(entropy, chi2)`` in one pass over the bytes (numpy histogram), rounded to 2 decimals.

    Entropy is Shannon entropy in bits per byte (0..8); chi2 is Pearson's chi-squared of the
    byte distribution against uniform, as VirusTotal shows them for sections and resources.
    """
    if not data:
        return 0.0, 0.0
    n = len(data)
    expected = n / 256.0
    h = 0.0
    total = 0.0
    for c in byte_histogram(data):
        total += (c - expected) ** 2
        if c:
            p = c / n
            h -= p * math.log2(p)
    return round(h, 2), round(total / expected, 2)


def entropy(data: bytes) -> float:
    return byte_stats(data)[0]


def chi2(data: bytes) -> float:
    return byte_stats(data)[1]


def run_extractors(
    extractors: Iterable[Callable[..., None]],
    *args: Any,
    anomalies: list[str],
    deadline: Deadline | None = None,
) -> None:
    """Run capa-style extractors in order over one parsed file.

    A failing extractor costs only its own keys: its exception becomes an anomaly and the next
    extractor runs. :class:`AnalysisTimeout` is the exception that stops the analysis.
    """
    for extractor in extractors:
        if deadline is not None:
            deadline.check()
        try:
            extractor(*args)
        except AnalysisTimeout:
            raise
        except Exception as exc:  # hostile input must never escape an analyser
            logger.debug("%s failed", extractor.__name__, exc_info=True)
            anomalies.append(f"{extractor.__name__} failed: {type(exc).__name__}: {exc}"[:200])


def analyse_scanned(
    data: bytes,
    deadline: Deadline | None,
    parse: Callable[[bytes, Deadline], Any],
    extractors: Iterable[Callable[..., None]],
    kind: str,
    tag: str,
) -> dict[str, Any]:
    """The ``analyse`` of scanner-based analysers (PDF, RTF): parse once, run the extractors as
    ``extractor(scan, report)``, collect ``scan.anomalies``. A parse failure is an anomaly."""
    deadline = deadline or NO_DEADLINE
    report: dict[str, Any] = {}
    try:
        scan = parse(bytes(data), deadline)
    except AnalysisTimeout:
        raise
    except Exception as exc:  # hostile input must never escape
        logger.debug("%s parse failed", kind, exc_info=True)
        return {"anomalies": [f"{kind} parse failed: {type(exc).__name__}"], "children": [], "tags": [tag]}
    run_extractors(extractors, scan, report, anomalies=scan.anomalies)
    report.setdefault("children", [])
    report["anomalies"] = list(dict.fromkeys(scan.anomalies))[:MAX_ANOMALIES]
    return report


def clean_text(value: Any, limit: int = 4096) -> str:
    """Decode/normalise a value from a hostile file into a printable, bounded string."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).replace("\x00", "")
    return text[:limit]
