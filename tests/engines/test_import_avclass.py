"""The AVClass fast lane (kinfile/import_avclass.py) makes exactly the general path's new file.

Oracle: the general path, ``bulk.new_file(merge_report(None, parse_record(obj)))`` with its
``files`` row. Inputs: the 500 real AVClass label sets with their real hashes (some labels hold a
hash prefix, which AVClass treats per sample), each with and without dates, for SQLite (FTS5
document; PostgreSQL takes the general path); then hostile variants, which the fast lane either
takes with the same output or leaves (``None``) to the general path.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from typing import Any

import pytest

from kinfile import import_avclass
from kinfile.engines.vtreports import parse_record
from kinfile.importer import merge_report, prepare_values
from kinfile.storage.bulk import NewFile, new_file
from kinfile.storage.store import file_columns
from tests.engines.helpers import VT_DIR

LABELS = VT_DIR / "av_labels_500.jsonl"
NOW = 1_800_000_000
pytestmark = pytest.mark.skipif(not LABELS.is_file(), reason="../shared/vt not present")


@cache
def _records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in LABELS.read_text().splitlines()]


def _general(obj: Any) -> NewFile:
    rec = merge_report(None, parse_record(obj)[0], "feed")
    return new_file(rec, file_columns(rec, NOW, pack=True), True)


def _same_as_general(obj: Any) -> bool:
    """Asserts the fast lane's file equals the general one; ``False`` when it declines."""
    fast = import_avclass.new_file(obj, "feed", NOW)
    if fast is None:
        return False
    general = _general(obj)
    assert fast.row["report"] == general.row["report"]  # the same (compressed) text, byte for byte
    assert abs(fast.row.pop("stored_at") - general.row.pop("stored_at")) <= 2  # the clock
    assert dataclasses.asdict(fast) == dataclasses.asdict(general)
    again = import_avclass.new_file(obj, "feed", NOW)  # memoised: the same again
    assert again is not None and again.row.pop("stored_at")
    assert again == fast
    return True


def test_real_label_sets_as_the_general_path() -> None:
    taken = 0
    for rec in _records():
        for obj in (rec, {**rec, "scan_date": "2021-03-04 05:06:07", "first_seen": 1_500_000_000}):
            taken += _same_as_general(obj)
    assert taken == 2 * len(_records())  # every real line takes the fast lane


ODD_CHANGES: list[dict[str, Any]] = [
    {"md5": "", "sha1": None},
    {"md5": "A" * 32, "sha256": " " + "B" * 64 + " "},
    {"scan_date": "garbage", "first_seen": "2019-13-45"},
    {"scan_date": 1e20, "first_seen": None},
    {"scan_date": "2020-01-01"},
    {"av_labels": [["Ünï", "木马.Win32 \x00"], ["K7GW", "Trojan ( 0040f4f41 )"], ["AVG", ""]]},
    {"av_labels": [["Kaspersky", "Trojan.Win32.Agent.abc"], ["Microsoft", "Trojan:Win32/Agent!ml"]]},
    {"extra": {"nested": [1, 2]}},
]
DECLINED: list[dict[str, Any]] = [
    {"av_labels": []},
    {"av_labels": None},
    {"av_labels": [["Kaspersky", "Trojan.A"], ["Kaspersky", "Trojan.B"]]},  # an engine twice
    {"av_labels": [["McAfee-GW", "Trojan.A"], ["mcafee-gw!", "Trojan.B"]]},  # one modifier key
    {"av_labels": [["Kaspersky", "Trojan.A"], ["Avast"]]},
    {"av_labels": [["Kaspersky", "Trojan.A"], "ab"]},
    {"av_labels": [["Kaspersky", "Trojan.A"], ["Avast", 5]]},
    {"av_labels": [[f"Engine{i}", f"Trojan.Agent.{i}"] for i in range(600)]},  # reaches the cap
    {"sha256": "XYZ"},
    {"md5": "nothex" * 5 + "zz"},
    {"positives": 3},  # a VT v2 report
    {"attributes": {}},  # a VT v3 object
]
ERRORS = [101, 104, 106, 108, 109, 111, 200]  # lines of DECLINED (100 + i) and others the parser rejects


@pytest.mark.parametrize("change", ODD_CHANGES, ids=range(len(ODD_CHANGES)))
def test_odd_lines_as_the_general_path(change: dict[str, Any]) -> None:
    assert _same_as_general({**_records()[3], **change})


@pytest.mark.parametrize("change", DECLINED, ids=range(len(DECLINED)))
def test_lines_it_declines_go_the_general_way(change: dict[str, Any]) -> None:
    obj = {**_records()[3], **change}
    assert import_avclass.new_file(obj, "feed", NOW) is None
    assert import_avclass.new_file([obj], "feed", NOW) is None


def test_prepare_values_same_with_and_without_the_fast_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[tuple[int, Any]] = [(i, json.dumps(rec)) for i, rec in enumerate(_records()[:50], 1)]
    lines += [(100 + i, json.dumps({**_records()[0], **change})) for i, change in enumerate(DECLINED)]
    lines += [(200, "{not json"), (201, json.dumps({"av_labels": [["A", "b"]], "sha256": "f" * 64}))]
    big = {"md5": "e" * 32, "sha256": "e" * 64, "av_labels": [["A", "b"]], "n": 1 << 70}  # orjson refuses
    lines += [(202, json.dumps(big))]

    def outcome() -> list[Any]:
        out: list[Any] = []
        for number, prepared in prepare_values(lines, "feed", None, True):
            if isinstance(prepared, str):
                out.append((number, prepared))
            else:
                out.append((number, [(p.sha256, p.new and dataclasses.asdict(p.new)) for p in prepared]))
        return out

    fast = outcome()
    monkeypatch.setattr(import_avclass, "new_file", lambda *_args: None)
    assert fast == outcome()
    assert [n for n, p in fast if isinstance(p, str)] == ERRORS


def test_stored_files_are_parsed_not_built() -> None:
    """A line of a stored file is only parsed (it will be enriched) and its errors still show."""
    records = _records()[:5]
    stored = {rec["sha256"] for rec in records[:3]}
    bad = {**records[0], "av_labels": [["Kaspersky", "Trojan.A"], ["Avast"]]}
    lines = [(i, json.dumps(rec)) for i, rec in enumerate([*records, bad], 1)]
    out = dict(prepare_values(lines, "feed", lambda shas: stored & set(shas), True))
    for number, rec in enumerate(records, 1):
        found = out[number]
        assert not isinstance(found, str) and len(found) == 1
        prepared = found[0]
        assert prepared.sha256 == rec["sha256"]
        assert (prepared.new is None) == (rec["sha256"] in stored)
    assert out[6] == "av_labels entry \"['Avast']\" is not [engine, label]"
