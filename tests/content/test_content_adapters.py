"""content: through the API (vt-py's wire form, snippets, errors, the server's indexer, DELETE)
and the CLI (search, index status/update/compact/rebuild, delete)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from click.testing import CliRunner
from fastapi.testclient import TestClient

from kinfile.api.app import create_app
from kinfile.cli import main
from kinfile.services import Services
from kinfile.settings import Settings, load_settings
from tests.conftest import DATA

PE = DATA / "pe"
DOS_STUB = "This program cannot be run in DOS mode"


def _client(settings: Settings) -> tuple[TestClient, Services]:
    services = Services(settings)
    client = TestClient(create_app(settings, services), base_url="http://kinfile.test")
    client.headers["x-apikey"] = services.store.create_api_key("tester")
    return client, services


def test_api_content_search_snippets_indexer_and_delete(backend_settings: Settings) -> None:
    settings = load_settings({**backend_settings.as_dict(), "secret_key": "", "content_index_interval": 0.2})
    client, services = _client(settings)
    with client:  # the lifespan starts the content indexer
        samples = sorted(PE.glob("*_"))[:4]
        for path in samples:
            r = client.post("/api/v3/files", files={"file": (path.name, path.read_bytes())})
            assert r.status_code == 200, r.text
        r = client.get("/api/v3/intelligence/search", params={"query": f'content:"{DOS_STUB}"', "limit": 2})
        assert r.status_code == 200, r.text
        body = r.json()
        expected = sorted({p for p in samples if DOS_STUB.encode() in p.read_bytes()})
        assert len(body["data"]) == min(2, len(expected))
        first = body["data"][0]
        assert first["type"] == "file" and first["attributes"]["sha256"] == first["id"]
        ctx = first["context_attributes"]
        assert ctx["confidence"] == 1.0 and ctx["match_in_subfile"] is False
        snip = client.get(f"/api/v3/intelligence/search/snippets/{ctx['snippet']}")
        assert snip.status_code == 200
        text = "\n".join(snip.json()["data"])
        assert "\x1cThis program" in text.replace(" ", "") or "\x1c" in text
        bad = client.get("/api/v3/intelligence/search/snippets/not-a-token")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequestError"
        deadline = time.monotonic() + 20  # the server's indexer empties the queue
        while services.content.status()["pending"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert services.content.status()["pending"] == 0
        assert services.content.status()["documents"] >= len(samples)
        for query, code in [
            ('content:"MZ"', "UnselectiveContentQueryError"),
            ('content:"This program" OR type:pe', "UnsupportedContentQueryError"),
            ('content:"This program" name:x', "UnsupportedContentQueryError"),
            ("content:{4D 5A 9}", "InvalidArgumentError"),
        ]:
            r = client.get("/api/v3/intelligence/search", params={"query": query})
            assert r.status_code == 400 and r.json()["error"]["code"] == code, (query, r.text)
        victim = first["id"]
        r = client.delete(f"/api/v3/files/{victim}")
        assert r.status_code == 200 and r.json()["data"][0]["id"] == victim
        assert client.get(f"/api/v3/files/{victim}").status_code == 404
        r = client.get("/api/v3/intelligence/search", params={"query": f'content:"{DOS_STUB}"', "limit": 40})
        assert victim not in {d["id"] for d in r.json()["data"]}
        assert client.delete(f"/api/v3/files/{victim}").status_code == 404


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_index_commands_search_and_delete(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, out, _err = run(home, "--setting", "magika=off", "ingest", str(PE), "--no-progress")
    assert code == 0 and "content index:" in out
    code, out, _err = run(home, "index", "status", "--format", "json")
    status = json.loads(out)
    assert code == 0 and status["pending"] == 0 and status["documents"] > 0
    code, out, _err = run(home, "search", f'content:"{DOS_STUB}"')
    hits = json.loads(out)
    assert code == 0 and hits and all(h["context_attributes"]["confidence"] == 1.0 for h in hits)
    code, out, _err = run(home, "search", f'content:"{DOS_STUB}"', "--format", "table")
    assert code == 0 and out.splitlines()[0].split()[-1] == "match_in_subfile"
    code, out, _err = run(home, "index", "compact")
    assert code == 0 and "merges" in out
    code, out, _err = run(home, "index", "rebuild", "--no-progress")
    assert code == 0 and f"indexed {status['documents']} files" in out
    code, _out, err = run(home, "search", 'content:"MZ"')
    assert code == 2 and "UnselectiveContentQueryError" in err
    victim = hits[0]["sha256"]
    code, out, err = run(home, "delete", victim)
    assert code == 0 and victim in out and "deleted" in err
    code, out, _err = run(home, "search", f'content:"{DOS_STUB}"')
    assert victim not in out
    code, _out, err = run(home, "delete", victim)
    assert code != 0 and "NotFoundError" in err


def test_an_index_of_an_older_format_is_rebuilt(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run(home, "--setting", "magika=off", "ingest", str(PE), "--no-progress")
    (home / "content" / "index.json").write_text('{"format": 1, "partitions": 4}')
    code, out, _err = run(home, "index", "status", "--format", "json")
    assert code == 0 and json.loads(out)["pending"] == json.loads(out)["pending"] > 0
    assert json.loads(out)["documents"] == 0
    code, out, _err = run(home, "index", "update", "--no-progress")
    assert code == 0
    code, out, _err = run(home, "search", f'content:"{DOS_STUB}"')
    assert code == 0 and out.strip()


def test_content_search_on_a_remote_blob_store(tmp_path: Path) -> None:
    """Blobs behind fsspec (memory://, as s3:// would be): indexing, verification and snippets
    read through the filesystem API instead of local paths."""
    from kinfile import search
    from kinfile.content_search import snippet

    settings = load_settings(
        {"home": str(tmp_path / "home"), "blobs": f"memory://kinfile-{tmp_path.name}", "magika": "off"},
        env={},
    )
    services = Services(settings)
    assert services.blobs.local_path("0" * 64) is None
    names = sorted(PE.glob("*_"))[:3]
    for path in names:
        services.submit_bytes(path.read_bytes(), path.name, "test")
    query = f'content:"{DOS_STUB}"'
    before = {h.sha256 for h in search.search(services, query, None, 40).hits}
    assert services.content.update().documents >= len(names)
    page = search.search(services, query, None, 40)
    assert {h.sha256 for h in page.hits} == before and before
    assert "\x1c" in "\n".join(snippet(services, page.hits[0].context["snippet"]))


def test_a_damaged_segment_is_a_clear_error_and_rebuild_repairs_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run(home, "--setting", "magika=off", "ingest", str(PE), "--no-progress")
    segments = sorted((home / "content").rglob("seg-*.kfs"))
    assert segments
    segments[0].write_bytes(b"KFCONT02 truncated")
    code, _out, err = run(home, "search", f'content:"{DOS_STUB}"')
    assert code == 1 and "cannot be read" in err and "kinfile index rebuild" in err
    code, _out, _err = run(home, "index", "rebuild", "--no-progress")
    assert code == 0
    code, out, _err = run(home, "search", f'content:"{DOS_STUB}"')
    assert code == 0 and json.loads(out)
    (home / "content" / "p00" / "manifest.json").write_text("{not json")
    code, _out, err = run(home, "search", f'content:"{DOS_STUB}"')
    assert code == 1 and "kinfile index rebuild" in err
    assert run(home, "index", "rebuild", "--no-progress")[0] == 0
    (home / "content" / "index.json").write_text("[]")  # the root file: reset and queued again
    code, out, _err = run(home, "index", "status", "--format", "json")
    assert code == 0 and json.loads(out)["pending"] > 0
    code, out, _err = run(home, "search", f'content:"{DOS_STUB}"')
    assert code == 0 and json.loads(out)


def test_deleting_an_archive_deletes_sub_files_at_every_depth(tmp_path: Path) -> None:
    """clam.tar.gz holds a tar that holds a file: both levels go with it (the member's only
    container is the tar, deleted in the same call)."""
    from kinfile.storage import content_queue

    home = tmp_path / "home"
    archive = DATA / "archive" / "clam.tar.gz_"
    run(home, "--setting", "magika=off", "ingest", str(archive), "--no-progress")
    services = Services(load_settings({"home": str(home)}, env={}))
    top = hashlib.sha256(archive.read_bytes()).hexdigest()
    below = content_queue.descendants(services.store, top, 3)
    assert len(below) == 2
    assert sorted(services.delete_files([top])) == sorted({top} | below)
    assert all(services.store.get_file(s) is None and not services.blobs.exists(s) for s in {top} | below)
