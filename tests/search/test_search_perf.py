"""Name trigrams and ``file_av_words`` answer exactly like the scans they replace: every access
path of ``name:`` (trigram list, per-row probe, scan) on the real files, the ``engines:`` and
``<engine>:`` semantics, a replaced report's detections, and vt-py paging a live search."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
import vt

from kinfile import search
from kinfile.api.app import create_app
from kinfile.query import fields
from kinfile.services import Services
from kinfile.settings import Settings, load_settings
from tests.search.conftest import Loaded
from tests.search.test_search import BASE, VERDICTS, item, sha

NAME_QUERIES = ["name:clam", "name:*.pdf", "name:CLAM.EXE", "name:.ex", "name:*ss*.r*", "name:rtf_", "clam"]


def found(services: Services, query: str) -> set[str]:
    return {h.sha256 for h in search.iter_hits(services, query)}


@pytest.mark.parametrize("query", NAME_QUERIES)
def test_name_paths_agree_with_the_names(loaded: Loaded, query: str, monkeypatch: pytest.MonkeyPatch) -> None:
    value = query.split(":", 1)[-1].lower()
    if "*" in value:
        import fnmatch

        expected = loaded.where(lambda r: any(fnmatch.fnmatchcase(n.lower(), value) for n in r.names))
    else:
        expected = loaded.where(lambda r: any(value in n.lower() for n in r.names))
    assert found(loaded.services, query) == expected  # the rarest trigram's files (few)
    monkeypatch.setattr(fields, "TRIGRAM_LIST", 1)
    monkeypatch.setattr(fields, "TRIGRAM_DENSE", 1)
    assert found(loaded.services, query) == expected  # frequent: per-row probe (or merged)
    monkeypatch.setattr(fields, "TRIGRAM_DENSE", 10**9)
    assert found(loaded.services, query) == expected  # frequent, rare pattern: merged trigrams
    monkeypatch.setattr(fields, "TRIGRAM", 99)
    assert found(loaded.services, query) == expected  # no trigram: the scan


@pytest.fixture
def verdicts(backend_settings: Settings) -> Iterator[Services]:
    services = Services(backend_settings)
    services.store.save([item(i, BASE + i, **attrs) for i, attrs in enumerate(VERDICTS)])
    yield services
    services.close()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("engines:trojan:win32/zbot.a!mtb", {0}),
        ("engines:win32/zbot*", {0}),  # after a colon of a label, as 0002's "*:<value>" pattern did
        ("engines:*mtb", {0}),
        ("engines:heur*", {0}),
        ("microsoft:trojan*", {0}),
        ("microsoft:*mtb", {0}),
        ("kaspersky:*mtb", set()),
        ("kaspersky:heur:trojan.win32.generic", {0}),
        ("microsoft:heur:trojan.win32.generic", set()),
        ("clamav:win", {1}),
        ("clamav:trojan", {1}),
    ],
)
def test_engine_modifiers(verdicts: Services, query: str, expected: set[int]) -> None:
    assert found(verdicts, query) == {sha(i) for i in expected}


def test_a_replaced_report_replaces_its_detections(verdicts: Services) -> None:
    changed = item(
        0, BASE, last_analysis_results={"Microsoft": {"category": "malicious", "result": "Sinowal"}}
    )
    changed.replace_report = True
    changed.submission = None
    verdicts.store.save([changed])
    # the stored report keeps other runs' results (engines/merge.py); Microsoft's label changed
    assert found(verdicts, "microsoft:sinowal") == {sha(0)}
    assert found(verdicts, "microsoft:zbot") == set()
    record = changed.record
    assert record is not None
    verdicts.store.replace_reports([record])  # the batched path (imports) leaves the same rows
    assert found(verdicts, "microsoft:sinowal") == {sha(0)}
    assert found(verdicts, "microsoft:zbot") == set()


def test_vt_py_pages_an_intelligence_search(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("vt-search")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = load_settings({"home": str(home), "port": port}, env={})
    services = Services(settings)
    services.store.save([item(i, BASE + i) for i in range(7)])
    key = services.store.create_api_key("vt-py")
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, services), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        with vt.Client(key, host=f"http://127.0.0.1:{port}") as client:
            for query in ("type:peexe", "name:file"):
                hits = list(client.iterator("/intelligence/search", params={"query": query}, batch_size=3))
                assert [h.id for h in hits] == [sha(i) for i in reversed(range(7))], query
                assert all(h.type == "file" for h in hits)
            limited = client.iterator(
                "/intelligence/search", params={"query": "name:file"}, batch_size=2, limit=5
            )
            assert len(list(limited)) == 5
    finally:
        server.should_exit = True
        thread.join(10)
        services.close()
