"""A constructed day of real files with verdict-shaped attributes, stored through the store.

Day ``DAY`` (UTC) holds 13 candidates in 7 vhash clusters:

| cluster | members (tests/data/vhash) | positives | families / categories | label |
|---|---|---|---|---|
| setx unpacked | Wine 8.0 amd64, 8.0 i386, 10.0 amd64 | 10, 20, 31 | emotet, emotet, - | emotet [0000] |
| msimsg | Wine 8.0 amd64, 8.0 i386, 10.0 amd64 | 5, 5, 6 | emotet, qakbot, emotet | emotet [0001] |
| setx UPX | default, --lzma | 3, 4 | - (categories trojan, trojan) | trojan [0000] |
| LibreOffice .doc | v1, v2 | 0, 0 | - | doc [0000] |
| arp, cacls (stubs) | one each | 0 | - | peexe [0000], peexe [0001] (vhash order) |
| LibreOffice .rtf | v1 | 0 | - | rtf [0000] |

``NEXT_DAY`` holds ``_win32sysloader`` 305 (a candidate of that day only).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from kinfile.analysis.pipeline import Analysed, Limits, analyse_bytes
from kinfile.models import IngestItem, Submission
from kinfile.storage.store import Store

DATA = Path(__file__).resolve().parents[1] / "data" / "vhash"
DAY = "2024-03-05"
NEXT_DAY = "2024-03-06"

# file -> (positives, family, category)
MEMBERS: dict[str, tuple[int, str | None, str | None]] = {
    "setx_wine8.0-amd64.exe_": (10, "emotet", "trojan"),
    "setx_wine8.0-i386.exe_": (20, "emotet", None),
    "setx_wine10.0-amd64.exe_": (31, None, None),
    "msimsg_wine8.0-amd64.dll_": (5, "emotet", None),
    "msimsg_wine8.0-i386.dll_": (5, "qakbot", None),
    "msimsg_wine10.0-amd64.dll_": (6, "emotet", None),
    "setx_upx-default.exe_": (3, None, "trojan"),
    "setx_upx-lzma.exe_": (4, None, "trojan"),
    "incident-report_v1_v1.doc_": (0, None, None),
    "incident-report_v2_v2.doc_": (0, None, None),
    "arp_wine8.0-amd64.exe_": (0, None, None),
    "cacls_wine8.0-amd64.exe_": (0, None, None),
    "incident-report_v1_v1.rtf_": (0, None, None),
}
LATE_ARRIVAL = "incident-report_v2_v2.rtf_"
OTHER_DAY = "_win32sysloader_py305.pyd_"


def epoch(day: str, hour: int = 12) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(hour=hour, tzinfo=UTC).timestamp())


@cache
def analysed(name: str) -> Analysed:
    return analyse_bytes((DATA / name).read_bytes(), name.rstrip("_"), Limits(max_depth=0))


def verdicts(positives: int, family: str | None, category: str | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "last_analysis_stats": {"malicious": positives, "undetected": 70 - positives},
    }
    classification: dict[str, Any] = {}
    if family:
        classification["popular_threat_name"] = [{"count": 9, "value": family}, {"count": 2, "value": "zzz"}]
    if category:
        classification["popular_threat_category"] = [{"count": 3, "value": category}]
    if classification:
        attrs["popular_threat_classification"] = classification
    return attrs


def store_file(store: Store, name: str, date: int, verdict: dict[str, Any] | None = None) -> str:
    record = copy.deepcopy(analysed(name).record)
    record.attributes.update(verdict or {})
    sub = Submission(date=date, name=name.rstrip("_"), source_key="test", interface="cli")
    store.save([IngestItem(sha256=record.sha256, submission=sub, record=record)])
    return record.sha256


def build_day(store: Store) -> dict[str, str]:
    """Store the constructed day; returns ``{file name: sha256}``."""
    out = {}
    for i, (name, (positives, family, category)) in enumerate(MEMBERS.items()):
        out[name] = store_file(store, name, epoch(DAY) + i, verdicts(positives, family, category))
    out[OTHER_DAY] = store_file(store, OTHER_DAY, epoch(NEXT_DAY), verdicts(1, "emotet", None))
    return out
