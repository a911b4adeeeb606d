"""Opaque ids and signed tokens: analysis ids, pagination cursors, download URLs.

Cursors and download URLs are HMAC-signed with the deployment's secret, so a client cannot
forge or alter them; a tampered token is an :class:`InvalidArgumentError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any

from kinfile.errors import InvalidArgumentError

SIG_BYTES = 12


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def analysis_id(sha256: str, date: int) -> str:
    """``base64url("<sha256>:<date>:<nonce>")``: self-describing, so lookups stay on one shard."""
    return _b64(f"{sha256}:{date}:{secrets.token_hex(4)}".encode())


def parse_analysis_id(ident: str) -> str | None:
    """The sha256 inside an analysis id, or ``None`` when the id is malformed."""
    try:
        sha256, _date, _nonce = _unb64(ident).decode("ascii").split(":")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return None
    if len(sha256) != 64 or sha256.strip("0123456789abcdef"):
        return None
    return sha256


class Signer:
    """Signs small JSON payloads: ``base64url(json) + "." + base64url(hmac)``."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:SIG_BYTES]

    def sign(self, payload: dict[str, Any]) -> str:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def verify(self, token: str, what: str = "cursor") -> dict[str, Any]:
        try:
            body_text, mac_text = token.split(".", 1)
            body = _unb64(body_text)
            mac = _unb64(mac_text)
        except (ValueError, binascii.Error) as exc:
            raise InvalidArgumentError(f"invalid {what}") from exc
        if not hmac.compare_digest(mac, self._mac(body)):
            raise InvalidArgumentError(f"invalid {what}")
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise InvalidArgumentError(f"invalid {what}") from exc
        if not isinstance(payload, dict):
            raise InvalidArgumentError(f"invalid {what}")
        return payload
