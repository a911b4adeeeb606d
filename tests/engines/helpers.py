"""Test helpers: real rules, positives built from a rule's own hex strings, a throwaway clamd."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from tests.conftest import CORPUS

SHARED = CORPUS.parent
RL_RULES = SHARED / "rules" / "reversinglabs"
VT_DIR = SHARED / "vt"
TRICKBOT = RL_RULES / "yara" / "trojan" / "Win32.Trojan.TrickBot.yara"


def hex_string(rule_text: str, name: str) -> str:
    found = re.search(r"\$" + re.escape(name) + r"\s*=\s*\{(.*?)\}", rule_text, re.S)
    assert found, name
    return found.group(1)


def instantiate(pattern: str) -> bytes:
    """One byte string matching a YARA hex pattern: wildcards 00, first alternative, shortest jump."""
    out = bytearray()
    tokens = re.findall(r"\([^)]*\)|\[[^\]]*\]|\?\?|[0-9A-Fa-f]{2}", pattern)
    for token in tokens:
        if token == "??":
            out.append(0)
        elif token.startswith("("):
            out += instantiate(token[1:-1].split("|")[0])
        elif token.startswith("["):
            out += b"\0" * int(token[1:-1].split("-")[0] or 0)
        else:
            out.append(int(token, 16))
    return bytes(out)


def trickbot_positive() -> bytes:
    """Bytes satisfying Win32_Trojan_TrickBot: MZ + $entry_setup + $decrypt_function_snippet."""
    text = TRICKBOT.read_text()
    body = instantiate(hex_string(text, "entry_setup")) + b"\xcc" * 16
    body += instantiate(hex_string(text, "decrypt_function_snippet"))
    return b"MZ" + b"\0" * 62 + body + b"\0" * 64


def zipped(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def write_rules(folder: Path, text: str, name: str = "local.yar") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder
