"""The official VirusTotal client (vt-py) against a live kinfile server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
import vt

from kinfile.api.app import create_app
from kinfile.services import Services
from kinfile.settings import load_settings
from tests.conftest import DATA, FOUNDATION


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    home = tmp_path_factory.mktemp("vt-home")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = load_settings({"home": str(home), "port": port}, env={})
    services = Services(settings)
    key = services.store.create_api_key("vt-py")
    config = uvicorn.Config(create_app(settings, services), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", key
    srv.should_exit = True
    thread.join(10)


def test_scan_file_waits_without_sleeping(server: tuple[str, str]) -> None:
    host, key = server
    data = (FOUNDATION / "wmasf.dll_").read_bytes()
    with vt.Client(key, host=host) as client:
        started = time.monotonic()
        analysis = client.scan_file(io.BytesIO(data), wait_for_completion=True)
        assert time.monotonic() - started < 10, "the first poll must already be completed"
        assert analysis.status == "completed"
        sha = hashlib.sha256(data).hexdigest()
        for h in (hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(), sha):
            obj = client.get_object("/files/{}", h)
            assert obj.id == sha and obj.type == "file"
            assert obj.size == len(data)
            assert obj.type_tag == "pedll"
            assert obj.first_submission_date.year >= 2024  # vt-py converts *_date to datetime
        out = io.BytesIO()
        client.download_file(sha, out)
        assert out.getvalue() == data


def test_iterator_over_a_relationship_in_small_batches(server: tuple[str, str], tmp_path: Path) -> None:
    host, key = server
    data = (FOUNDATION / "testxslt.js_").read_bytes()
    with vt.Client(key, host=host) as client:
        for i in range(5):
            f = tmp_path / f"sample{i}.js"
            f.write_bytes(data)
            with open(f, "rb") as fh:
                client.scan_file(fh)
        sha = hashlib.sha256(data).hexdigest()
        items = list(client.iterator(f"/files/{sha}/submissions", batch_size=2))
        assert len(items) == 5
        assert sorted(i.name for i in items) == [f"sample{i}.js" for i in range(5)]
        assert len({i.id for i in items}) == 5
        assert list(client.iterator(f"/files/{sha}/submissions", batch_size=2, limit=3)).__len__() == 3


def test_api_errors(server: tuple[str, str]) -> None:
    host, key = server
    with vt.Client(key, host=host) as client:
        with pytest.raises(vt.APIError) as err:
            client.get_object("/files/{}", "0" * 64)
        assert err.value.code == "NotFoundError"
    with vt.Client("wrong-key", host=host) as client:
        with pytest.raises(vt.APIError) as err:
            client.get_object("/files/{}", "0" * 64)
        assert err.value.code == "WrongCredentialsError"


def test_content_search_with_vt_py(server: tuple[str, str]) -> None:
    """VTGrep through vt-py: the iterator follows the content cursor in small batches, hits carry
    context attributes, the snippet endpoint answers, bad queries are VT errors."""
    host, key = server
    samples = sorted(p for p in (DATA / "pe").iterdir() if p.name.endswith("_"))
    stub = b"This program cannot be run in DOS mode"
    expected = {hashlib.sha256(p.read_bytes()).hexdigest() for p in samples if stub in p.read_bytes()}
    assert len(expected) >= 3
    with vt.Client(key, host=host) as client:
        for path in samples:
            with open(path, "rb") as fh:
                client.scan_file(fh)
        query = 'content:"This program cannot be run in DOS mode"'
        found = list(client.iterator("/intelligence/search", params={"query": query}, batch_size=2))
        assert {obj.id for obj in found} >= expected
        assert [obj.id for obj in found] == sorted(obj.id for obj in found)
        context = found[0].context_attributes
        assert context["confidence"] == 1.0 and isinstance(context["match_in_subfile"], bool)
        snippet = client.get_json(f"/intelligence/search/snippets/{context['snippet']}")
        assert "\x1c" in snippet["data"][0] and "\x1d" in snippet["data"][0]
        for bad, code in [
            ('content:"MZ"', "UnselectiveContentQueryError"),
            ("content:{4D 5}", "InvalidArgumentError"),
        ]:
            with pytest.raises(vt.APIError) as err:
                list(client.iterator("/intelligence/search", params={"query": bad}))
            assert err.value.code == code
