"""Rescans, analyses and imports through the VT API and the CLI, and engines in ingest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kinfile.api.app import create_app
from kinfile.cli import main
from kinfile.ingest import run_ingest
from kinfile.services import Services
from kinfile.settings import Settings, load_settings
from kinfile.storage import schema
from kinfile.storage.store import Store
from tests.engines.helpers import RL_RULES, VT_DIR, trickbot_positive, zipped

pytestmark = pytest.mark.skipif(not RL_RULES.is_dir(), reason="../shared/rules not present")


@pytest.fixture
def yara_settings(tmp_path: Path, db_url: str) -> Settings:
    return load_settings(
        {"home": str(tmp_path / "home"), "db": db_url, "yara_rules": str(RL_RULES), "clamav": "off"}, env={}
    )


def _client(settings: Settings) -> TestClient:
    services = Services(settings)
    client = TestClient(create_app(settings, services), base_url="http://kinfile.test")
    client.headers["x-apikey"] = services.store.create_api_key("tester")
    return client


def _cli(settings: Settings, *args: str, input: str | None = None) -> tuple[int, str, str]:
    base = [
        "--home",
        str(settings.home),
        "--db",
        settings.db,
        "--setting",
        f"yara_rules={settings.yara_rules}",
    ]
    result = CliRunner().invoke(
        main, [*base, "--setting", "clamav=off", *args], input=input, catch_exceptions=False
    )
    return result.exit_code, result.stdout, result.stderr


def test_upload_and_rescan_make_vt_shaped_analyses(yara_settings: Settings) -> None:
    client = _client(yara_settings)
    data = trickbot_positive()
    first = client.post("/api/v3/files", files={"file": ("tb.exe", data)}).json()["data"]["id"]
    analysis = client.get(f"/api/v3/analyses/{first}").json()
    attrs = analysis["data"]["attributes"]
    assert analysis["data"]["type"] == "analysis" and attrs["status"] == "completed"
    assert isinstance(attrs["date"], int)
    assert attrs["results"]["YARA"] == {
        "category": "malicious",
        "engine_name": "YARA",
        "engine_version": attrs["results"]["YARA"]["engine_version"],
        "engine_update": attrs["results"]["YARA"]["engine_update"],
        "method": "blacklist",
        "result": "Win32_Trojan_TrickBot",
    }
    assert attrs["stats"]["malicious"] == 1 and sum(attrs["stats"].values()) == 1
    sha256 = analysis["meta"]["file_info"]["sha256"]
    obj = client.get(f"/api/v3/files/{sha256}").json()["data"]["attributes"]
    assert obj["last_analysis_stats"]["malicious"] == 1
    assert obj["crowdsourced_yara_results"][0]["rule_name"] == "Win32_Trojan_TrickBot"
    assert "verdict_sources" not in obj
    rescan = client.post(f"/api/v3/files/{sha256}/analyse").json()["data"]
    assert rescan["type"] == "analysis" and rescan["id"] != first
    again = client.get(f"/api/v3/analyses/{rescan['id']}").json()["data"]["attributes"]
    assert again["results"]["YARA"]["result"] == "Win32_Trojan_TrickBot"
    meta = client.get("/api/v3/metadata").json()["data"]["engines"]
    assert meta["YARA"]["available"] is True


def test_bulk_import_endpoint(yara_settings: Settings) -> None:
    client = _client(yara_settings)
    body = (VT_DIR / "vt_v2_file_reports.jsonl").read_bytes() + b"not json\n"
    r = client.post("/api/v3/kinfile/imports", content=body, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    attrs = r.json()["data"]["attributes"]
    assert (attrs["reports"], attrs["created"], attrs["failed"]) == (2, 2, 1)
    assert attrs["errors"][0]["line"] == 3
    sha = json.loads((VT_DIR / "vt_v2_file_reports.jsonl").read_text().splitlines()[0])["sha256"]
    got = client.get(f"/api/v3/files/{sha}").json()["data"]["attributes"]
    assert got["downloadable"] is False and got["last_analysis_stats"]["malicious"] == 52
    assert client.get(f"/api/v3/files/{sha}/download").status_code == 404


def test_cli_engines_rescan_and_import(yara_settings: Settings, tmp_path: Path) -> None:
    code, out, _ = _cli(yara_settings, "engines")
    assert code == 0 and out.startswith("YARA\t") and "available" in out
    services = Services(yara_settings)
    sha_clean, _ = services.submit_bytes(b"just some harmless text\n" * 10, "a.txt", "lab")
    with services.store.writing() as conn:  # forget the verdicts, as if stored before the engines
        conn.execute(schema.analyses.delete())
    code, out, err = _cli(yara_settings, "rescan", "--all")
    assert code == 0, err
    assert "rescanned 1 file(s) with 1 engine(s)" in out
    attrs = services.file_attributes(services.get_file(sha_clean))
    assert attrs["last_analysis_stats"]["undetected"] == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text((VT_DIR / "vt_v2_file_reports.jsonl").read_text() + "{broken\n")
    code, out, err = _cli(yara_settings, "import-vt", str(bad))
    assert code == 1 and "2 report(s)" in out and "bad.jsonl:3: invalid JSON" in err
    code, out, _ = _cli(yara_settings, "rescan", "--all")
    assert "2 report-only skipped" in out
    code, out, err = _cli(yara_settings, "rescan", "--query", "type:text")
    assert code == 0, err
    assert "rescanned 1 file(s)" in out  # the text file only, chosen by the search language
    code, _, err = _cli(yara_settings, "rescan", "--query", "nosuchmodifier:1")
    assert code == 2 and "InvalidArgumentError" in err
    with services.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.analyses)).scalar() == 3


def test_ingest_workers_run_the_engines(yara_settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bundle.zip").write_bytes(zipped("tb.exe", trickbot_positive()))
    (folder / "plain.txt").write_bytes(b"hello")
    summary = run_ingest(yara_settings, [str(folder)], jobs=1)
    assert summary.new == 2 and summary.failed == 0
    services = Services(yara_settings)
    store: Store = services.store
    with store.engine.connect() as conn:
        rows = dict(conn.execute(select(schema.files.c.sha256, schema.files.c.positives)).all())
        analyses = conn.execute(select(func.count()).select_from(schema.analyses)).scalar()
    assert sorted(rows.values()) == [0, 1, 1]  # the zip, its member, the text file
    assert analyses == 2  # one analysis per submitted file
    bundle = services.file_attributes(services.get_file(max(rows, key=lambda s: rows[s] * (s != ""))))
    assert bundle["last_analysis_stats"]["malicious"] == 1
