"""The engine contract: a detection engine turns bytes into VirusTotal-shaped results.

An engine has a ``name`` (the key in ``last_analysis_results``), a version and an update date
(``YYYYMMDD``) and scans one :class:`Target` (the bytes of a file plus its already extracted
sub-files) into a :class:`Verdict`: one result per engine name in VirusTotal's shape
``{category, engine_name, engine_version, engine_update, method, result}`` and, optionally,
extra report attributes (the YARA engine fills ``crowdsourced_yara_results``).

Engines never raise on hostile input: a crash or timeout becomes a ``failure`` / ``timeout``
result. An engine that cannot run here (ClamAV not installed) says so through :meth:`info`;
the verdict use-case then leaves it out instead of reporting errors.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Protocol

# VirusTotal's categories, worst first (the order decides which result a parent inherits).
CATEGORIES = (
    "malicious",
    "suspicious",
    "harmless",
    "undetected",
    "timeout",
    "confirmed-timeout",
    "failure",
    "type-unsupported",
)
DETECTION_CATEGORIES = ("malicious", "suspicious")
SEVERITY = {"malicious": 3, "suspicious": 2, "harmless": 1}
METHOD = "blacklist"


@dataclass
class Target:
    """What an engine scans: one file's bytes and its sub-files (archive members, resources...)."""

    data: bytes
    sha256: str = ""
    name: str | None = None
    children: list[Target] = field(default_factory=list)

    def descendants(self) -> list[Target]:
        out: list[Target] = []
        stack = list(reversed(self.children))
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out


@dataclass(frozen=True)
class EngineInfo:
    name: str
    version: str
    update: str  # YYYYMMDD
    available: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "update": self.update,
            "available": self.available,
            "detail": self.detail,
        }


@dataclass
class Verdict:
    """One engine's output for one target: results by engine name, plus report attributes."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    name: str

    def info(self) -> EngineInfo: ...

    def scan(self, target: Target) -> Verdict: ...


def today() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%d")


def day_of(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y%m%d")


def result(info: EngineInfo, category: str, label: str | None = None) -> dict[str, Any]:
    """A VirusTotal engine result."""
    return {
        "category": category,
        "engine_name": info.name,
        "engine_version": info.version,
        "engine_update": info.update,
        "method": METHOD,
        "result": label,
    }


def empty_stats() -> dict[str, int]:
    return {
        "confirmed-timeout": 0,
        "failure": 0,
        "harmless": 0,
        "malicious": 0,
        "suspicious": 0,
        "timeout": 0,
        "type-unsupported": 0,
        "undetected": 0,
    }


def stats_of(results: dict[str, dict[str, Any]]) -> dict[str, int]:
    """``last_analysis_stats``: how many engines gave each category."""
    stats = empty_stats()
    for res in results.values():
        category = res.get("category") if isinstance(res, dict) else None
        if category in stats:
            stats[category] += 1
    return stats


def worst(first: dict[str, Any] | None, second: dict[str, Any] | None) -> dict[str, Any] | None:
    """The more severe of two results of one engine (a parent inherits its sub-files' worst)."""
    if first is None:
        return second
    if second is None:
        return first
    a = SEVERITY.get(first.get("category", ""), 0)
    b = SEVERITY.get(second.get("category", ""), 0)
    return second if b > a else first
