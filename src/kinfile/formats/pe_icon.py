"""``main_icon``: the first RT_GROUP_ICON's best icon, with a difference hash (dhash).

* ``raw_md5``: md5 of the RT_ICON resource bytes of the group's best entry (largest area, then
  deepest colour).
* ``dhash``: 64-bit difference hash as 16 hex digits: the image is converted to grey
  (ITU-R 601 luma, like Pillow's ``convert("L")``), box-averaged down to 9x8 and each bit says
  whether a pixel is brighter than its left neighbour (row-major, most significant bit first),
  i.e. the ``imagehash.dhash`` convention. Pillow is not a dependency, so the decoders are ours:
  uncompressed DIB icons (1/4/8/24/32 bpp) and non-interlaced PNG. The hash is computed on the
  largest DIB entry of the group (cheap to decode); a PNG-only group is decoded when it is at most
  :data:`MAX_PNG_PIXELS`. Resampling differs from Pillow's Lanczos filter, so the hash is close
  to, not bit-identical with, VirusTotal's.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import zlib
from typing import Any

from kinfile.formats.pe_resources import ResourceLeaf

logger = logging.getLogger(__name__)

MAX_DIB_PIXELS = 256 * 256
MAX_PNG_PIXELS = 128 * 128
_GROUP_ENTRY = struct.Struct("<BBBBHHIH")

Gray = tuple[int, int, list[float]]  # width, height, row-major luma values (top row first)


def _group_entries(group: bytes) -> list[tuple[int, int, int, int]]:
    """(area, bitcount, size, icon id) per GRPICONDIRENTRY."""
    if len(group) < 6:
        return []
    _, kind, count = struct.unpack_from("<HHH", group, 0)
    out = []
    for i in range(min(count, 256)):
        off = 6 + i * _GROUP_ENTRY.size
        if off + _GROUP_ENTRY.size > len(group):
            break
        w, h, _, _, _, bits, size, icon_id = _GROUP_ENTRY.unpack_from(group, off)
        out.append(((w or 256) * (h or 256), bits, size, icon_id))
    return out


def main_icon(leaves: list[ResourceLeaf]) -> dict[str, Any] | None:
    group = next((leaf for leaf in leaves if leaf.type_name == "RT_GROUP_ICON"), None)
    if group is None:
        return None
    icons = {leaf.name: leaf.data for leaf in leaves if leaf.type_name == "RT_ICON" and leaf.data}
    entries = [(a, b, s, i) for a, b, s, i in _group_entries(group.data) if str(i) in icons]
    if not entries:
        return None
    best = max(entries, key=lambda e: (e[0], e[1]))
    raw = icons[str(best[3])]
    out: dict[str, Any] = {"raw_md5": hashlib.md5(raw).hexdigest()}
    gray = None
    for _, _, _, icon_id in sorted(entries, key=lambda e: (e[0], e[1]), reverse=True):
        blob = icons[str(icon_id)]
        if not blob.startswith(b"\x89PNG"):
            gray = decode_dib(blob)
            if gray:
                break
    if gray is None and raw.startswith(b"\x89PNG"):
        gray = decode_png(raw)
    if gray is not None:
        out["dhash"] = dhash(gray)
    return out


def _luma(r: int, g: int, b: int) -> float:
    return (r * 299 + g * 587 + b * 114) / 1000


def decode_dib(data: bytes) -> Gray | None:
    """Decode an uncompressed icon DIB (XOR bitmap only; the AND mask is ignored)."""
    if len(data) < 40:
        return None
    hsize, width, height, _, bits, compression, _, _, _, clr_used, _ = struct.unpack_from(
        "<IiiHHIIiiII", data, 0
    )
    height //= 2  # icon DIBs store XOR + AND masks
    if hsize < 40 or compression != 0 or width <= 0 or height <= 0 or width * height > MAX_DIB_PIXELS:
        return None
    if bits not in (1, 4, 8, 24, 32):
        return None
    pos = hsize
    palette: list[float] = []
    if bits <= 8:
        n = clr_used or (1 << bits)
        if pos + 4 * n > len(data):
            return None
        palette = [_luma(data[pos + 4 * i + 2], data[pos + 4 * i + 1], data[pos + 4 * i]) for i in range(n)]
        pos += 4 * n
    stride = ((width * bits + 31) // 32) * 4
    if pos + stride * height > len(data):
        return None
    rows: list[list[float]] = []
    for y in range(height):
        row = data[pos + y * stride : pos + (y + 1) * stride]
        if bits == 32 or bits == 24:
            step = bits // 8
            rows.append([_luma(row[x * step + 2], row[x * step + 1], row[x * step]) for x in range(width)])
        else:
            per_byte = 8 // bits
            mask = (1 << bits) - 1
            vals = []
            for x in range(width):
                byte = row[x // per_byte]
                idx = (byte >> (8 - bits * (x % per_byte + 1))) & mask
                vals.append(palette[idx] if idx < len(palette) else 0.0)
            rows.append(vals)
    rows.reverse()  # bottom-up
    return width, height, [v for r in rows for v in r]


def decode_png(data: bytes) -> Gray | None:
    """Decode a small non-interlaced PNG to grey values."""
    pos, idat, plte = 8, [], b""
    width = height = depth = ctype = interlace = 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR" and len(body) >= 13:
            width, height, depth, ctype, _, _, interlace = struct.unpack_from(">IIBBBBB", body)
        elif kind == b"PLTE":
            plte = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(ctype)
    if not channels or interlace or depth not in (1, 2, 4, 8, 16) or width * height == 0:
        return None
    if width * height > MAX_PNG_PIXELS:
        return None
    bits_pp = channels * depth
    stride = (width * bits_pp + 7) // 8
    bpp = max(1, bits_pp // 8)
    try:
        raw = zlib.decompressobj().decompress(b"".join(idat), (stride + 1) * height)
    except zlib.error:
        return None
    if len(raw) < (stride + 1) * height:
        return None
    prev = bytearray(stride)
    pixels: list[float] = []
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        cur = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        _unfilter(ftype, cur, prev, bpp)
        pixels.extend(_png_row_luma(cur, width, depth, ctype, plte))
        prev = cur
    return width, height, pixels


def _unfilter(ftype: int, cur: bytearray, prev: bytearray, bpp: int) -> None:
    n = len(cur)
    if ftype == 1:
        for i in range(bpp, n):
            cur[i] = (cur[i] + cur[i - bpp]) & 0xFF
    elif ftype == 2:
        for i in range(n):
            cur[i] = (cur[i] + prev[i]) & 0xFF
    elif ftype == 3:
        for i in range(n):
            left = cur[i - bpp] if i >= bpp else 0
            cur[i] = (cur[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif ftype == 4:
        for i in range(n):
            a = cur[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[i] = (cur[i] + pred) & 0xFF


def _png_row_luma(row: bytearray, width: int, depth: int, ctype: int, plte: bytes) -> list[float]:
    if depth < 8:
        per_byte, mask = 8 // depth, (1 << depth) - 1
        samples = [(row[x // per_byte] >> (8 - depth * (x % per_byte + 1))) & mask for x in range(width)]
        if ctype == 3:
            return [_palette_luma(plte, s) for s in samples]
        scale = 255 / mask
        return [s * scale for s in samples]
    step = 2 if depth == 16 else 1  # 16-bit: take the high byte
    ch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    out = []
    for x in range(width):
        base = x * ch * step
        if ctype in (0, 4):
            out.append(float(row[base]))
        elif ctype == 3:
            out.append(_palette_luma(plte, row[base]))
        else:
            out.append(_luma(row[base], row[base + step], row[base + 2 * step]))
    return out


def _palette_luma(plte: bytes, idx: int) -> float:
    if 3 * idx + 3 > len(plte):
        return 0.0
    return _luma(plte[3 * idx], plte[3 * idx + 1], plte[3 * idx + 2])


def dhash(gray: Gray) -> str:
    """9x8 box-averaged difference hash, 16 hex digits."""
    width, height, pix = gray
    cells: list[list[float]] = []
    for ty in range(8):
        y0 = ty * height // 8
        y1 = max(y0 + 1, (ty + 1) * height // 8)
        row = []
        for tx in range(9):
            x0 = tx * width // 9
            x1 = max(x0 + 1, (tx + 1) * width // 9)
            total = 0.0
            for y in range(y0, min(y1, height)):
                base = y * width
                total += sum(pix[base + x0 : base + min(x1, width)])
            row.append(total / ((y1 - y0) * (x1 - x0)))
        cells.append(row)
    bits = 0
    for row in cells:
        for x in range(8):
            bits = (bits << 1) | (1 if row[x + 1] > row[x] else 0)
    return f"{bits:016x}"
