"""Hostile input: truncated, bit-flipped and count-inflated real PEs never raise and stay bounded."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinfile.formats import pe
from kinfile.formats.common import AnalysisTimeout, Deadline
from kinfile.formats.pe_headers import parse_headers

DATA = Path(__file__).resolve().parents[1] / "data" / "pe"
SEEDS = [(DATA / n).read_bytes() for n in ("w32.exe_", "clam-nsis.exe_", "msvcp140_codecvt_ids.dll_")]
MAX_OUTPUT = 4 << 20


def _resource_root(data: bytes) -> int | None:
    hdr = parse_headers(data)
    rva, _ = hdr.directory(2)
    return hdr.rva_to_offset(rva) if rva else None


def _import_table(data: bytes) -> int | None:
    hdr = parse_headers(data)
    rva, _ = hdr.directory(1)
    return hdr.rva_to_offset(rva) if rva else None


@st.composite
def hostile_pe(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    lfanew = struct.unpack_from("<I", data, 0x3C)[0]
    if draw(st.booleans()):
        struct.pack_into("<H", data, lfanew + 6, draw(st.integers(0, 0xFFFF)))  # NumberOfSections
    root = _resource_root(bytes(data))
    if root is not None and draw(st.booleans()):
        struct.pack_into("<HH", data, root + 12, draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)))
    imports = _import_table(bytes(data))
    if imports is not None and draw(st.booleans()):
        first = bytes(data[imports : imports + 20])
        copies = draw(st.integers(1, 400))
        blob = (first * copies)[: max(0, len(data) - imports)]
        data[imports : imports + len(blob)] = blob  # descriptor table that never terminates
    for _ in range(draw(st.integers(0, 24))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] ^= 1 << draw(st.integers(0, 7))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def _check_bounded(report: dict) -> None:
    text = json.dumps({k: v for k, v in report.items() if k != "children"})  # str-only, no bytes
    assert len(text) < MAX_OUTPUT
    info = report.get("pe_info", {})
    for key in (
        "sections",
        "import_list",
        "exports",
        "resource_details",
        "debug",
        "compiler_product_versions",
    ):
        assert len(info.get(key, [])) <= 256
    for entry in info.get("import_list", []):
        assert len(entry["imported_functions"]) <= 256
    assert len(report["anomalies"]) <= 64
    assert sum(len(c["data"]) for c in report["children"]) <= 64 * (len(text) + (64 << 20))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_pe())
def test_hostile_pe_never_raises(data: bytes) -> None:
    start = time.monotonic()
    try:
        report = pe.analyse(data, Deadline(2.0))
    except AnalysisTimeout:
        report = None
    assert time.monotonic() - start < 3.0
    if report is not None:
        _check_bounded(report)


def test_inflated_counts_stay_bounded() -> None:
    data = bytearray(SEEDS[0])
    lfanew = struct.unpack_from("<I", data, 0x3C)[0]
    struct.pack_into("<H", data, lfanew + 6, 0xFFFF)
    root = _resource_root(SEEDS[0])
    assert root is not None
    struct.pack_into("<HH", data, root + 12, 0xFFFF, 0xFFFF)
    report = pe.analyse(bytes(data), Deadline(2.0))
    _check_bounded(report)
    assert any("NumberOfSections" in a for a in report["anomalies"])
