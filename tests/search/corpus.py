"""The real test files of tests/data, analysed once per session and written through the store.

``load(services)`` saves every file (and its extracted children) with a deterministic
submission date and name, and returns ``{sha256: attributes}`` of everything stored - the
oracle the modifier tests compare search results with.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from kinfile.analysis.pipeline import Analysed, Limits, analyse_bytes
from kinfile.ingest import build_items
from kinfile.models import IngestItem, Submission
from kinfile.services import Services

DATA = Path(__file__).resolve().parents[1] / "data"
BASE_DATE = 1_780_000_000  # 2026-05-28
HOUR = 3600


@cache
def analysed() -> tuple[tuple[str, Analysed], ...]:
    files = sorted(p for p in DATA.glob("*/*_") if p.is_file() and p.stat().st_size)
    limits = Limits(exiftool="off", timeout=30.0)
    return tuple((p.name[:-1], analyse_bytes(p.read_bytes(), p.name[:-1], limits)) for p in files)


def _walk(item: IngestItem, out: dict[str, dict[str, Any]]) -> None:
    if item.record is not None:
        out.setdefault(item.sha256, item.record.attributes)
    for child in item.children:
        _walk(child, out)


def load(services: Services, limit: int | None = None) -> dict[str, dict[str, Any]]:
    stored: dict[str, dict[str, Any]] = {}
    items = []
    for i, (name, node) in enumerate(analysed()[:limit]):
        sub = Submission(date=BASE_DATE + i * HOUR, name=name, source_key=f"test{i % 3}", interface="cli")
        known = services.store.known([node.record.sha256]).get(node.record.sha256)
        item = build_items(node, sub, services.blobs, known)
        item.replace_report = False
        items.append(item)
        _walk(item, stored)
    for item in items:
        services.store.save([item])
    return stored
