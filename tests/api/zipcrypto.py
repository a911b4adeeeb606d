"""Write ZipCrypto (traditional PKWARE) encrypted ZIPs for tests; the stdlib only reads them."""

from __future__ import annotations

import os
import struct
import zlib


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


CRC = _crc_table()


class _Keys:
    def __init__(self, password: bytes) -> None:
        self.k0, self.k1, self.k2 = 0x12345678, 0x23456789, 0x34567890
        for b in password:
            self.update(b)

    def update(self, b: int) -> None:
        self.k0 = (self.k0 >> 8) ^ CRC[(self.k0 ^ b) & 0xFF]
        self.k1 = (self.k1 + (self.k0 & 0xFF)) & 0xFFFFFFFF
        self.k1 = (self.k1 * 134775813 + 1) & 0xFFFFFFFF
        self.k2 = (self.k2 >> 8) ^ CRC[(self.k2 ^ (self.k1 >> 24)) & 0xFF]

    def encrypt(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            t = (self.k2 | 2) & 0xFFFF
            k = ((t * (t ^ 1)) >> 8) & 0xFF
            out.append(b ^ k)
            self.update(b)
        return bytes(out)


def encrypted_zip(members: dict[str, bytes], password: bytes) -> bytes:
    """A ZIP whose members are stored (no compression) and ZipCrypto-encrypted."""
    body = bytearray()
    central = bytearray()
    for name, data in members.items():
        crc = zlib.crc32(data) & 0xFFFFFFFF
        keys = _Keys(password)
        header = os.urandom(11) + bytes([crc >> 24])
        payload = keys.encrypt(header + data)
        fname = name.encode()
        offset = len(body)
        local = struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 1, 0, 0, 0, crc, len(payload), len(data), len(fname), 0
        )
        body += local + fname + payload
        central += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                1,
                0,
                0,
                0,
                crc,
                len(payload),
                len(data),
                len(fname),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + fname
        )
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(body), 0)
    return bytes(body + central + end)
