"""Authenticode: ``signature_info`` signer/counter-signer fields, ``x509`` and ``verified``.

Certificates, signer chains and times come from our own DER walk of the PKCS#7 blob (see
:mod:`kinfile.formats.der`); LIEF's ``verify_signature()`` gives the integrity verdict (digest and
signature checks; there is no trusted-root store, so "Signed" means "intact", not "trusted").
Dates use sigcheck's rendering, which is what VirusTotal shows (``9:45 PM 5/13/2012``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import struct
from dataclasses import dataclass
from typing import Any

from kinfile.formats import der
from kinfile.formats.pe_headers import PeHeaders

logger = logging.getLogger(__name__)

MAX_CERTS = 64
WIN_CERT_PKCS_SIGNED_DATA = 0x0002

SIG_ALGORITHMS = {
    "1.2.840.113549.1.1.4": "md5RSA",
    "1.2.840.113549.1.1.5": "sha1RSA",
    "1.2.840.113549.1.1.11": "sha256RSA",
    "1.2.840.113549.1.1.12": "sha384RSA",
    "1.2.840.113549.1.1.13": "sha512RSA",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.10045.4.3.2": "sha256ECDSA",
    "1.2.840.10045.4.3.3": "sha384ECDSA",
    "1.2.840.10045.4.3.4": "sha512ECDSA",
    "1.3.14.3.2.29": "sha1RSA",
}
EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "Server Authentication",
    "1.3.6.1.5.5.7.3.2": "Client Authentication",
    "1.3.6.1.5.5.7.3.3": "Code Signing",
    "1.3.6.1.5.5.7.3.4": "Email Protection",
    "1.3.6.1.5.5.7.3.8": "Timestamp Signing",
    "1.3.6.1.4.1.311.10.3.13": "Lifetime Signing",
    "1.3.6.1.4.1.311.10.3.6": "Windows System Component Verification",
    "1.3.6.1.4.1.311.10.3.5": "Windows Hardware Driver Verification",
    "1.3.6.1.4.1.311.61.1.1": "Kernel Mode Code Signing",
}
VERIFY_MESSAGES = {
    "CERT_EXPIRED": "A required certificate is not within its validity period when verifying "
    "against the current system clock or the timestamp in the signed file.",
}
BAD_SIGNATURE_MESSAGE = "The digital signature of the object did not verify."


def format_date(when: dt.datetime) -> str:
    """sigcheck/VirusTotal rendering: ``h:MM AM m/d/YYYY`` (12-hour clock, no zero padding)."""
    hour = when.hour % 12 or 12
    return f"{hour}:{when.minute:02d} {'AM' if when.hour < 12 else 'PM'} {when.month}/{when.day}/{when.year}"


@dataclass
class Cert:
    raw: bytes
    serial: int
    issuer_raw: bytes
    subject_raw: bytes
    subject_cn: str
    issuer_cn: str
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    algorithm: str
    usage: list[str]

    def details(self, at: dt.datetime | None) -> dict[str, Any]:
        when = at or dt.datetime.now(dt.UTC)
        in_time = bool(self.not_before and self.not_after and self.not_before <= when <= self.not_after)
        serial_hex = f"{self.serial:x}"
        serial_hex = ("0" * (len(serial_hex) % 2)) + serial_hex
        return {
            "name": self.subject_cn,
            "status": "Valid"
            if in_time
            else "This certificate or one of the certificates in the certificate chain is not time valid.",
            "valid from": format_date(self.not_before) if self.not_before else "",
            "valid to": format_date(self.not_after) if self.not_after else "",
            "valid usage": ", ".join(self.usage) if self.usage else "All",
            "algorithm": self.algorithm,
            "serial number": " ".join(serial_hex[i : i + 2] for i in range(0, len(serial_hex), 2)).upper(),
            "thumbprint": hashlib.sha1(self.raw).hexdigest().upper(),
            "cert issuer": self.issuer_cn,
        }


def _name_cn(name: der.Node) -> str:
    cn = ""
    for rdn in name.children():
        for atv in rdn.children():
            kids = atv.children()
            if len(kids) == 2 and kids[0].tag == 0x06:
                oid = kids[0].oid()
                text = kids[1].value.decode("utf-16-be" if kids[1].tag == 0x1E else "utf-8", "replace")
                if oid == "2.5.4.3" or oid == "2.5.4.10" and not cn:
                    cn = text
    return cn


def parse_cert(node: der.Node) -> Cert:
    tbs, sig_alg = node.child(0), node.child(1)
    parts = tbs.children()
    i = 1 if parts and parts[0].tag == 0xA0 else 0
    serial = int.from_bytes(parts[i].value, "big", signed=True)
    issuer, validity, subject = parts[i + 2], parts[i + 3], parts[i + 4]
    usage: list[str] = []
    for ext_block in parts[i + 5 :]:
        if ext_block.tag != 0xA3:
            continue
        for ext in ext_block.child(0).children():
            kids = ext.children()
            if kids and kids[0].tag == 0x06 and kids[0].oid() == "2.5.29.37":
                octets = kids[-1]
                seq = der.read_node(octets.data, octets.start, octets.end)
                usage = [EKU_NAMES.get(o.oid(), o.oid()) for o in seq.children() if o.tag == 0x06]
    times = validity.children()
    algo_oid = sig_alg.child(0).oid()
    return Cert(
        raw=node.data[node.start - _header_len(node) : node.end],
        serial=serial,
        issuer_raw=issuer.value,
        subject_raw=subject.value,
        subject_cn=_name_cn(subject),
        issuer_cn=_name_cn(issuer),
        not_before=der.decode_time(times[0]) if times else None,
        not_after=der.decode_time(times[1]) if len(times) > 1 else None,
        algorithm=SIG_ALGORITHMS.get(algo_oid, algo_oid),
        usage=usage,
    )


def _header_len(node: der.Node) -> int:
    length = node.end - node.start
    if length < 0x80:
        return 2
    return 2 + (length.bit_length() + 7) // 8


def _certs(signed_data: der.Node) -> list[Cert]:
    out: list[Cert] = []
    for part in signed_data.children():
        if part.tag == 0xA0:
            for c in part.children()[:MAX_CERTS]:
                try:
                    out.append(parse_cert(c))
                except der.DerError as exc:
                    logger.debug("unparseable certificate: %s", exc)
    return out


def _signer_ids(signed_data: der.Node) -> list[tuple[bytes, int]]:
    sets = [c for c in signed_data.children() if c.tag == 0x31]
    ids = []
    for si in sets[-1].children() if sets else []:
        ias = si.child(1)
        if ias.tag == 0x30:
            ids.append((ias.child(0).value, int.from_bytes(ias.child(1).value, "big", signed=True)))
    return ids


def _chain(first: tuple[bytes, int], certs: list[Cert]) -> list[Cert]:
    cert = next((c for c in certs if c.serial == first[1] and c.issuer_raw == first[0]), None)
    chain: list[Cert] = []
    while cert is not None and cert not in chain and len(chain) < 16:
        chain.append(cert)
        if cert.issuer_raw == cert.subject_raw:
            break
        cert = next((c for c in certs if c.subject_raw == cert.issuer_raw), None)
    return chain


def _counter_chains(signed_data: der.Node, certs: list[Cert]) -> list[Cert]:
    """Chain of the counter-signer (PKCS#9 counterSignature or RFC 3161 timestamp token)."""
    sets = [c for c in signed_data.children() if c.tag == 0x31]
    if not sets or not sets[-1].children():
        return []
    signer = sets[-1].child(0)
    for part in signer.children():
        if part.tag != 0xA1:
            continue
        for attr in part.children():
            oid_node, values = attr.child(0), attr.child(1)
            oid = oid_node.oid()
            for value in values.children():
                if oid == der.OID_COUNTER_SIGNATURE:
                    ias = value.child(1)
                    ident = (ias.child(0).value, int.from_bytes(ias.child(1).value, "big", signed=True))
                    return _chain(ident, certs)
                if oid == der.OID_MS_TIMESTAMP:
                    token_sd = value.child(1).child(0)
                    token_certs = _certs(token_sd) + certs
                    ids = _signer_ids(token_sd)
                    return _chain(ids[0], token_certs) if ids else []
    return []


def certificate_blob(hdr: PeHeaders) -> bytes | None:
    """The PKCS#7 blob of the first WIN_CERTIFICATE in the security directory."""
    table = hdr.certificate_table()
    if table is None:
        return None
    off, size = table
    length, _, cert_type = struct.unpack_from("<IHH", hdr.data, off)
    if cert_type != WIN_CERT_PKCS_SIGNED_DATA or length < 8:
        return None
    return hdr.data[off + 8 : off + min(length, size)]


def signature_report(hdr: PeHeaders, lief_binary: Any) -> tuple[dict[str, Any], list[str], bool]:
    """(signature_info fields, anomalies, is_signed)."""
    blob = certificate_blob(hdr)
    if blob is None:
        return {}, [], False
    anomalies: list[str] = []
    info: dict[str, Any] = {}
    try:
        sd = der.signed_data(blob)
        certs = _certs(sd)
        ids = _signer_ids(sd)
        when = der.signing_time(blob)
        signers = _chain(ids[0], certs) if ids else []
        counter = _counter_chains(sd, certs)
    except (der.DerError, IndexError, ValueError) as exc:
        return {"verified": BAD_SIGNATURE_MESSAGE}, [f"malformed Authenticode signature: {exc}"], True
    if signers:
        info["signers"] = "; ".join(c.subject_cn for c in signers)
        info["signers details"] = [c.details(when) for c in signers]
    if counter:
        info["counter signers"] = "; ".join(c.subject_cn for c in counter)
        info["counter signers details"] = [c.details(when) for c in counter]
    if when is not None:
        info["signing date"] = format_date(when)
    info["x509"] = [c.details(when) for c in certs]
    info["verified"] = _verify(lief_binary, anomalies)
    return info, anomalies, True


def _verify(lief_binary: Any, anomalies: list[str]) -> str:
    if lief_binary is None:
        return BAD_SIGNATURE_MESSAGE
    try:
        import lief

        if not len(lief_binary.signatures):
            anomalies.append("LIEF could not parse the Authenticode signature")
            return BAD_SIGNATURE_MESSAGE
        flags = lief_binary.verify_signature()
        vf = lief.PE.Signature.VERIFICATION_FLAGS
        if flags == vf.OK:
            return "Signed"
        if flags & vf.CERT_EXPIRED or flags & vf.CERT_FUTURE:
            return VERIFY_MESSAGES["CERT_EXPIRED"]
    except Exception as exc:  # LIEF raises on odd blobs; integrity then unknown
        anomalies.append(f"signature verification failed: {exc}")
    return BAD_SIGNATURE_MESSAGE
