"""The analysis pipeline: children within limits, contained analyser failures, the whole corpus."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import pytest

from kinfile.analysis import pipeline
from kinfile.analysis.pipeline import Limits, analyse_bytes
from kinfile.formats.common import AnalysisTimeout
from tests.conftest import CORPUS, FOUNDATION


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_archive_members_become_analysed_children() -> None:
    dll = (FOUNDATION / "wmasf.dll_").read_bytes()
    pdf = (FOUNDATION / "imagemagick-lzw.pdf_").read_bytes()
    node = analyse_bytes(zip_of({"bin/wmasf.dll": dll, "doc.pdf": pdf}))
    assert node.record.attributes["type_tag"] == "zip"
    kids = {child["name"]: analysed for child, analysed in node.children}
    assert set(kids) == {"bin/wmasf.dll", "doc.pdf"}
    assert {c["relationship"] for c, _ in node.children} == {"bundled_files"}
    assert kids["bin/wmasf.dll"].record.attributes["type_tag"] == "pedll"
    assert kids["bin/wmasf.dll"].data == dll
    assert kids["doc.pdf"].record.attributes["type_tag"] == "pdf"


def test_depth_limit_stops_recursive_archives() -> None:
    data = b"innermost text file " * 10
    for level in range(5):
        data = zip_of({f"level{level}.zip" if level else "a.txt": data})
    node = analyse_bytes(data, limits=Limits(max_depth=2))
    depth = 0
    while node.children:
        node = node.children[0][1]
        depth += 1
    assert depth == 2
    assert any("depth limit" in a for a in node.record.attributes["anomalies"])


def test_child_count_and_byte_budgets() -> None:
    members = {f"m{i}.txt": f"member number {i} ".encode() * 20 for i in range(20)}
    node = analyse_bytes(zip_of(members), limits=Limits(max_children=5))
    assert len(node.children) == 5
    assert any("extraction limits" in a for a in node.record.attributes["anomalies"])
    node = analyse_bytes(zip_of(members), limits=Limits(max_child_bytes=1000))
    assert sum(len(a.data) for _, a in node.children) <= 1000


def test_analyser_failures_are_anomalies(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(data: bytes, deadline: object = None) -> dict:
        raise RuntimeError("boom")

    def slow(data: bytes, deadline: object = None) -> dict:
        raise AnalysisTimeout("budget")

    pe = (FOUNDATION / "wmasf.dll_").read_bytes()
    monkeypatch.setattr(pipeline, "analyser_for", lambda fmt: broken)
    attrs = analyse_bytes(pe).record.attributes
    assert attrs["type_tag"] == "pedll" and attrs["md5"]
    assert any("analyser error: RuntimeError: boom" in a for a in attrs["anomalies"])
    monkeypatch.setattr(pipeline, "analyser_for", lambda fmt: slow)
    attrs = analyse_bytes(pe).record.attributes
    assert any("time budget" in a for a in attrs["anomalies"])


def test_a_submission_has_one_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sub-files share the submission's time budget: N slow sub-files no longer take N times the
    per-file timeout (found by fuzzing: three overlapping-member ZIPs in a ZIP took 30 s)."""
    real = pipeline.analyser_for

    def slow_pe(fmt: str | None) -> object:
        analyser = real(fmt)
        if fmt != "pe" or analyser is None:
            return analyser

        def slow(data: bytes, deadline: object = None) -> dict:
            time.sleep(0.25)
            return analyser(data, deadline)  # type: ignore[no-any-return, arg-type]

        return slow

    monkeypatch.setattr(pipeline, "analyser_for", slow_pe)
    dll = (FOUNDATION / "wmasf.dll_").read_bytes()
    members = {f"m{i}.dll": dll + bytes([i]) for i in range(6)}
    started = time.monotonic()
    node = analyse_bytes(zip_of(members), limits=Limits(timeout=10, submission_timeout=0.6))
    assert time.monotonic() - started < 1.2
    assert 1 <= len(node.children) < 6
    late = [a for a in node.record.attributes["anomalies"] if "time budget ran out" in a]
    budget = "the submission's 0.6 s time budget ran out"
    assert late == [f"{6 - len(node.children)} sub-files not analysed: {budget}"]


def test_zip_bomb_is_bounded() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w") as member:
        chunk = bytes(1 << 20)
        for _ in range(1024):  # 1 GiB of zeros, about 1 MB compressed
            member.write(chunk)
    started = time.monotonic()
    node = analyse_bytes(buf.getvalue())
    assert time.monotonic() - started < 30
    extracted = sum(len(a.data) for _, a in node.children)
    assert extracted < 300 * 1024 * 1024
    assert node.record.attributes.get("anomalies")


@pytest.mark.skipif(not (CORPUS / "files").is_dir(), reason="shared corpus not available")
def test_every_corpus_file_is_analysed_within_two_seconds() -> None:
    slow: list[tuple[str, float]] = []
    for path in sorted((CORPUS / "files").iterdir()):
        data = Path(path).read_bytes()
        started = time.monotonic()
        node = analyse_bytes(data, limits=Limits(timeout=10))
        elapsed = time.monotonic() - started
        json.dumps(node.record.attributes)  # valid JSON
        assert node.record.attributes["sha256"] == path.name
        if elapsed > 2:
            slow.append((path.name, elapsed))
    assert slow == []
