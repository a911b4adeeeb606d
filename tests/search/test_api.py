"""``GET /api/v3/intelligence/search`` and the ``similar_files`` relationship, in process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from kinfile import search
from kinfile.api.app import create_app
from kinfile.services import Services
from kinfile.settings import Settings
from tests.api.test_files_api import assert_error, assert_wire_rules
from tests.search import corpus

URL = "/api/v3/intelligence/search"


@pytest.fixture
def env(backend_settings: Settings) -> Iterator[tuple[TestClient, Services, dict[str, dict[str, Any]]]]:
    services = Services(backend_settings)
    stored = corpus.load(services, limit=40)
    client = TestClient(create_app(backend_settings, services), base_url="http://kinfile.test")
    client.headers["x-apikey"] = services.store.create_api_key("tester")
    yield client, services, stored
    services.close()


def test_search_page_shape_and_links(env: Any) -> None:
    client, _services, stored = env
    r = client.get(URL, params={"query": "size:1+", "limit": "3", "order": "size-"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["data"]) == 3
    for obj in body["data"]:
        assert obj["type"] == "file" and obj["id"] in stored
        assert_wire_rules(obj)
    sizes = [o["attributes"]["size"] for o in body["data"]]
    assert sizes == sorted(sizes, reverse=True)
    assert body["meta"]["days_back"] >= 1
    cursor = body["meta"]["cursor"]
    nxt = urlsplit(body["links"]["next"])
    assert (nxt.scheme, nxt.netloc, nxt.path) == ("http", "kinfile.test", URL)
    assert parse_qs(nxt.query) == {
        "query": ["size:1+"],
        "limit": ["3"],
        "order": ["size-"],
        "cursor": [cursor],
    }
    # vt-go follows links.next verbatim until it disappears: every file once
    seen = [o["id"] for o in body["data"]]
    url = body["links"]["next"]
    while url:
        page = client.get(url).json()
        assert page["data"]
        seen += [o["id"] for o in page["data"]]
        url = page["links"].get("next")
        assert ("cursor" in page.get("meta", {})) == bool(url)
    assert sorted(seen) == sorted(set(seen)) and set(seen) == set(stored)


def test_descriptors_only_and_default_limit(env: Any) -> None:
    client, _services, _stored = env
    body = client.get(URL, params={"query": "size:1+", "descriptors_only": "true"}).json()
    assert len(body["data"]) == 10
    assert all(set(o) <= {"type", "id", "links", "context_attributes"} for o in body["data"])
    big = client.get(URL, params={"query": "size:1+", "limit": "1000"}).json()
    assert len(big["data"]) == len(env[2]) and "next" not in big["links"]


def test_similarity_hits_carry_context_attributes(env: Any) -> None:
    client, _services, stored = env
    sha256, attrs = next((s, a) for s, a in sorted(stored.items()) if a.get("ssdeep") and a.get("tlsh"))
    body = client.get(
        URL, params={"query": f'ssdeep:"{attrs["ssdeep"]} 100"', "descriptors_only": "1"}
    ).json()
    mine = [o for o in body["data"] if o["id"] == sha256]
    assert mine and mine[0]["context_attributes"] == {"similarity_score": 1.0}
    body = client.get(URL, params={"query": f"tlsh:{attrs['tlsh']}"}).json()
    mine = [o for o in body["data"] if o["id"] == sha256]
    assert mine[0]["context_attributes"] == {"similarity_score": 1.0, "tlsh_distance": 0}
    assert "context_attributes" not in mine[0]["attributes"]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "InvalidArgumentError"),
        ({"query": "type:pdf ("}, 400, "InvalidArgumentError"),
        ({"query": "colour:red"}, 400, "InvalidArgumentError"),
        ({"query": "entity:domain google"}, 400, "InvalidArgumentError"),
        ({"query": "type:pdf", "order": "name-"}, 400, "InvalidArgumentError"),
        ({"query": "type:pdf", "limit": "x"}, 400, "InvalidArgumentError"),
        ({"query": "type:pdf", "cursor": "forged.cursor"}, 400, "InvalidArgumentError"),
        ({"query": "size:big"}, 400, "InvalidArgumentError"),
    ],
)
def test_errors(env: Any, params: dict[str, str], status: int, code: str) -> None:
    assert_error(env[0].get(URL, params=params), status, code)


def test_unknown_modifier_message_lists_modifiers(env: Any) -> None:
    message = env[0].get(URL, params={"query": "type:pdf colour:red"}).json()["error"]["message"]
    assert "unknown modifier 'colour' at 9" in message and "imphash" in message


def test_fuzzy_rate_limit_is_429(env: Any) -> None:
    client, services, _stored = env
    search.state_of(services).limiter = search.RateLimiter(1)
    query = {"query": 'ssdeep:"3:abcdefgh:abcdefgh"'}
    assert client.get(URL, params=query).status_code == 200
    assert_error(client.get(URL, params=query), 429, "TooManyRequestsError")


def test_similar_files_relationship(env: Any) -> None:
    client, services, stored = env
    # two stored files of one family: the NSIS and the plain ClamAV test executables share code
    with_hashes = [(s, a) for s, a in sorted(stored.items()) if a.get("ssdeep")]
    sha256, _attrs = with_hashes[0]
    expected = search.similar_files(services, sha256, 0, 1000)
    r = client.get(f"/api/v3/files/{sha256}/relationships/similar_files", params={"limit": 40})
    assert r.status_code == 200, r.text
    got = r.json()["data"]
    assert [d["id"] for d in got] == [e["id"] for e in expected][:40]
    scores = [d["context_attributes"]["similarity_score"] for d in got]
    assert scores == sorted(scores, reverse=True)
    for d in got:
        ctx = d["context_attributes"]
        assert ctx["vector"] in ctx["vectors"] and set(ctx["vectors"]) <= {
            "ssdeep",
            "tlsh",
            "imphash",
            "vhash",
        }
    meta = client.get("/api/v3/metadata").json()["data"]["relationships"]["file"]
    assert "similar_files" in [m["name"] for m in meta]


def test_relationships_parameter_adds_descriptor_blocks(env: Any) -> None:
    client, services, stored = env
    r = client.get(
        URL, params={"query": "size:1+", "limit": "5", "relationships": "submissions,similar_files"}
    )
    assert r.status_code == 200, r.text
    for obj in r.json()["data"]:
        rels = obj["relationships"]
        assert set(rels) == {"submissions", "similar_files"}
        subs = rels["submissions"]["data"]
        assert subs and all(d["type"] == "submission" for d in subs)
        assert len(subs) == len(services.store.submissions(obj["id"], 0, 10))
        assert rels["similar_files"]["links"]["self"].endswith(
            f"/files/{obj['id']}/relationships/similar_files"
        )
    bad = client.get(URL, params={"query": "size:1+", "relationships": "nope"})
    assert_error(bad, 404, "NotFoundError")
