"""The VT v3 files API in process: shapes, wire rules and every error path."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from typing import Any

import pydeep
import pytest
import tlsh
from fastapi.testclient import TestClient

from kinfile.api.app import create_app
from kinfile.services import Services
from kinfile.settings import Settings, load_settings
from tests.conftest import FOUNDATION

RESERVED = {"type", "id", "error", "relationships", "context_attributes"}


def make_client(settings: Settings) -> tuple[TestClient, str]:
    services = Services(settings)
    key = services.store.create_api_key("tester")
    client = TestClient(create_app(settings, services), base_url="http://kinfile.test")
    client.headers["x-apikey"] = key
    return client, key


@pytest.fixture
def client(backend_settings: Settings) -> TestClient:
    c, _ = make_client(backend_settings)
    return c


def upload(client: TestClient, name: str, data: bytes | None = None, **fields: str) -> dict[str, Any]:
    payload = data if data is not None else (FOUNDATION / name).read_bytes()
    r = client.post("/api/v3/files", files={"file": (name, payload)}, data=fields)
    assert r.status_code == 200, r.text
    return r.json()


def assert_error(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def assert_wire_rules(obj: dict[str, Any]) -> None:
    assert obj["type"] and obj["id"]
    attrs = obj.get("attributes", {})
    assert not RESERVED & set(attrs)
    for key, value in attrs.items():
        if key == "date" or key.endswith("_date"):
            assert isinstance(value, int), (key, value)


def test_authentication_errors(client: TestClient) -> None:
    key = client.headers.pop("x-apikey")
    assert_error(client.get("/api/v3/metadata"), 401, "AuthenticationRequiredError")
    assert_error(client.get("/api/v3/metadata", headers={"X-Apikey": "nope"}), 401, "WrongCredentialsError")
    assert client.get("/api/v3/metadata", headers={"X-APIKEY": key}).status_code == 200


def test_upload_analysis_and_lookups(client: TestClient) -> None:
    data = (FOUNDATION / "wmasf.dll_").read_bytes()
    desc = upload(client, "wmasf.dll", data)["data"]
    assert desc["type"] == "analysis"
    analysis = client.get(f"/api/v3/analyses/{desc['id']}")
    assert analysis.status_code == 200
    body = analysis.json()
    assert body["data"]["attributes"]["status"] == "completed"
    assert body["meta"]["file_info"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert_wire_rules(body["data"])
    item = client.get(f"/api/v3/analyses/{desc['id']}/item").json()["data"]
    assert item["id"] == hashlib.sha256(data).hexdigest()
    for h in (hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(), item["id"]):
        r = client.get(f"/api/v3/files/{h}")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        obj = r.json()["data"]
        assert obj["id"] == item["id"]
        assert obj["links"]["self"] == f"http://kinfile.test/api/v3/files/{item['id']}"
        assert_wire_rules(obj)
    attrs = obj["attributes"]
    assert attrs["size"] == 37822
    assert attrs["type_tag"] == "pedll"
    assert attrs["names"] == ["wmasf.dll"]
    assert attrs["meaningful_name"] == "wmasf.dll"
    assert attrs["times_submitted"] == 1
    assert attrs["ssdeep"] == pydeep.hash_buf(data).decode()  # the C library as oracle
    assert attrs["tlsh"] == tlsh.hash(data)


def test_unknown_and_malformed_ids(client: TestClient) -> None:
    assert_error(client.get("/api/v3/files/" + "0" * 64), 404, "NotFoundError")
    assert_error(client.get("/api/v3/files/xyz"), 400, "InvalidArgumentError")
    assert_error(client.get("/api/v3/analyses/bogus"), 404, "NotFoundError")
    assert_error(client.get("/api/v3/no/such/route"), 404, "NotFoundError")


def test_download_and_signed_download_url(client: TestClient) -> None:
    data = (FOUNDATION / "imagemagick-lzw.pdf_").read_bytes()
    upload(client, "doc.pdf", data)
    sha = hashlib.sha256(data).hexdigest()
    r = client.get(f"/api/v3/files/{sha}/download")
    assert r.status_code == 200 and r.content == data
    url = client.get(f"/api/v3/files/{sha}/download_url").json()["data"]
    assert url.startswith("http://kinfile.test/download/")
    key = client.headers.pop("x-apikey")
    r = client.get(url)
    assert r.status_code == 200 and r.content == data
    token = url.rsplit("/", 1)[1]
    assert_error(client.get("/download/" + token[:-2] + "AA"), 400, "InvalidArgumentError")
    client.headers["x-apikey"] = key
    assert_error(client.get("/api/v3/files/" + "1" * 64 + "/download"), 404, "NotFoundError")


def test_upload_url_accepts_the_same_multipart(client: TestClient) -> None:
    url = client.get("/api/v3/files/upload_url").json()["data"]
    assert url.startswith("http://kinfile.test/api/v3/files/upload/")
    data = (FOUNDATION / "testxslt.js_").read_bytes()
    r = client.post(url, files={"file": ("x.js", data)})
    assert r.status_code == 200 and r.json()["data"]["type"] == "analysis"
    assert_error(
        client.post("/api/v3/files/upload/forged.token", files={"file": ("x", data)}),
        400,
        "InvalidArgumentError",
    )


def test_submissions_relationship_pagination(client: TestClient) -> None:
    data = (FOUNDATION / "lab-protocol_v5.rtf_").read_bytes()
    for i in range(3):
        upload(client, f"name{i}.rtf", data)
    sha = hashlib.sha256(data).hexdigest()
    seen: list[str] = []
    url = f"/api/v3/files/{sha}/submissions?limit=2"
    pages = 0
    while url:
        body = client.get(url).json()
        pages += 1
        assert body["data"], "a page with a cursor is never empty"
        for item in body["data"]:
            assert_wire_rules(item)
            assert item["type"] == "submission"
            seen.append(item["attributes"]["name"])
        nxt = body["links"].get("next")
        if nxt:
            assert nxt.startswith("http://kinfile.test/api/v3/files/")
            assert "limit=2" in nxt and "cursor=" in nxt
            assert body["meta"]["cursor"]
        else:
            assert "cursor" not in body.get("meta", {})
        url = nxt.replace("http://kinfile.test", "") if nxt else ""
    assert pages == 2
    assert sorted(seen) == ["name0.rtf", "name1.rtf", "name2.rtf"]
    desc = client.get(f"/api/v3/files/{sha}/relationships/submissions").json()
    assert all(set(d) <= {"type", "id", "context_attributes"} for d in desc["data"])
    obj = client.get(f"/api/v3/files/{sha}?relationships=submissions").json()["data"]
    block = obj["relationships"]["submissions"]
    assert len(block["data"]) == 3 and block["links"]["related"].endswith("/submissions")
    assert_error(client.get(f"/api/v3/files/{sha}/no_such_rel"), 404, "NotFoundError")
    assert_error(client.get(f"/api/v3/files/{sha}/submissions?cursor=tampered"), 400, "InvalidArgumentError")
    assert_error(client.get(f"/api/v3/files/{sha}/submissions?limit=abc"), 400, "InvalidArgumentError")


def test_reanalyse_and_metadata(client: TestClient) -> None:
    data = (FOUNDATION / "meeting-minutes_v2.doc_").read_bytes()
    upload(client, "m.doc", data)
    sha = hashlib.sha256(data).hexdigest()
    r = client.post(f"/api/v3/files/{sha}/analyse")
    assert r.status_code == 200
    ident = r.json()["data"]["id"]
    assert client.get(f"/api/v3/analyses/{ident}").json()["data"]["attributes"]["status"] == "completed"
    assert client.get(f"/api/v3/files/{sha}").json()["data"]["attributes"]["times_submitted"] == 1
    meta = client.get("/api/v3/metadata").json()["data"]
    names = {r["name"] for r in meta["relationships"]["file"]}
    assert {"submissions", "bundled_files", "compressed_parents"} <= names


def test_bad_uploads(client: TestClient) -> None:
    assert_error(client.post("/api/v3/files", files={"file": ("empty", b"")}), 400, "BadRequestError")
    assert_error(client.post("/api/v3/files", data={"other": "x"}), 400, "BadRequestError")
    assert_error(client.post("/api/v3/files", content=b"not multipart"), 400, "BadRequestError")
    bad = b'--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc'  # no end
    r = client.post(
        "/api/v3/files", content=bad, headers={"content-type": "multipart/form-data; boundary=XYZ"}
    )
    assert r.status_code == 400 and "error" in r.json()
    # the server keeps serving
    assert client.get("/api/v3/metadata").status_code == 200


def test_upload_size_limit(tmp_path: Any) -> None:
    settings = load_settings({"home": str(tmp_path / "h"), "max_upload_size": "4kb"}, env={})
    client, _ = make_client(settings)
    big = b"A" * (2 * 1024 * 1024)
    assert_error(client.post("/api/v3/files", files={"file": ("big", big)}), 413, "BadRequestError")
    small_but_over = b"B" * 5000
    assert_error(client.post("/api/v3/files", files={"file": ("b", small_but_over)}), 413, "BadRequestError")
    assert client.post("/api/v3/files", files={"file": ("ok", b"C" * 1000)}).status_code == 200


def _zip(members: dict[str, bytes], password: bytes | None = None) -> bytes:
    from tests.api.zipcrypto import encrypted_zip

    if password:
        return encrypted_zip(members, password)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_password_zip_upload(client: TestClient) -> None:
    inner = (FOUNDATION / "testxslt.js_").read_bytes()
    good = _zip({"sample.js": inner}, b"infected")
    r = client.post("/api/v3/files", files={"file": ("s.zip", good)}, data={"password": "infected"})
    assert r.status_code == 200, r.text
    obj = client.get(f"/api/v3/files/{hashlib.sha256(inner).hexdigest()}").json()["data"]
    assert obj["attributes"]["names"] == ["sample.js"]
    assert_error(
        client.post("/api/v3/files", files={"file": ("s.zip", good)}, data={"password": "wrong"}),
        400,
        "BadRequestError",
    )
    two = _zip({"a": b"1" * 100, "b": b"2" * 100}, b"pw")
    assert_error(
        client.post("/api/v3/files", files={"file": ("t.zip", two)}, data={"password": "pw"}),
        400,
        "BadRequestError",
    )
    assert_error(
        client.post("/api/v3/files", files={"file": ("n.zip", inner)}, data={"password": "pw"}),
        400,
        "BadRequestError",
    )


def test_concurrent_uploads_of_the_same_file(client: TestClient) -> None:
    data = (FOUNDATION / "libthread_db.so.1_").read_bytes()
    codes: list[int] = []

    def go(i: int) -> None:
        codes.append(client.post("/api/v3/files", files={"file": (f"c{i}", data)}).status_code)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 6
    attrs = client.get(f"/api/v3/files/{hashlib.sha256(data).hexdigest()}").json()["data"]["attributes"]
    assert attrs["times_submitted"] == 6
