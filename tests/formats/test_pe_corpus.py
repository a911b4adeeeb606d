"""Corpus-wide PE checks (skipped when /work/shared/corpus is absent).

Every ``pe``/``pe_dotnet`` file in the shared corpus is analysed under a 2 s deadline and checked
against pefile (sections, overlay, Rich hash, imphash, resources, version strings), the
Authenticode digest (signed files) and dnfile (.NET, when installed).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kinfile.formats import pe
from kinfile.formats.common import Deadline

from .pe_oracle import (
    check_authentihash,
    check_dotnet,
    check_imphash,
    check_overlay,
    check_resources,
    check_rich,
    check_sections,
    check_version_info,
    fast_pe,
)

CORPUS = Path("/work/shared/corpus")
pytestmark = pytest.mark.skipif(not (CORPUS / "manifest.jsonl").exists(), reason="shared corpus absent")


@pytest.fixture(scope="module")
def corpus() -> list[tuple[dict, bytes]]:
    out = []
    for line in (CORPUS / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["kind"] in ("pe", "pe_dotnet"):
            out.append((entry, (CORPUS / "files" / entry["sha256"]).read_bytes()))
    return out


@pytest.fixture(scope="module")
def reports(corpus: list[tuple[dict, bytes]]) -> dict[str, dict]:
    pe.analyse(corpus[0][1])  # warm-up: imports LIEF
    out = {}
    start = time.perf_counter()
    for entry, data in corpus:
        t0 = time.perf_counter()
        out[entry["sha256"]] = pe.analyse(data, Deadline(2.0))
        assert time.perf_counter() - t0 < 2.0, entry["name"]
    elapsed = time.perf_counter() - start
    print(f"\nPE analysis: {len(corpus)} files in {elapsed:.2f} s = {len(corpus) / elapsed:.0f} files/s")
    return out


def test_every_pe_analysed_without_failure(
    corpus: list[tuple[dict, bytes]], reports: dict[str, dict]
) -> None:
    assert len(corpus) >= 600
    for entry, _ in corpus:
        report = reports[entry["sha256"]]
        assert "pe_info" in report, entry["name"]
        assert not [a for a in report["anomalies"] if "failed" in a], entry["name"]
        assert report["tags"][0] in ("peexe", "pedll")


def test_pefile_header_oracles(corpus: list[tuple[dict, bytes]], reports: dict[str, dict]) -> None:
    with_imports = 0
    for entry, data in corpus:
        report, oracle = reports[entry["sha256"]], fast_pe(data)
        check_sections(report, oracle)
        check_overlay(report, oracle, data)
        check_rich(report, oracle)
        check_imphash(report, oracle)
        with_imports += bool(report["pe_info"].get("imphash"))
    assert with_imports > 600


def test_resources_and_version_info(corpus: list[tuple[dict, bytes]], reports: dict[str, dict]) -> None:
    for entry, data in corpus:
        check_resources(reports[entry["sha256"]], data)
        check_version_info(reports[entry["sha256"]], data)


def test_authentihash_equals_signed_digest(
    corpus: list[tuple[dict, bytes]], reports: dict[str, dict]
) -> None:
    signed = sum(check_authentihash(reports[e["sha256"]], data) for e, data in corpus)
    assert signed >= 15


def test_dotnet_against_dnfile(corpus: list[tuple[dict, bytes]], reports: dict[str, dict]) -> None:
    pytest.importorskip("dnfile")
    for entry, data in corpus:
        if entry["kind"] == "pe_dotnet":
            check_dotnet(reports[entry["sha256"]], data)


def test_packers_from_manifest(corpus: list[tuple[dict, bytes]], reports: dict[str, dict]) -> None:
    for entry, _ in corpus:
        packers = reports[entry["sha256"]].get("packers", {}).get("kinfile", "")
        if entry["source"].startswith("upx-ucl") or entry.get("variant") == "UPX":
            assert "UPX" in packers, entry["name"]
        if entry["name"] in ("corpus-test-a-setup.exe", "corpus-test-b-setup.exe", "clam-nsis.exe"):
            assert "NSIS" in packers, entry["name"]
