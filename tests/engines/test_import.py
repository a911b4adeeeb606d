"""import-vt: round-trips of the shared VirusTotal reports, malformed lines, enrichment."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from kinfile.importer import Importer
from kinfile.services import Services
from kinfile.settings import Settings, load_settings
from kinfile.storage import schema
from tests.engines.helpers import RL_RULES, VT_DIR, trickbot_positive

V3 = VT_DIR / "vt_v3_file_report_rtf.json"
V2 = VT_DIR / "vt_v2_file_reports.jsonl"
pytestmark = pytest.mark.skipif(not V3.is_file(), reason="../shared/vt not present")
ADDED = {"downloadable", "imported", "popular_threat_classification"}


def _import(services: Services, lines: list[str] | list[bytes], source: str = "test") -> Any:
    return Importer(services.store, source).import_lines(lines, "input")


def _positives(services: Services, sha256: str) -> int:
    with services.store.engine.connect() as conn:
        return int(
            conn.execute(select(schema.files.c.positives).where(schema.files.c.sha256 == sha256)).scalar()
            or 0
        )


def test_v3_report_round_trips_on_both_backends(backend_settings: Settings) -> None:
    services = Services(backend_settings)
    original = json.loads(V3.read_text())["data"]
    summary = _import(services, V3.read_bytes().splitlines())
    assert (summary.reports, summary.created, summary.failed) == (1, 1, 0)
    attrs = services.file_attributes(services.get_file(original["id"]))
    for key, value in original["attributes"].items():
        assert attrs[key] == value, key
    assert set(attrs) - set(original["attributes"]) == ADDED
    assert attrs["downloadable"] is False
    assert attrs["imported"]["vhash"] == "virustotal-v3:test"
    assert attrs["imported"]["trid"] == "virustotal-v3:test"
    for key, value in attrs.items():
        if key.endswith("_date"):
            assert isinstance(value, int), key
    assert _positives(services, original["id"]) == 35
    assert attrs["popular_threat_classification"]["suggested_threat_label"]
    # the same report again, as a {"data": ...} document spread over several lines: no change
    pretty = json.dumps({"data": original}, indent=2).splitlines()
    again = _import(services, pretty)
    assert (again.reports, again.enriched, again.failed) == (1, 1, 0)
    assert services.file_attributes(services.get_file(original["id"])) == attrs


def test_v2_reports_map_to_v3_attributes(settings: Settings) -> None:
    services = Services(settings)
    lines = V2.read_text().splitlines()
    summary = _import(services, lines, "feed.jsonl")
    assert (summary.reports, summary.failed) == (2, 0)
    for line in lines:
        v2 = json.loads(line)
        attrs = services.file_attributes(services.get_file(v2["sha256"]))
        assert attrs["last_analysis_stats"]["malicious"] == v2["positives"]
        assert len(attrs["last_analysis_results"]) == v2["total"]
        assert _positives(services, v2["sha256"]) == v2["positives"]
        for engine, scan in v2["scans"].items():
            res = attrs["last_analysis_results"][engine]
            assert res["result"] == scan["result"] and res["engine_version"] == scan["version"]
            assert res["category"] == ("malicious" if scan["detected"] else "undetected")
        assert attrs["names"] == v2["submission_names"]
        assert attrs["type_description"] == v2["type"] and attrs["vhash"] == v2["vhash"]
        assert attrs["times_submitted"] == v2["times_submitted"]
        assert attrs["reputation"] == v2["community_reputation"]
        assert attrs["total_votes"] == {"harmless": v2["harmless_votes"], "malicious": v2["malicious_votes"]}
        for key in ("last_analysis_date", "first_submission_date", "last_submission_date"):
            assert isinstance(attrs[key], int)
        assert attrs["last_analysis_date"] == 1443402074 or v2["sha256"].startswith("b79")
        info = v2["additional_info"]
        assert attrs["magic"] == info["magic"] and attrs["exiftool"] == info["exiftool"]
        assert attrs["pe_info"]["imphash" if "pe-imphash" in info else "timestamp"] is not None
        assert attrs["trid"][0]["probability"] > 40
        kept = attrs["vt_v2"]
        assert kept["scan_id"] == v2["scan_id"] and kept["permalink"] == v2["permalink"]
        assert kept["additional_info"]["sigcheck"] == info["sigcheck"]
        assert attrs["imported"]["vhash"] == "virustotal-v2:feed.jsonl"


def test_malformed_lines_are_reported_and_skipped(settings: Settings) -> None:
    services = Services(settings)
    good = V2.read_text().splitlines()
    lines = [
        good[0],
        "{not json",
        "",
        '{"type": "url", "id": "x", "attributes": {}}',
        '{"sha256": "abc", "av_labels": []}',
        '{"response_code": 0, "resource": "x"}',
        "[1, 2]",
        good[1],
    ]
    summary = _import(services, lines)
    assert (summary.reports, summary.created, summary.failed) == (2, 2, 5)
    assert [line for _, line, _ in summary.errors] == [2, 4, 5, 6, 7]
    assert "invalid JSON" in summary.errors[0][2]
    assert "not a file object" in summary.errors[1][2]
    assert "invalid sha256" in summary.errors[2][2]
    assert "response_code 0" in summary.errors[3][2]


def test_absurd_dates_are_dropped_not_fatal(settings: Settings) -> None:
    """Dates no database integer holds (1e20, a 20-digit text) used to fail the whole batch."""
    services = Services(settings)
    lines = [
        json.dumps(
            {"sha256": f"{i:064x}", "av_labels": [["Microsoft", "Trojan:Win32/Zbot"]], "scan_date": date}
        )
        for i, date in enumerate([1e20, "99999999999999999999", -1e30, "2013-12-19 22:11:10"], 1)
    ]
    lines.insert(2, '{"sha256": "' + "f" * 64 + '", "av_labels": [], "first_seen": 1e400}')  # inf
    summary = _import(services, lines)
    assert (summary.created, summary.failed) == (5, 0)
    reports = services.store.get_reports([f"{i:064x}" for i in range(1, 5)])
    dates = [reports[f"{i:064x}"].report.get("last_analysis_date") for i in range(1, 5)]
    assert dates == [None, None, None, 1387491070]
    services.close()


def test_import_enriches_an_analysed_file_without_overwriting(tmp_path: Any) -> None:
    if not RL_RULES.is_dir():
        pytest.skip("rules not present")
    settings = load_settings(
        {"home": str(tmp_path / "h"), "yara_rules": str(RL_RULES), "clamav": "off"}, env={}
    )
    services = Services(settings)
    data = trickbot_positive()
    sha256, _ = services.submit_bytes(data, "tb.exe", "lab")
    before = services.file_attributes(services.get_file(sha256))
    assert before["last_analysis_results"]["YARA"]["category"] == "malicious"
    vt_attrs = {
        "sha256": sha256,
        "magic": "something VirusTotal says",
        "vhash": "0150366d1565z2",
        "trid": [{"file_type": "Win32 Executable", "probability": 51.2}],
        "last_analysis_date": 1_600_000_000,
        "last_analysis_results": {
            "Kaspersky": {
                "category": "malicious",
                "engine_name": "Kaspersky",
                "engine_version": "21",
                "engine_update": "20200913",
                "method": "blacklist",
                "result": "Trojan.Win32.Trickbot.a",
            },
            "YARA": {
                "category": "undetected",
                "engine_name": "YARA",
                "engine_version": "0",
                "engine_update": "20200913",
                "method": "blacklist",
                "result": None,
            },
        },
    }
    _import(services, [json.dumps({"type": "file", "id": sha256, "attributes": vt_attrs})], "vt.jsonl")
    after = services.file_attributes(services.get_file(sha256))
    assert after["magic"] == before["magic"]  # computed by kinfile: kept
    assert after["vhash"] == "0150366d1565z2" and after["trid"] == vt_attrs["trid"]
    assert after["imported"] == {"vhash": "virustotal-v3:vt.jsonl", "trid": "virustotal-v3:vt.jsonl"}
    results = after["last_analysis_results"]
    assert results["YARA"]["category"] == "malicious"  # the local engine wins over the imported one
    assert results["Kaspersky"]["result"] == "Trojan.Win32.Trickbot.a"
    assert after["last_analysis_stats"]["malicious"] == 2
    assert after["popular_threat_classification"]["popular_threat_name"][0]["value"] == "trickbot"
    assert _positives(services, sha256) == 2
    # a rescan keeps the imported results and attributes and still follows the latest run
    services.rescan(sha256)
    rescanned = services.file_attributes(services.get_file(sha256))
    assert rescanned["vhash"] == "0150366d1565z2"
    assert rescanned["last_analysis_results"]["Kaspersky"] == results["Kaspersky"]
    assert rescanned["last_analysis_date"] >= after["last_analysis_date"]
    assert rescanned["times_submitted"] == 1 and rescanned["names"] == ["tb.exe"]


def test_parallel_import_matches_serial(tmp_path: Any) -> None:
    import hashlib

    base = [json.loads(line) for line in (VT_DIR / "av_labels_500.jsonl").read_text().splitlines()]
    lines = []
    for copy in range(3):  # 1,500 lines: more than one batch, so worker processes are used
        for i, rec in enumerate(base):
            seed = f"{copy}:{i}".encode()
            hashes = {
                "md5": hashlib.md5(seed).hexdigest(),
                "sha1": hashlib.sha1(seed).hexdigest(),
                "sha256": hashlib.sha256(seed).hexdigest(),
            }
            lines.append(json.dumps({**rec, **hashes}))
    lines.insert(700, "{oops")
    results = []
    for jobs in (1, 2):
        settings = load_settings({"home": str(tmp_path / f"h{jobs}")}, env={})
        services = Services(settings)
        summary = Importer(services.store, "av", jobs=jobs).import_lines(lines)
        assert (summary.reports, summary.created, summary.failed) == (1500, 1500, 1)
        assert summary.errors[0][1] == 701
        sha = json.loads(lines[1234])["sha256"]
        attrs = services.file_attributes(services.get_file(sha))
        attrs.pop("last_modification_date")  # the import's own clock
        results.append(attrs)
    assert results[0] == results[1]


def test_the_cycle_collector_is_paused_only_while_a_batch_is_prepared() -> None:
    """importer.paused_gc: off inside, back on after (also after an error), left off if it was."""
    import gc

    from kinfile.importer import paused_gc, prepare_values

    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        assert not gc.isenabled()
        raise RuntimeError("a failed batch")
    assert gc.isenabled()
    line = json.dumps({"sha256": "b" * 64, "av_labels": [["Kaspersky", "Trojan.Win32.Agent.x"]]})
    [(_number, prepared)] = prepare_values([(1, line)], "t", None, True)
    assert not isinstance(prepared, str) and gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # a caller's own choice stands
    finally:
        gc.enable()
