"""Clue rules on the wire (``/clue_rules``, ``/files/{id}/clues``, ``clue_rule:``) and the CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest
import vt
from click.testing import CliRunner
from fastapi.testclient import TestClient

from kinfile.api.app import create_app
from kinfile.cli import main
from kinfile.clues import service
from kinfile.services import Services
from kinfile.settings import Settings
from tests.clues.month import HELD_OUT, LATE, MIN_SUPPORT, MONTH, build_month, store_files

UPX = service.clue_id(["PE_SECTION_NAME_AT_INDEX:0:upx0"])


@pytest.fixture
def client(backend_settings: Settings) -> tuple[TestClient, dict[str, str], Services, dict[str, str]]:
    services = Services(backend_settings)
    files = build_month(services.store)
    service.mine_month(services.store, MONTH, MIN_SUPPORT)
    key = services.store.create_api_key("tester")
    app = TestClient(create_app(backend_settings, services), base_url="http://kinfile.test")
    return app, {"x-apikey": key}, services, files


def check_object(obj: dict[str, Any], kind: str) -> None:
    assert obj["type"] == kind and obj["id"] and "attributes" in obj
    for name, value in obj["attributes"].items():
        if name.endswith("_date"):
            assert isinstance(value, int)
    vt.Object.from_dict(obj)


def walk(client: TestClient, headers: dict[str, str], url: str) -> list[dict[str, Any]]:
    """Follow ``links.next`` verbatim (vt-go); a page with a cursor is never empty."""
    items: list[dict[str, Any]] = []
    while url:
        body = client.get(url, headers=headers).json()
        assert body["data"] or not body.get("meta", {}).get("cursor")
        assert "count" in body["meta"]
        items += body["data"]
        url = body["links"].get("next", "")
    return items


def test_clue_rule_object(client: tuple[Any, ...]) -> None:
    app, headers, _services, _files = client
    body = app.get(f"/api/v3/clue_rules/{UPX}", headers=headers).json()
    obj = body["data"]
    check_object(obj, "clue_rule")
    assert obj["id"] == UPX and obj["links"]["self"] == f"http://kinfile.test/api/v3/clue_rules/{UPX}"
    assert obj["attributes"] == {
        "features": [{"feature_type": "PE_SECTION_NAME_AT_INDEX", "objects": ["0:upx0"]}],
        "label": "P20_PLUS",
        "last_month": 5,
        "last_month_positive_rate": 1.0,
        "last_month_total_log10_count": 0,
    }
    missing = app.get(f"/api/v3/clue_rules/{'0' * 64}", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFoundError"
    assert app.get(f"/api/v3/clue_rules/{UPX}").status_code == 401


def test_rule_files_pages_count_and_live_matching(client: tuple[Any, ...]) -> None:
    app, headers, services, files = client
    first = app.get(f"/api/v3/clue_rules/{UPX}/files?limit=2", headers=headers).json()
    assert first["meta"]["count"] == 3 and len(first["data"]) == 2 and first["meta"]["cursor"]
    assert first["links"]["next"].startswith(
        f"http://kinfile.test/api/v3/clue_rules/{UPX}/files?limit=2&cursor="
    )
    for obj in first["data"]:
        check_object(obj, "file")
        assert obj["attributes"]["last_analysis_stats"]["malicious"] == 30
    every = walk(app, headers, f"/api/v3/clue_rules/{UPX}/files?limit=2")
    assert len(every) == 3 and len({o["id"] for o in every}) == 3
    descriptors = walk(app, headers, f"/api/v3/clue_rules/{UPX}/relationships/files?limit=1")
    assert [d["id"] for d in descriptors] == [o["id"] for o in every]
    assert all(set(d) == {"type", "id"} and d["type"] == "file" for d in descriptors)
    late = store_files(services.store, {LATE: 30}, HELD_OUT)[LATE]  # stored after mining
    after = walk(app, headers, f"/api/v3/clue_rules/{UPX}/files?limit=3")
    assert late in {o["id"] for o in after} and len(after) == 4
    clues = app.get(f"/api/v3/files/{late}/clues", headers=headers).json()
    assert UPX in {c["id"] for c in clues["data"]} and clues["meta"]["count"] == len(clues["data"])
    for obj in clues["data"]:
        check_object(obj, "clue_rule")
        assert obj["attributes"]["label"] == "P20_PLUS"


def test_file_clues_relationship_and_metadata(client: tuple[Any, ...]) -> None:
    app, headers, _services, files = client
    sha256 = files["pe/clam-upx.exe_"]
    every = walk(app, headers, f"/api/v3/files/{sha256}/clues?limit=2")
    assert UPX in {c["id"] for c in every} and all(c["type"] == "clue_rule" for c in every)
    descs = app.get(f"/api/v3/files/{sha256}/relationships/clues?limit=40", headers=headers).json()
    assert {d["id"] for d in descs["data"]} == {c["id"] for c in every}
    with_rel = app.get(f"/api/v3/files/{sha256}?relationships=clues", headers=headers).json()
    assert with_rel["data"]["relationships"]["clues"]["data"][0]["type"] == "clue_rule"
    names = [
        r["name"]
        for r in app.get("/api/v3/metadata", headers=headers).json()["data"]["relationships"]["file"]
    ]
    assert "clues" in names
    clean = files["pe/clam.exe_"]
    assert app.get(f"/api/v3/files/{clean}/clues", headers=headers).json()["meta"]["count"] >= 0


def test_search_modifier_combines(client: tuple[Any, ...]) -> None:
    app, headers, _services, files = client

    def search(query: str) -> set[str]:
        body = app.get("/api/v3/intelligence/search", params={"query": query, "limit": 50}, headers=headers)
        assert body.status_code == 200, body.text
        return {o["id"] for o in body.json()["data"]}

    upx = {files[p] for p in ("pe/clam-upx.exe_", "pe/mshta-upx.exe_", "vhash/setx_upx-default.exe_")}
    assert search(f"clue_rule:{UPX}") == upx
    assert search(f"clue:{UPX} positives:20+") == upx
    assert search(f"clue_rule:{UPX} positives:0") == set()  # no false positives
    assert search(f"clue_rule:{'1' * 64}") == set()
    bad = app.get("/api/v3/intelligence/search", params={"query": "clue_rule:xyz"}, headers=headers)
    assert bad.status_code == 400


def test_cli(backend_settings: Settings) -> None:
    services = Services(backend_settings)
    build_month(services.store)
    base = ["--home", str(backend_settings.home), "--db", backend_settings.db]
    runner = CliRunner()
    mined = runner.invoke(
        main, [*base, "clues", "mine", "--month", MONTH, "--min-support", "3"], catch_exceptions=False
    )
    assert mined.exit_code == 0, mined.output
    assert json.loads(mined.stdout)["files"] == 22
    listed = runner.invoke(main, [*base, "clues", "list", "--label", "P20_PLUS"], catch_exceptions=False)
    assert UPX in listed.stdout and "P0 " not in listed.stdout
    shown = json.loads(runner.invoke(main, [*base, "clues", "show", UPX], catch_exceptions=False).stdout)
    assert shown["type"] == "clue_rule" and shown["meta"]["count"] == 3
    listed_files = runner.invoke(main, [*base, "clues", "files", UPX], catch_exceptions=False).stdout.split()
    assert len(listed_files) == 3
    bad = runner.invoke(main, [*base, "clues", "mine", "--month", "2024-5"])
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output
