"""The fast per-report import steps give exactly the outputs of the straightforward code.

References (tests/engines/reference_prepare.py): the previous parse_avclass/epoch, AVClass's own
unmodified ``AvLabels`` for tags and ranking, the previous extract_have and every clue extractor run
on every report. Inputs: the 500 real AVClass label sets (with their real hashes, so labels that
hold a hash prefix take AVClass's exact path), real analysed files of tests/data, and hostile
ones (non-text labels and engines, missing results, empty and huge label lists, unicode,
control characters, non-hex hashes). Each fast function runs twice (cold, then memoised).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from kinfile.analysis.pipeline import Limits, analyse_bytes
from kinfile.clues import features
from kinfile.engines import avclass, vtreports
from kinfile.importer import merge_report
from kinfile.storage import searchable
from tests.engines import reference_prepare as ref
from tests.engines.helpers import VT_DIR

LABELS = VT_DIR / "av_labels_500.jsonl"
DATA = Path(__file__).resolve().parents[1] / "data"
pytestmark = pytest.mark.skipif(not LABELS.is_file(), reason="../shared/vt not present")

ODD_LABELS = [
    "",
    " ",
    "Malware.",
    "Malware.Trojan.Agent",
    " (B)",
    "Gen:Variant.Graftor.124373 (B)",
    "Trojan.Win32.Generic!BT",
    "W32/Trojän.Ünïcode.A",
    "木马.Win32.Agent",
    "\tTrojan.Tab\n",
    "Trojan\x00Null\x7f.Del",
    "12345",
    "deadbeef.cafe",
    "PUP-FFD!1FA3CFB35DE9",
    "Trojan." + "Z" * 3000,
    "Adware.Agent.abc.123",
    "Win32.Troj.DownLMN.gj.(kcloud)",
]
ODD_ENGINES = ["Norman", "AVG", "Agnitum", "Kaspersky", "K7GW", "K7AntiVirus", "Emsisoft", "F-Secure", "Ünï"]


def _outcome(call: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, str]:
    """A call's result as comparable text (key order included) or its exception."""
    try:
        value = call(*args)
    except Exception as exc:  # the fast code must fail exactly as the reference
        return "error", f"{type(exc).__name__}: {exc}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, set):
        value = sorted(value)
    return "ok", json.dumps(value, default=repr, ensure_ascii=False)


def _same(fast: Callable[..., Any], reference: Callable[..., Any], *args: Any) -> None:
    expected = _outcome(reference, args)
    assert _outcome(fast, args) == expected
    assert _outcome(fast, args) == expected  # memoised


@cache
def _records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in LABELS.read_text().splitlines()]


def _odd_results(rng: random.Random, pool: list[str], count: int) -> dict[Any, Any]:
    results: dict[Any, Any] = {}
    for i in range(count):
        engine: Any = rng.choice([*ODD_ENGINES, f"Engine{i}", f"Engine{i}"])
        kind = rng.random()
        if kind < 0.05:
            results[engine] = rng.choice([None, 5, "Trojan", [], ["Trojan"], {"category": "malicious"}])
        elif kind < 0.1:
            results[engine] = {"result": rng.choice([None, 5, ["Trojan.A"], {"a": 1}])}
        else:
            label = rng.choice(ODD_LABELS) if kind < 0.3 else rng.choice(pool)
            results[engine] = {"category": "malicious", "result": label}
    if count > 3:
        results[7] = {"result": "Trojan.Agent"}  # a non-text engine name
    return results


