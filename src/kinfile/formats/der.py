"""A tiny, bounds-checked DER reader for Authenticode PKCS#7 blobs.

Enough to walk ``ContentInfo``/``SignedData``, pull the ``SpcIndirectDataContent`` digest and the
signing/timestamp times. Never trusts a length: every node is clipped to its parent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

MAX_NODES = 20000

OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_SPC_INDIRECT_DATA = "1.3.6.1.4.1.311.2.1.4"
OID_SIGNING_TIME = "1.2.840.113549.1.9.5"
OID_COUNTER_SIGNATURE = "1.2.840.113549.1.9.6"
OID_MS_TIMESTAMP = "1.3.6.1.4.1.311.3.3.1"
OID_TST_INFO = "1.2.840.113549.1.9.16.1.4"
HASH_OIDS = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    "1.2.840.113549.2.5": "md5",
}


class DerError(ValueError):
    pass


@dataclass(frozen=True)
class Node:
    data: bytes
    tag: int
    start: int  # offset of the value
    end: int  # end of the value (exclusive)

    @property
    def value(self) -> bytes:
        return self.data[self.start : self.end]

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)

    def children(self) -> list[Node]:
        out = []
        pos = self.start
        while pos < self.end:
            node = read_node(self.data, pos, self.end)
            out.append(node)
            if len(out) > MAX_NODES:
                raise DerError("too many DER nodes")
            pos = node.end
        return out

    def child(self, index: int) -> Node:
        kids = self.children()
        if index >= len(kids):
            raise DerError("missing DER child")
        return kids[index]

    def oid(self) -> str:
        if self.tag != 0x06:
            raise DerError("not an OID")
        return decode_oid(self.value)


def read_node(data: bytes, pos: int, limit: int | None = None) -> Node:
    limit = len(data) if limit is None else min(limit, len(data))
    if pos + 2 > limit:
        raise DerError("truncated DER header")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers unsupported")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > limit:
            raise DerError("bad DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > limit:
        raise DerError("DER value past its parent")
    return Node(data, tag, pos, pos + length)


def decode_oid(raw: bytes) -> str:
    if not raw:
        raise DerError("empty OID")
    parts = [raw[0] // 40, raw[0] % 40] if raw[0] < 80 else [2, raw[0] - 80]
    val = 0
    for b in raw[1:]:
        val = (val << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(val)
            val = 0
    return ".".join(map(str, parts))


def decode_time(node: Node) -> dt.datetime | None:
    text = node.value.decode("ascii", "replace")
    try:
        if node.tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
            t = dt.datetime.strptime(text[:12], "%y%m%d%H%M%S")
        elif node.tag == 0x18:  # GeneralizedTime YYYYMMDDHHMMSS[.fff]Z
            t = dt.datetime.strptime(text[:14], "%Y%m%d%H%M%S")
        else:
            return None
    except ValueError:
        return None
    return t.replace(tzinfo=dt.UTC)


def signed_data(pkcs7: bytes) -> Node:
    """The ``SignedData`` SEQUENCE inside a PKCS#7 ``ContentInfo``."""
    content_info = read_node(pkcs7, 0)
    if content_info.child(0).oid() != OID_SIGNED_DATA:
        raise DerError("not a PKCS#7 SignedData")
    return content_info.child(1).child(0)


def spc_indirect_digest(pkcs7: bytes) -> tuple[str, bytes]:
    """(hash name, digest) of ``SpcIndirectDataContent.messageDigest`` (the authentihash)."""
    sd = signed_data(pkcs7)
    encap = sd.child(2)
    if encap.child(0).oid() != OID_SPC_INDIRECT_DATA:
        raise DerError("content is not SpcIndirectDataContent")
    spc = encap.child(1).child(0)
    digest_info = spc.child(1)
    algo = digest_info.child(0).child(0).oid()
    return HASH_OIDS.get(algo, algo), digest_info.child(1).value


def _attributes(signer_info: Node, implicit_tag: int) -> dict[str, list[Node]]:
    out: dict[str, list[Node]] = {}
    for part in signer_info.children():
        if part.tag == implicit_tag:
            for attr in part.children():
                kids = attr.children()
                if len(kids) == 2 and kids[0].tag == 0x06:
                    out.setdefault(kids[0].oid(), []).extend(kids[1].children())
    return out


def _tst_gen_time(token: Node) -> dt.datetime | None:
    sd = token.child(1).child(0)
    encap = sd.child(2)
    if encap.child(0).oid() != OID_TST_INFO:
        return None
    octets = encap.child(1).child(0)
    tst = read_node(octets.data, octets.start, octets.end)
    for part in tst.children():
        if part.tag == 0x18:
            return decode_time(part)
    return None


def signing_time(pkcs7: bytes) -> dt.datetime | None:
    """Time from the counter-signature or RFC 3161 timestamp, else the signer's signingTime."""
    sd = signed_data(pkcs7)
    signer_infos = [c for c in sd.children() if c.tag == 0x31]
    if not signer_infos or not signer_infos[-1].children():
        return None
    signer = signer_infos[-1].child(0)
    unauth = _attributes(signer, 0xA1)
    for counter in unauth.get(OID_COUNTER_SIGNATURE, []):
        for t in _attributes(counter, 0xA0).get(OID_SIGNING_TIME, []):
            when = decode_time(t)
            if when:
                return when
    for token in unauth.get(OID_MS_TIMESTAMP, []):
        when = _tst_gen_time(token)
        if when:
            return when
    for t in _attributes(signer, 0xA0).get(OID_SIGNING_TIME, []):
        when = decode_time(t)
        if when:
            return when
    return None
