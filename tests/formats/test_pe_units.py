"""Unit tests of the PE helper modules: icon decoding and dhash, Rich strings, languages, DER."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from kinfile.formats import der, pe_icon, rich
from kinfile.formats.pe_headers import parse_headers
from kinfile.formats.pe_resources import language_name, sniff, walk_resources
from kinfile.formats.pe_signature import certificate_blob, format_date

DATA = Path(__file__).resolve().parents[1] / "data" / "pe"


def _png(width: int, height: int, rows: list[bytes], ctype: int = 0) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, ctype, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def test_dhash_bit_convention() -> None:
    ramp = (16, 8, [float(x * 10) for _ in range(8) for x in range(16)])
    assert pe_icon.dhash(ramp) == "ffffffffffffffff"  # brighter to the right: every bit set
    flat = (16, 8, [7.0] * 128)
    assert pe_icon.dhash(flat) == "0000000000000000"


def test_png_decoder_handles_every_filter() -> None:
    width = 12
    raw_rows = [bytes((x * 20 + y) % 256 for x in range(width)) for y in range(5)]
    filtered = []
    prev = bytes(width)
    for ftype, row in enumerate(raw_rows):  # filters 0..4, encoded by hand
        if ftype == 0:
            enc = row
        elif ftype == 1:
            enc = bytes((row[i] - (row[i - 1] if i else 0)) % 256 for i in range(width))
        elif ftype == 2:
            enc = bytes((row[i] - prev[i]) % 256 for i in range(width))
        elif ftype == 3:
            enc = bytes((row[i] - (((row[i - 1] if i else 0) + prev[i]) >> 1)) % 256 for i in range(width))
        else:
            out = []
            for i in range(width):
                a, b, c = (row[i - 1] if i else 0), prev[i], (prev[i - 1] if i else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                out.append((row[i] - pred) % 256)
            enc = bytes(out)
        filtered.append(bytes([ftype]) + enc)
        prev = row
    decoded = pe_icon.decode_png(_png(width, 5, filtered))
    assert decoded is not None
    assert decoded[2] == [float(v) for row in raw_rows for v in row]


def test_dib_icon_decodes_from_real_file() -> None:
    data = (DATA / "w32.exe_").read_bytes()
    leaves, _ = walk_resources(parse_headers(data))
    dibs = [
        leaf.data for leaf in leaves if leaf.type_name == "RT_ICON" and not leaf.data.startswith(b"\x89PNG")
    ]
    width, height, pixels = pe_icon.decode_dib(dibs[0])  # type: ignore[misc]
    assert width == height and len(pixels) == width * height
    assert all(0.0 <= p <= 255.0 for p in pixels)


def test_rich_descriptions() -> None:
    assert rich.describe_entry(0x84, 30729, 1) == "[C++] VS2008 SP1 build 30729 count=1"
    assert rich.describe_entry(0x93, 30729, 25) == "[IMP] VS2008 SP1 build 30729 count=25"
    assert rich.describe_entry(1, 0, 323) == "[---] Unmarked objects count=323"
    assert rich.describe_entry(0x105, 26706, 62) == "id: 0x105, version: 26706 count=62"


def test_language_names() -> None:
    assert language_name(0x0409) == "ENGLISH US"
    assert language_name(0x0000) == "NEUTRAL"
    assert language_name(0x0804) == "CHINESE SIMPLIFIED"
    assert language_name(0x0419) == "RUSSIAN"


def test_sniff() -> None:
    assert sniff(b"PK\x03\x04rest") == ("ZIP", True)
    assert sniff(b"\0\0\1\0\1\0") == ("ICO", False)
    assert sniff(b"\x89PNG\r\n\x1a\n") == ("PNG", False)
    assert sniff(b"random bytes") == ("unknown", False)


def test_der_digest_and_signing_time() -> None:
    data = (DATA / "msvcp140_codecvt_ids.dll_").read_bytes()
    blob = certificate_blob(parse_headers(data))
    assert blob is not None
    algo, digest = der.spc_indirect_digest(blob)
    assert algo == "sha256" and digest.hex().startswith("40551f22")
    when = der.signing_time(blob)
    assert when is not None and format_date(when) == "10:29 PM 6/10/2025"


def test_der_rejects_lengths_past_parent() -> None:
    bad = bytes([0x30, 0x84, 0x7F, 0xFF, 0xFF, 0xFF, 0x02, 0x01, 0x00])
    try:
        der.read_node(bad, 0)
    except der.DerError:
        pass
    else:  # pragma: no cover
        raise AssertionError("oversized DER length accepted")
