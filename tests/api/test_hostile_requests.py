"""Hostile queries and API arguments get a VirusTotal-style 4xx on both backends, never a 500
nor a different answer (found by fuzzing the API with thousands of mutated requests)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kinfile.settings import Settings
from tests.api.test_files_api import assert_error, make_client
from tests.engines.helpers import VT_DIR


@pytest.fixture
def client(backend_settings: Settings) -> TestClient:
    return make_client(backend_settings)[0]


@pytest.fixture
def filled(client: TestClient) -> TestClient:
    lines = (VT_DIR / "av_labels_500.jsonl").read_text().splitlines()[:20]
    r = client.post("/api/v3/kinfile/imports", content="\n".join(lines).encode())
    assert r.json()["data"]["attributes"]["created"] == 20
    return client


def _search(client: TestClient, query: str) -> Any:
    return client.get("/api/v3/intelligence/search", params={"query": query, "limit": 40})


def _ids(client: TestClient, query: str) -> list[str]:
    r = _search(client, query)
    assert r.status_code == 200, r.text
    return sorted(item["id"] for item in r.json()["data"])


@pytest.mark.parametrize(
    "query",
    [
        "size:" + "9" * 400,  # float overflow
        "size:" + "9" * 400 + "kb+",
        "p:" + "1" * 5000,  # beyond Python's int() digit limit
        "fs:" + "9" * 5000 + "d",
        'ssdeep:"3:a:b ³"',  # isdigit() but not int()
        "content:{4D 5A [" + "9" * 5000 + "] 00}",
        "content:{4D 5A 90 00}@" + "9" * 5000,
        "tag:a\x00b",  # NUL: PostgreSQL refuses it, SQLite's LIKE stopped at it
        "magic:\x00zzzz",
    ],
)
def test_bad_values_are_invalid_arguments(filled: TestClient, query: str) -> None:
    assert_error(_search(filled, query), 400, "InvalidArgumentError")


def test_numbers_beyond_a_column_match_as_the_column_allows(filled: TestClient) -> None:
    """``positives`` is a 32-bit column on PostgreSQL, ``size`` 64-bit on both: a bound past the
    range matches nothing, one before it is no bound (before: SQLite could not bind it,
    PostgreSQL raised "out of range", or the backends disagreed)."""
    every = _ids(filled, "p:0+")
    assert len(every) == 20
    for query in ("p:99999999999999999999", "p:2147483648", "size:99999999999gb", "s:-2147483649-"):
        assert _ids(filled, query) == [], query
    for query in ("p:2147483648-", "p:-99999999999999999999+", "reputation:2147483648-"):
        assert _ids(filled, query) == every, query
    assert _ids(filled, "NOT p:99999999999999999999") == every


def test_cluster_windows_past_year_9999(client: TestClient) -> None:
    r = client.get("/api/v3/stats/vhash_clusters", params={"date": "9999-12-31"})
    assert_error(r, 400, "InvalidArgumentError")
    key = client.headers["x-apikey"]
    r = client.get("/vtapi/v2/file/clusters", params={"date": "9999-12-31", "days": "2", "apikey": key})
    assert r.status_code == 200 and r.json()["response_code"] == -1


def test_malformed_ids_and_tokens(client: TestClient) -> None:
    for ident in ("0x" + "a" * 30, "+" + "a" * 31, "a" * 15 + "_" + "a" * 16, " " + "a" * 31, "٣" * 32):
        assert_error(client.get(f"/api/v3/files/{ident}"), 400, "InvalidArgumentError")
    nul_analysis = base64.urlsafe_b64encode(b"\x00" * 64 + b":1:2").decode().rstrip("=")
    assert_error(client.get(f"/api/v3/analyses/{nul_analysis}"), 404, "NotFoundError")
    upload_url = client.get("/api/v3/files/upload_url").json()["data"]
    token = upload_url.rstrip("/").rsplit("/", 1)[-1]
    assert_error(client.get(f"/download/{token}"), 400, "InvalidArgumentError")
