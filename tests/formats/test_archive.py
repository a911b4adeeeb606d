"""Archive analyser on real archives (ClamAV test files) and built-in-test bombs and encryptions."""

from __future__ import annotations

import bz2
import io
import json
import lzma
import os
import struct
import tarfile
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinfile.formats import archive
from kinfile.formats.archive import (
    ArchiveLimitError,
    NotAZipError,
    TooManyMembersError,
    WrongPasswordError,
    extract_single_member,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "archive"
CORPUS = Path("/work/shared/corpus")
CLAM_EXE_SIZE = 544


def corpus_archives() -> list[Path]:
    manifest = CORPUS / "manifest.jsonl"
    if not manifest.exists():
        return []
    rows = (json.loads(line) for line in manifest.read_text().splitlines() if line.strip())
    return [CORPUS / "files" / r["sha256"] for r in rows if r["kind"] == "archive"]


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, payload in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2021, 3, 4, 5, 6, 8)), payload, compress_type=method)
    return buf.getvalue()


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


def zipcrypto_zip(name: str, payload: bytes, password: bytes) -> bytes:
    """A one-member stored ZIP encrypted with traditional PKWARE encryption (ZipCrypto)."""
    table = _crc_table()
    keys = [0x12345678, 0x23456789, 0x34567890]

    def update(byte: int) -> None:
        keys[0] = (keys[0] >> 8) ^ table[(keys[0] ^ byte) & 0xFF]
        keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = (keys[2] >> 8) ^ table[(keys[2] ^ (keys[1] >> 24)) & 0xFF]

    for byte in password:
        update(byte)
    crc = zlib.crc32(payload)
    out = bytearray()
    for byte in os.urandom(11) + bytes([crc >> 24]) + payload:
        temp = (keys[2] | 2) & 0xFFFF
        out.append(byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
        update(byte)
    raw_name = name.encode()
    local = (
        struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 1, 0, 0, 0x21, crc, len(out), len(payload), len(raw_name), 0
        )
        + raw_name
        + bytes(out)
    )
    central = (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            1,
            0,
            0,
            0x21,
            crc,
            len(out),
            len(payload),
            len(raw_name),
            0,
            0,
            0,
            0,
            0,
            0,
        )
        + raw_name
    )
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local), 0)
    return local + central + end


@pytest.mark.parametrize(
    ("name", "kind", "tag"),
    [
        ("clam.zip_", "ZIP", "zip"),
        ("clam.bz2.zip_", "ZIP", "zip"),
        ("clam.cab_", "CAB", "cab"),
        ("clam.newc.cpio_", "CPIO", "cpio"),
    ],
)
def test_real_archives_yield_clam_exe(name: str, kind: str, tag: str) -> None:
    result = archive.analyse((DATA / name).read_bytes())
    info = result["bundle_info"]
    assert info["type"] == kind
    assert info["num_children"] == 1
    assert info["extensions"] == {"exe": 1}
    assert info["file_types"] == {"pe": 1}
    assert info["uncompressed_size"] == CLAM_EXE_SIZE
    (child,) = result["children"]
    assert child["relationship"] == "bundled_files"
    assert child["name"].lower() == "clam.exe"
    assert child["data"][:2] == b"MZ" and len(child["data"]) == CLAM_EXE_SIZE
    assert {tag, "contains-pe"} <= set(result["tags"])


def test_cab_dates_and_zip_dates() -> None:
    cab = archive.analyse((DATA / "clam.cab_").read_bytes())["bundle_info"]
    assert cab["lowest_datetime"] == cab["highest_datetime"] == "2004-09-06 01:37:56"
    cpio = archive.analyse((DATA / "clam.newc.cpio_").read_bytes())["bundle_info"]
    assert cpio["lowest_datetime"] == "2009-07-02 10:52:19"


def test_7z_listing_and_extraction() -> None:
    pytest.importorskip("py7zr")
    result = archive.analyse((DATA / "clam.7z_").read_bytes())
    assert result["bundle_info"]["type"] == "7ZIP"
    assert result["bundle_info"]["lowest_datetime"] == "2009-08-06 17:54:38"
    assert [c["name"] for c in result["children"]] == ["clam.exe"]
    assert "contains-pe" in result["tags"]


def test_tar_gz_is_a_tar_bundle_whose_child_is_the_tar() -> None:
    result = archive.analyse((DATA / "clam.tar.gz_").read_bytes())
    assert result["bundle_info"]["type"] == "GZIP"
    assert result["bundle_info"]["file_types"] == {"tar": 1}
    assert "tar-bundle" in result["tags"]
    (child,) = result["children"]
    inner = archive.analyse(child["data"])
    assert inner["bundle_info"]["type"] == "TAR"
    assert [c["name"] for c in inner["children"]] == ["clam.exe"]


def test_unsupported_methods_and_formats_are_anomalies() -> None:
    imploded = archive.analyse((DATA / "clam.impl.zip_").read_bytes())
    assert imploded["bundle_info"]["num_children"] == 1 and not imploded["children"]
    assert any("compression method" in a for a in imploded["anomalies"])
    assert archive.analyse((DATA / "clam.arj_").read_bytes()) == {
        "anomalies": ["unsupported or unrecognised archive format"]
    }


