"""``import-vt --jobs``: worker processes prepare and write chunks themselves, in input order
(kinfile/import_parallel.py). The outcome is the one-process import's, on both backends."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kinfile import import_parallel, search
from kinfile.importer import MAX_ERRORS, Importer, ImportSummary
from kinfile.services import Services
from kinfile.settings import Settings, load_settings
from tests.engines.helpers import VT_DIR

BASE = [json.loads(line) for line in (VT_DIR / "av_labels_500.jsonl").read_text().splitlines()]


@pytest.fixture
def services(backend_settings: Settings) -> Iterator[Services]:
    found = Services(backend_settings)
    yield found
    found.store.close()


def _lines(count: int) -> list[str]:
    out = []
    for i in range(count):
        seed = f"p{i}".encode()
        hashes = {
            "md5": hashlib.md5(seed).hexdigest(),
            "sha1": hashlib.sha1(seed).hexdigest(),
            "sha256": hashlib.sha256(seed).hexdigest(),
        }
        out.append(json.dumps({**BASE[i % len(BASE)], **hashes}))
    return out


def _state(services: Services, sha256s: list[str]) -> dict[str, Any]:
    out = {}
    for sha in sha256s:
        attrs = services.file_attributes(services.get_file(sha))
        attrs.pop("last_modification_date")  # the import's own clock
        out[sha] = attrs
    return out


def test_chunks_written_by_workers_equal_a_one_process_import(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small chunks (many worker tasks): errors in line order, a file reported in two chunks is
    created by the first report and enriched by the second (input order), every stored report
    equals the one-process import's."""
    monkeypatch.setattr(import_parallel, "CHUNK", 200)
    lines = _lines(1200)
    first = json.loads(lines[10])
    later = {
        **first,
        "av_labels": [["Kaspersky", "Trojan.Win32.Later.a"]],
        "scan_date": "2030-01-02 03:04:05",
    }
    lines.insert(900, json.dumps(later))  # line 901: the file of line 11, in another chunk
    lines.insert(150, "{oops")  # line 151, first chunk
    lines.insert(700, '{"sha256": "xyz", "av_labels": []}')  # line 701
    summary = Importer(services.store, "av", jobs=2).import_lines(lines)
    assert (summary.lines, summary.reports, summary.created, summary.enriched) == (1203, 1201, 1200, 1)
    assert summary.failed == 2 and [e[1] for e in summary.errors] == [151, 701]
    sha = first["sha256"]
    results = services.file_attributes(services.get_file(sha))["last_analysis_results"]
    assert results["Kaspersky"]["result"] == "Trojan.Win32.Later.a"  # the later report merged last
    hits = search.search(services, f"kaspersky:later sha256:{sha}", None, 10).hits
    assert [h.sha256 for h in hits] == [sha]  # the detection index follows the merged report

    one = Services(load_settings({"home": str(tmp_path / "one")}, env={}))  # SQLite, one process
    try:
        reference = Importer(one.store, "av", jobs=1).import_lines(lines)
        assert reference.as_dict() | {"seconds": 0} == summary.as_dict() | {"seconds": 0}
        picked = [json.loads(lines[i])["sha256"] for i in (0, 10, 499, 1000, 1202)]
        assert _state(one, picked) == _state(services, picked)
    finally:
        one.store.close()


def test_a_failed_chunk_stops_the_import_and_later_chunks_stay_unwritten(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails in a worker reaches the caller; the chunks after it are not written."""
    fork = multiprocessing.get_context("fork")  # the workers inherit the patched writer
    monkeypatch.setattr(import_parallel.multiprocessing, "get_context", lambda: fork)
    monkeypatch.setattr(import_parallel, "CHUNK", 200)
    real = Importer.write_outcomes

    def failing(self: Importer, outcomes: Any, where: str, summary: ImportSummary) -> int:
        outcomes = list(outcomes)
        if any(number == 301 for number, _ in outcomes):  # the third chunk (lines 301-500)
            raise RuntimeError("disk full")
        return real(self, outcomes, where, summary)

    monkeypatch.setattr(Importer, "write_outcomes", failing)
    lines = _lines(1500)
    with pytest.raises(RuntimeError, match="disk full"):
        Importer(services.store, "av", jobs=2).import_lines(lines)
    stored = services.store.known([json.loads(line)["sha256"] for line in lines])
    assert len(stored) == 300  # lines 1-300: the chunks before the failed one
    assert all(json.loads(lines[i])["sha256"] in stored for i in range(300))


def test_turns_pass_in_order_and_an_abort_releases_the_waiting() -> None:
    """The turn counter: a chunk writes only after every earlier one; a failure aborts the rest."""
    context = multiprocessing.get_context()
    turn, abort = context.RawValue("q", 0), context.RawValue("b", 0)
    import_parallel._start(context.Condition(), turn, abort, os.getppid())  # as in a worker
    assert import_parallel._my_turn(0)
    import_parallel._pass_turn(0, failed=False)
    assert turn.value == 1 and import_parallel._my_turn(1)
    import_parallel._pass_turn(2, failed=True)  # chunk 2 failed before its turn
    assert abort.value == 1 and turn.value == 1
    assert not import_parallel._my_turn(3)  # would have waited for chunk 1: released, not written


def test_worker_summaries_add_up_beyond_the_listed_errors() -> None:
    summary = ImportSummary()
    part = ImportSummary(reports=5, created=3, enriched=2)
    for line in range(MAX_ERRORS + 10):
        part.error("in", line, "bad")
    import_parallel._add(summary, part)
    import_parallel._add(summary, ImportSummary(reports=1, created=1))
    assert (summary.reports, summary.created, summary.enriched) == (6, 4, 2)
    assert summary.failed == MAX_ERRORS + 10 and len(summary.errors) == MAX_ERRORS
