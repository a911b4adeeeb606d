"""v2 ``/vtapi/v2/file/clusters``, v3 ``/api/v3/stats/vhash_clusters`` and ``kinfile clusters``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from kinfile.api.app import create_app
from kinfile.cli import main
from kinfile.services import Services
from kinfile.settings import Settings
from tests.clusters.day import DAY, analysed, build_day


@pytest.fixture
def client(backend_settings: Settings) -> tuple[TestClient, str]:
    services = Services(backend_settings)
    build_day(services.store)
    key = services.store.create_api_key("tester")
    return TestClient(create_app(backend_settings, services), base_url="http://kinfile.test"), key


def test_v2_shape(client: tuple[TestClient, str]) -> None:
    c, key = client
    r = c.get("/vtapi/v2/file/clusters", params={"apikey": key, "date": DAY})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == [
        "response_code",
        "verbose_msg",
        "num_candidates",
        "num_clusters",
        "size_top200",
        "clusters",
    ]
    assert body["response_code"] == 1 and body["verbose_msg"] == "Clustering information enclosed"
    assert (body["num_candidates"], body["num_clusters"], body["size_top200"]) == (13, 7, 13)
    first = body["clusters"][0]
    assert list(first) == ["label", "avg_positives", "id", "size"]
    setx = analysed("setx_wine8.0-amd64.exe_").record.attributes["vhash"]
    assert first == {"label": "emotet [0000]", "avg_positives": 20, "id": f"vhash {setx} {DAY}", "size": 3}
    assert [x["size"] for x in body["clusters"]] == [3, 3, 2, 2, 1, 1, 1]


def test_v2_codes_and_errors(client: tuple[TestClient, str]) -> None:
    c, key = client
    none = c.get("/vtapi/v2/file/clusters", params={"apikey": key, "date": "2001-01-01"}).json()
    assert none == {"response_code": 0, "verbose_msg": "No clustering information for the requested date"}
    for bad in ("2024-02-30", "05-03-2024", "today", "2024-03-05x"):
        r = c.get("/vtapi/v2/file/clusters", params={"apikey": key, "date": bad})
        assert r.status_code == 200 and r.json()["response_code"] == -1, bad
        assert "YYYY-MM-DD" in r.json()["verbose_msg"]
    window = c.get("/vtapi/v2/file/clusters", params={"apikey": key, "date": DAY, "days": "0"}).json()
    assert window["response_code"] == -1
    assert c.get("/vtapi/v2/file/clusters", params={"apikey": key}).status_code == 400
    assert c.get("/vtapi/v2/file/clusters", params={"date": DAY}).status_code == 403
    assert c.get("/vtapi/v2/file/clusters", params={"apikey": "nope", "date": DAY}).status_code == 403
    # v2 ignores the v3 header
    assert (
        c.get("/vtapi/v2/file/clusters", params={"date": DAY}, headers={"x-apikey": key}).status_code == 403
    )


def test_v3_shape_and_errors(client: tuple[TestClient, str]) -> None:
    c, key = client
    r = c.get("/api/v3/stats/vhash_clusters", params={"date": DAY}, headers={"x-apikey": key})
    assert r.status_code == 200
    body = r.json()
    assert body["meta"] == {"count": 7, "num_top200": 13, "candidates": 13}
    item = body["data"][0]
    setx = analysed("setx_wine8.0-amd64.exe_").record.attributes["vhash"]
    assert item == {
        "type": "cluster",
        "id": f"vhash{setx}",
        "attributes": {
            "files": 3,
            "discriminator": setx,
            "vector": "vhash",
            "mean_positives": 20,
            "name": "emotet [0000]",
        },
    }
    assert len(body["data"]) == 7
    bad = c.get("/api/v3/stats/vhash_clusters", params={"date": "2024/03/05"}, headers={"x-apikey": key})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidArgumentError"
    assert c.get("/api/v3/stats/vhash_clusters", params={"date": DAY}).status_code == 401
    empty = c.get("/api/v3/stats/vhash_clusters", params={"date": "2001-01-01"}, headers={"x-apikey": key})
    assert empty.json() == {"meta": {"count": 0, "num_top200": 0, "candidates": 0}, "data": []}


def test_cli(tmp_path: Path, backend_settings: Settings) -> None:
    services = Services(backend_settings)
    build_day(services.store)
    base = ["--home", str(backend_settings.home), "--db", backend_settings.db]
    runner = CliRunner()
    out = runner.invoke(main, [*base, "clusters", "--date", DAY, "--format", "json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert (body["num_candidates"], body["num_clusters"], body["size_top200"]) == (13, 7, 13)
    assert body["clusters"][0]["label"] == "emotet [0000]" and body["clusters"][0]["id"].endswith(DAY)
    table = runner.invoke(main, [*base, "clusters", "--date", DAY], catch_exceptions=False)
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0] == f"{DAY} (1 day): 13 candidates, 7 clusters, top 7 hold 13"
    assert "emotet [0000]" in lines[2] and lines[2].split()[:2] == ["3", "20"]
    bad = runner.invoke(main, [*base, "clusters", "--date", "2024-3-5"])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.stderr