def test_tar_listing_counts_extensions_types_and_dates() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, payload, mtime in (
            ("bin/tool", b"\x7fELF" + bytes(60), 1_600_000_000),
            ("docs/a.txt", b"hello\n", 1_500_000_000),
            ("docs/b.txt", b"world\n", 1_700_000_000),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(payload), mtime
            tf.addfile(info, io.BytesIO(payload))
        folder = tarfile.TarInfo("docs")
        folder.type = tarfile.DIRTYPE
        tf.addfile(folder)
    result = archive.analyse(buf.getvalue())
    info = result["bundle_info"]
    assert info["type"] == "TAR" and info["num_children"] == 3
    assert info["extensions"] == {"txt": 2}
    assert info["file_types"] == {"text": 2, "elf": 1}
    assert info["lowest_datetime"] == "2017-07-14 02:40:00"
    assert info["highest_datetime"] == "2023-11-14 22:13:20"
    assert "contains-elf" in result["tags"] and "tar" in result["tags"]


@pytest.mark.parametrize("compress", [bz2.compress, lzma.compress], ids=["bzip2", "xz"])
def test_single_stream_compressors(compress) -> None:
    payload = b"#!/bin/sh\necho kinfile\n" * 10
    result = archive.analyse(compress(payload))
    assert result["bundle_info"]["uncompressed_size"] == len(payload)
    assert result["bundle_info"]["beginning"].startswith("#!/bin/sh")
    assert result["children"][0]["data"] == payload


def test_nested_zip_child_is_returned() -> None:
    inner = zip_bytes({"payload.txt": b"inner text"})
    result = archive.analyse(zip_bytes({"inner.zip": inner, "readme.md": b"# hi"}))
    names = {c["name"]: c["data"] for c in result["children"]}
    assert names["inner.zip"] == inner
    assert result["bundle_info"]["file_types"] == {"zip": 1, "text": 1}
    assert archive.analyse(names["inner.zip"])["children"][0]["data"] == b"inner text"


def test_gzip_bomb_is_bounded() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zero = bytes(1 << 20)
    bomb = b"".join(compressor.compress(zero) for _ in range(1024)) + compressor.flush()  # 1 GiB
    started = time.monotonic()
    result = archive.analyse(bomb)
    assert time.monotonic() - started < 5
    assert result["children"] == []
    assert any("limit" in a or "ratio" in a for a in result["anomalies"])


def test_zip_bomb_streamed_member_is_refused() -> None:
    buf = io.BytesIO()
    zero = bytes(1 << 20)
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("zeros.bin", "w", force_zip64=True) as fh,
    ):
        for _ in range(1024):  # 1 GiB of zeros, about 1 MB compressed
            fh.write(zero)
    started = time.monotonic()
    result = archive.analyse(buf.getvalue())
    assert time.monotonic() - started < 5
    assert result["children"] == [] and result["bundle_info"]["uncompressed_size"] == 1 << 30
    assert any("member limit" in a for a in result["anomalies"])
    with pytest.raises(ArchiveLimitError):
        extract_single_member(buf.getvalue(), None)


def test_ratio_cap_stops_a_highly_compressed_member() -> None:
    bomb = zip_bytes({"zeros.bin": bytes(20 << 20)})  # 20 MiB of zeros: ratio ≈ 1000:1
    result = archive.analyse(bomb)
    assert result["children"] == []
    assert any("decompression bomb" in a for a in result["anomalies"])


def test_encrypted_zip_is_tagged_and_not_extracted() -> None:
    data = zipcrypto_zip("sample.exe", b"MZ" + bytes(100), b"infected")
    result = archive.analyse(data)
    assert "encrypted" in result["tags"]
    assert result["children"] == []
    assert result["bundle_info"]["file_types"] == {"encrypted": 1}


def test_extract_single_member() -> None:
    payload = b"MZ" + os.urandom(300)
    data = zipcrypto_zip("sample.exe", payload, b"infected")
    assert extract_single_member(data, b"infected") == ("sample.exe", payload)
    with pytest.raises(WrongPasswordError):
        extract_single_member(data, None)
    with pytest.raises(WrongPasswordError):
        extract_single_member(data, b"not-the-password")
    with pytest.raises(NotAZipError):
        extract_single_member(b"MZ not a zip", b"x")
    with pytest.raises(TooManyMembersError):
        extract_single_member(zip_bytes({"a": b"1", "b": b"2"}), None)
    assert extract_single_member(zip_bytes({"plain.txt": b"text"}), None) == ("plain.txt", b"text")
    assert issubclass(ArchiveLimitError, ValueError)


SAMPLES = [DATA / n for n in ("clam.zip_", "clam.cab_", "clam.tar.gz_", "clam.newc.cpio_", "clam.bz2.zip_")]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(SAMPLES) - 1), cut=st.integers(0, 700))
def test_truncation_never_raises(index: int, cut: int) -> None:
    result = archive.analyse(SAMPLES[index].read_bytes()[:cut])
    assert isinstance(result, dict)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, len(SAMPLES) - 1),
    flips=st.lists(st.tuples(st.integers(0, 620), st.integers(0, 7)), min_size=1, max_size=6),
)
def test_bit_flips_never_raise(index: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(SAMPLES[index].read_bytes())
    for offset, bit in flips:
        if offset < len(data):
            data[offset] ^= 1 << bit
    assert isinstance(archive.analyse(bytes(data)), dict)


@pytest.mark.skipif(not corpus_archives(), reason="shared corpus not available")
def test_corpus_archives_analyse_quickly() -> None:
    for path in corpus_archives():
        started = time.monotonic()
        result = archive.analyse(path.read_bytes())
        assert time.monotonic() - started < 2.0, path.name
        assert isinstance(result, dict)