def _hash_sets(rec: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
    return [
        (rec["md5"], rec["sha1"], rec["sha256"]),
        ("", "", ""),
        (rec["md5"].upper(), rec["sha1"], rec["sha256"]),
        ("zz" + rec["md5"][2:], None, rec["sha256"]),
    ]


def test_avclass_lines_parse_as_before() -> None:
    for rec in _records():
        _same(vtreports.parse_avclass, ref.parse_avclass, rec)


@pytest.mark.parametrize(
    "change",
    [
        {"av_labels": []},
        {"av_labels": None},
        {"av_labels": "Kaspersky"},
        {"av_labels": [["Kaspersky", "Trojan.A"], ["Kaspersky", "Trojan.B"]]},
        {"av_labels": [["Kaspersky", "Trojan.A"], ["Avast"]]},
        {"av_labels": [["Kaspersky", "Trojan.A"], ["Avast", "x", "y"]]},
        {"av_labels": [["Kaspersky", "Trojan.A"], "ab"]},
        {"av_labels": [["Kaspersky", "Trojan.A"], None]},
        {"av_labels": [["Kaspersky", "Trojan.A"], [None, "x"]]},
        {"av_labels": [["Kaspersky", "Trojan.A"], ["Avast", 5]]},
        {"av_labels": [{"engine": 1, "label": 2}]},
        {"av_labels": [["Ünï", "木马.Win32 \x00"]] * 3},
        {"av_labels": [[f"Engine{i}", f"Trojan.{i}"] for i in range(5000)]},
        {"sha256": None},
        {"sha256": "XYZ"},
        {"md5": "A" * 32},
        {"md5": "nothex" * 5 + "zz"},
        {"sha1": 5},
        {"first_seen": None},
        {"first_seen": "garbage"},
    ],
)
def test_odd_avclass_lines_parse_as_before(change: dict[str, Any]) -> None:
    obj = {**_records()[0], **change}
    _same(vtreports.parse_avclass, ref.parse_avclass, obj)


DATES = [
    None,
    True,
    "",
    "   ",
    1387491070,
    1387491070.75,
    -1,
    "1387491070",
    "2013-12-19 22:11:10",
    "2013-12-19T22:11:10",
    "2013-12-19x22:11:10",
    "2013-12-19 22:11:10Z",
    " 2013-12-19 22:11:1",
    "2013-12-19 22:11:1 ",
    "2013-02-29 00:00:00",
    "2012-02-29 23:59:59",
    "2013-12-19 24:00:00",
    "2013-12-19 23:60:00",
    "2013-12-19 23:59:60",
    "0000-01-01 00:00:00",
    "0001-01-01 00:00:00",
    "9999-12-31 23:59:59",
    "２０１３-12-19 22:11:10",
    "2013-12-19 ２２:11:10",
    "2013-1２-19 22:11:10",
    "+013-12-19 22:11:10",
    "2013-12-19 -1:11:10",
    "2013-12-19",
    "2013-12-19T22:11:10+02:00",
    "2013/12/19 22:11:10",
    "not a date at all!!",
    10**20,
    253402300800,
    253402300799,
    -62135596801,
    -62135596800,
    float("inf"),
    float("nan"),
    1e20,
    "99999999999999999999",
]


@pytest.mark.parametrize("value", DATES)
def test_dates_parse_as_before(value: Any) -> None:
    _same(vtreports.epoch, ref.epoch, value)
    obj = {**_records()[0], "scan_date": value, "first_seen": value}
    _same(vtreports.parse_avclass, ref.parse_avclass, obj)


def test_real_label_sets_classify_as_avclass() -> None:
    for rec in _records():
        results = vtreports.parse_avclass(rec).verdict["results"]
        for md5, sha1, sha256 in _hash_sets(rec):
            _same(avclass.classify, ref.classify, md5, sha1, sha256, results)


def test_odd_label_sets_classify_as_avclass() -> None:
    rng = random.Random(6)
    records = _records()
    pool = sorted({label for rec in records for _engine, label in rec["av_labels"]})
    for case in range(300):
        rec = records[case % len(records)]
        hashed = [f"Trojan.{rec['md5'][:n]}" for n in (4, 9, 12)] + [f"Gen:{rec['sha1'][:10].upper()}"]
        count = rng.choice([0, 1, 2, 5, 40, 80, 2000 if case % 50 == 0 else 60])
        results = _odd_results(rng, pool + hashed, count)
        _same(avclass.labels_of, ref.labels_of, results)
        for md5, sha1, sha256 in _hash_sets(rec):
            _same(avclass.classify, ref.classify, md5, sha1, sha256, results)
    _same(avclass.classify, ref.classify, "", "", "", {})


def _sample_tags(*args: Any) -> list[tuple[str, list[str]]]:
    """tag -> engines (sorted: the tag order is a set's)."""
    return sorted(avclass.labeler().get_sample_tags(ref.SampleInfo(*args, [])).items())


def _reference_sample_tags(*args: Any) -> list[tuple[str, list[str]]]:
    return sorted(ref.sample_tags(*args).items())


def test_ranked_and_sample_tags_equal_avclass() -> None:
    rng = random.Random(7)
    records = _records()
    for rec in records[:200]:
        labels = [tuple(p) for p in rec["av_labels"]]
        labels += [(rng.choice(ODD_ENGINES), rng.choice(ODD_LABELS)) for _ in range(5)]
        for hashes in _hash_sets(rec)[:3]:
            _same(avclass.ranked_tags, ref.ranked_tags, *hashes, labels)
            _same(_sample_tags, _reference_sample_tags, *hashes, labels)


@cache
def _reports() -> list[dict[str, Any]]:
    """Real reports: analysed tests/data files and imported AVClass, VT v2 and VT v3 reports."""
    out = [
        analyse_bytes(p.read_bytes(), p.name, Limits(max_depth=0)).record.attributes
        for p in sorted(DATA.rglob("*_"))
        if p.stat().st_size < 300_000
    ]
    lines = [
        *LABELS.read_text().splitlines()[:50],
        *(VT_DIR / "vt_v2_file_reports.jsonl").read_text().splitlines(),
    ]
    values = [json.loads(line) for line in lines] + [
        json.loads((VT_DIR / "vt_v3_file_report_rtf.json").read_text())
    ]
    for value in values:
        out += [merge_report(None, rec, "test").attributes for rec in vtreports.parse_record(value)]
    return out


# every report attribute a clue extractor or have: reads (listed here, not taken from the code)
REPORT_PARTS = [
    "pe_info",
    "signature_info",
    "packers",
    "dot_net_assembly",
    "elf_info",
    "office_info",
    "openxml_info",
    "pdf_info",
    "rtf_info",
    "files_dropped",
    "mutexes_created",
    "contacted_domains",
    "dns_lookups",
    "behaviour",
    "behaviour_summary",
    "behavior",
    "sandbox_behaviour",
]


def _odd_reports() -> list[dict[str, Any]]:
    rng = random.Random(8)
    odd: list[Any] = [None, "", "x", 0, 5, False, [], {}, [None, 5, "A", {}, []], {"a": None}]
    pe = {
        "sections": [{"name": " .TEXT ", "virtual_size": 5000, "md5": "AB"}, None, {"name": 5}],
        "imphash": "AB",
        "rich_pe_header_hash": "",
        "exports": ["b", "A", 5, None],
        "debug": [{"codeview": {"name": "x.pdb", "guid": "G"}}, 5],
        "resource_details": [{"sha256": "X"}, "y"],
        "entry_point": 0,
        "overlay": {},
        "import_list": [{"library_name": "K32", "imported_functions": ["A"]}],
    }
    keys = [*REPORT_PARTS, "analysis_seconds", "Tags", "X" * 600]
    values = [*odd, pe, {"signers": "Me", "mutexes_created": ["M"]}, [{"path": "C:\\A", "sha256": "AB"}, "m"]]
    out: list[dict[str, Any]] = [{key: value} for key in keys for value in values]  # one attribute
    for _ in range(400):
        attrs: dict[str, Any] = {}
        for key in rng.sample(keys, rng.randint(1, 4)):
            attrs[key] = rng.choice(values)
        if rng.random() < 0.3:
            attrs["pe_info"] = {k: rng.choice([*odd, v]) for k, v in pe.items() if rng.random() < 0.5}
        out.append(attrs)
    return out


def test_have_values_as_before() -> None:
    for attrs in [*_reports(), *_odd_reports()]:
        _same(searchable.extract_have, ref.extract_have, attrs)


def test_clue_features_as_before() -> None:
    reports = [*_reports(), *_odd_reports()]
    assert sum(bool(ref.clue_features(a)) for a in reports) > 100
    for attrs in reports:
        _same(features.extract, ref.clue_features, attrs)
