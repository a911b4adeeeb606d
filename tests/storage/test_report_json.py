"""The stored JSON text of reports (orjson, with json for what orjson refuses)."""

from __future__ import annotations

import json
from typing import Any

from kinfile.storage.store import dumps_report


def test_reports_round_trip_with_sorted_keys() -> None:
    report = {"b": [1, 2.5, None, True], "a": {"z": "é\x00\n", "y": -(2**63)}, "c": 2**64 - 1}
    text = dumps_report(report)
    assert json.loads(text) == report
    assert text.index('"a"') < text.index('"b"') < text.index('"c"') and " " not in text.replace('"é', "")


def test_what_orjson_refuses_is_written_by_json() -> None:
    refused: list[dict[Any, Any]] = [{"big": 2**70}, {"surrogate": "\ud800"}, {1: "non-string key"}]
    for report in refused:
        assert json.loads(dumps_report(report)) == json.loads(json.dumps(report))
