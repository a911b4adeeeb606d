"""The analysis pipeline: bytes in, a VirusTotal-shaped report (and sub-files) out.

identify → hashes → format analyser → children (recursively, within limits). Pure: no store,
no blobs; the ingest driver and the upload service decide where bytes and reports go.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from kinfile.analysis.exiftool import get_exiftool
from kinfile.analysis.exiftool import merge as merge_exiftool
from kinfile.formats.common import AnalysisTimeout, Child, Deadline
from kinfile.formats.registry import analyser_for
from kinfile.hashing.digests import Digests, digest_bytes
from kinfile.hashing.fuzzy import ssdeep_hash, tlsh_hash
from kinfile.hashing.vhash import compute_vhash
from kinfile.models import SCHEMA_VERSION, FileRecord

logger = logging.getLogger(__name__)

RESERVED = {"type", "id", "error", "relationships", "context_attributes", "links"}


@dataclass(frozen=True)
class Limits:
    """Bounds on sub-file extraction for one submitted file (all levels together)."""

    timeout: float = 10.0  # one file's analysis
    submission_timeout: float = 30.0  # the submitted file and all its sub-files
    max_depth: int = 3
    max_children: int = 1000
    max_child_bytes: int = 256 * 1024 * 1024
    formats: frozenset[str] | None = None  # analysers to run; None = all
    exiftool: str = "off"  # "auto", "off" or a path (see analysis/exiftool.py)
    magika: str = "all"  # "all", "auto" (only files structure cannot name) or "off"


@dataclass
class Analysed:
    """One analysed file and its analysed descendants."""

    record: FileRecord
    data: bytes
    children: list[tuple[Child, Analysed]] = field(default_factory=list)


def identify(data: bytes, name: str | None, magika: str = "all") -> dict[str, Any]:
    from kinfile.formats import detect  # imported lazily: loads libmagic and the magika model

    return detect.identify(data, name, magika=magika)


def analyse_bytes(
    data: bytes, name: str | None = None, limits: Limits | None = None, digests: Digests | None = None
) -> Analysed:
    """Analyse ``data`` and, within ``limits``, its sub-files."""
    limits = limits or Limits()
    budget = _Budget(limits)
    return _analyse(data, name, limits, budget, depth=0, digests=digests)


class _Budget:
    """What one submission may still spend on sub-files: their number, bytes and time (without
    the time bound, N slow sub-files took N x ``timeout``)."""

    def __init__(self, limits: Limits) -> None:
        self.children = limits.max_children
        self.bytes = limits.max_child_bytes
        self.deadline = Deadline(limits.submission_timeout)

    def take(self, size: int) -> bool:
        if self.children <= 0 or size > self.bytes:
            return False
        self.children -= 1
        self.bytes -= size
        return True


def _analyse(
    data: bytes, name: str | None, limits: Limits, budget: _Budget, depth: int, digests: Digests | None = None
) -> Analysed:
    started = time.monotonic()
    digests = digests or digest_bytes(data)
    attrs: dict[str, Any] = {
        "md5": digests.md5,
        "sha1": digests.sha1,
        "sha256": digests.sha256,
        "size": digests.size,
    }
    anomalies: list[str] = []
    for key, func in (("ssdeep", ssdeep_hash), ("tlsh", tlsh_hash)):
        value = func(data)
        if value:
            attrs[key] = value
    try:
        ident = identify(data, name, limits.magika)
    except Exception as exc:  # identification must never lose a file
        logger.exception("identification failed for %s", digests.sha256)
        ident = {"type_tag": "unknown", "type_description": "unknown", "tags": []}
        anomalies.append(f"identification failed: {type(exc).__name__}")
    fmt = ident.pop("format", None)
    tags = set(ident.pop("tags", []) or [])
    attrs.update({k: v for k, v in ident.items() if v not in (None, "", [])})

    children: list[Child] = []
    enabled = limits.formats is None or fmt in limits.formats
    analyser = analyser_for(fmt) if enabled else None
    if analyser is not None:
        seconds = min(limits.timeout, budget.deadline.remaining())  # the submission's time left
        try:
            result = analyser(data, Deadline(seconds))
        except AnalysisTimeout:
            result = {"anomalies": [f"{fmt} analysis exceeded its {seconds:g} s time budget"]}
        except Exception as exc:  # an analyser bug must not lose the file
            logger.exception("%s analyser failed on %s", fmt, digests.sha256)
            result = {"anomalies": [f"{fmt} analyser error: {type(exc).__name__}: {exc}"[:300]]}
        anomalies.extend(result.pop("anomalies", []) or [])
        children = list(result.pop("children", []) or [])
        tags.update(result.pop("tags", []) or [])
        for key, value in result.items():
            if key not in RESERVED and value not in (None, "", [], {}):
                attrs[key] = value
        vhash = compute_vhash(attrs)
        if vhash is not None:
            attrs["vhash"] = vhash
    if limits.exiftool != "off" and data:
        tool = get_exiftool(limits.exiftool)
        external = tool.metadata(data) if tool else {}
        if external:
            attrs["exiftool"] = merge_exiftool(attrs.get("exiftool"), external)
    attrs["tags"] = sorted(tags)
    if anomalies:
        attrs["anomalies"] = anomalies[:256]
    attrs["analysis_seconds"] = round(time.monotonic() - started, 4)
    record = FileRecord(
        sha256=digests.sha256,
        md5=digests.md5,
        sha1=digests.sha1,
        size=digests.size,
        attributes=attrs,
        schema_version=SCHEMA_VERSION,
    )
    node = Analysed(record=record, data=data)
    if depth >= limits.max_depth:
        if children:
            attrs.setdefault("anomalies", []).append(
                f"{len(children)} sub-files not extracted: depth limit {limits.max_depth}"
            )
        return node
    skipped = late = 0
    for child in children:
        payload = child.get("data") or b""
        if not payload:
            continue
        if budget.deadline.remaining() <= 0:
            late += 1
            continue
        if not budget.take(len(payload)):
            skipped += 1
            continue
        node.children.append((child, _analyse(payload, child.get("name"), limits, budget, depth + 1)))
    if skipped:
        attrs.setdefault("anomalies", []).append(f"{skipped} sub-files not extracted: extraction limits")
    if late:
        budget_text = f"the submission's {limits.submission_timeout:g} s time budget ran out"
        attrs.setdefault("anomalies", []).append(f"{late} sub-files not analysed: {budget_text}")
    return node
