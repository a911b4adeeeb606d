"""The ClamAV engine: clamd's ``INSTREAM`` protocol, or ``clamscan`` when no daemon runs.

The ``clamav`` setting chooses how to reach it:

* ``auto``: the first clamd socket that answers ``PING`` (``LocalSocket`` of
  ``/etc/clamav/clamd.conf``, ``/run/clamav/clamd.ctl``, ``/var/run/clamav/clamd.ctl``), else
  ``clamscan`` when it is installed *and* has a signature database, else unavailable;
* ``off``; a unix socket path; ``tcp://host:port``; ``clamscan`` or ``clamscan:<database dir>``.

Unavailable is not an error: :meth:`ClamAVEngine.info` says why and the verdict use-case leaves
the engine out. A name ending in ``.UNOFFICIAL`` (clamd's mark for unsigned local databases) is
reported without that suffix; ``Heuristics.*`` and ``PUA.*`` names are ``suspicious``, others
``malicious``. ``clamscan`` loads the whole database for every file: use clamd for volume.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from kinfile.engines.base import EngineInfo, Target, Verdict, result, today

logger = logging.getLogger(__name__)

ENGINE_NAME = "ClamAV"
SOCKET_CANDIDATES = ("/run/clamav/clamd.ctl", "/var/run/clamav/clamd.ctl", "/tmp/clamd.socket")
CLAMD_CONF = Path("/etc/clamav/clamd.conf")
CHUNK = 1 << 16
INFO_TTL = 300.0
SUSPICIOUS_PREFIXES = ("Heuristics.", "PUA.")
FOUND = re.compile(r"^(?:stream|stdin): (.+) FOUND$")


class ClamdError(Exception):
    pass


class Clamd:
    """A clamd connection target: a unix socket path or ``(host, port)``."""

    def __init__(self, address: str | tuple[str, int], timeout: float) -> None:
        self.address = address
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        family = socket.AF_UNIX if isinstance(self.address, str) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.address)
        except OSError:
            sock.close()
            raise
        return sock

    def command(self, name: str, payload: bytes | None = None) -> str:
        with self._connect() as sock:
            sock.sendall(f"z{name}\0".encode())
            if payload is not None:
                view = memoryview(payload)
                for start in range(0, len(view), CHUNK):
                    chunk = view[start : start + CHUNK]
                    sock.sendall(struct.pack(">I", len(chunk)) + chunk)
                sock.sendall(struct.pack(">I", 0))
            reply = bytearray()
            while True:
                got = sock.recv(4096)
                if not got:
                    break
                reply += got
                if reply.endswith(b"\0"):
                    break
        return reply.rstrip(b"\0").decode("utf-8", "replace").strip()

    def scan(self, data: bytes) -> str | None:
        """The signature name, ``None`` when clean; :class:`ClamdError` on a clamd error."""
        reply = self.command("INSTREAM", data)
        if reply.endswith("OK"):
            return None
        found = FOUND.match(reply)
        if found:
            return found.group(1)
        raise ClamdError(reply)


def configured_socket() -> str | None:
    try:
        for line in CLAMD_CONF.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "LocalSocket":
                return parts[1]
    except OSError:
        pass
    return None


def parse_version(text: str) -> tuple[str, str]:
    """``"ClamAV 1.4.6/27400/Mon Sep 29 08:21:11 2025"`` → ``("1.4.6", "20250929")``."""
    body = text.split("ClamAV", 1)[-1].strip()
    parts = body.split("/")
    version = parts[0].strip() or "unknown"
    update = today()
    if len(parts) >= 3:
        with contextlib.suppress(ValueError):
            update = _dt.datetime.strptime(parts[2].strip(), "%a %b %d %H:%M:%S %Y").strftime("%Y%m%d")
    return version, update


def category_of(name: str) -> str:
    return "suspicious" if name.startswith(SUSPICIOUS_PREFIXES) else "malicious"


def clean_name(name: str) -> str:
    return name[: -len(".UNOFFICIAL")] if name.endswith(".UNOFFICIAL") else name


class ClamAVEngine:
    name = ENGINE_NAME

    def __init__(self, mode: str = "auto", timeout: float = 60.0) -> None:
        self.mode = mode.strip() or "auto"
        self.timeout = timeout
        self._lock = threading.Lock()
        self._info: EngineInfo | None = None
        self._info_at = 0.0
        self.clamd: Clamd | None = None
        self.clamscan: list[str] | None = None

    # -- discovery -----------------------------------------------------------------------
    def _discover(self) -> EngineInfo:
        mode = self.mode
        if mode == "off":
            return self._unavailable("disabled (clamav = off)")
        if mode.startswith("clamscan"):
            return self._try_clamscan(mode.partition(":")[2] or None)
        if mode.startswith("tcp://"):
            host, _, port = mode[len("tcp://") :].rpartition(":")
            return self._try_clamd((host or "127.0.0.1", int(port or 3310)))
        if mode != "auto":
            return self._try_clamd(mode)
        tried: list[str] = []
        for path in dict.fromkeys(p for p in (configured_socket(), *SOCKET_CANDIDATES) if p):
            if Path(path).exists():
                info = self._try_clamd(path)
                if info.available:
                    return info
                tried.append(info.detail)
        info = self._try_clamscan(None)
        if info.available:
            return info
        return self._unavailable("; ".join([*tried, info.detail]) or "ClamAV not installed")

    def _unavailable(self, why: str) -> EngineInfo:
        return EngineInfo(ENGINE_NAME, "", today(), False, why)

    def _try_clamd(self, address: str | tuple[str, int]) -> EngineInfo:
        clamd = Clamd(address, self.timeout)
        try:
            if clamd.command("PING") != "PONG":
                return self._unavailable(f"clamd at {address} did not answer PING")
            version, update = parse_version(clamd.command("VERSION"))
        except OSError as exc:
            return self._unavailable(f"clamd at {address}: {exc.strerror or exc}")
        self.clamd, self.clamscan = clamd, None
        return EngineInfo(ENGINE_NAME, version, update, True, f"clamd {address}")

    def _try_clamscan(self, database: str | None) -> EngineInfo:
        program = shutil.which("clamscan")
        if program is None:
            return self._unavailable("clamd not running and clamscan not installed")
        argv = [program, "--no-summary", "--stdout"] + (["-d", database] if database else [])
        try:
            probe = subprocess.run(
                [*argv, "-"], input=b"kinfile probe", capture_output=True, timeout=self.timeout
            )
            version_text = subprocess.run([program, "--version"], capture_output=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired) as exc:
            return self._unavailable(f"clamscan: {exc}")
        if probe.returncode not in (0, 1):
            why = (probe.stderr or probe.stdout).decode("utf-8", "replace").strip().splitlines()
            return self._unavailable(f"clamscan: {why[0] if why else 'exit ' + str(probe.returncode)}")
        version, update = parse_version(version_text.decode("utf-8", "replace"))
        self.clamd, self.clamscan = None, [*argv, "-"]
        return EngineInfo(
            ENGINE_NAME, version, update, True, "clamscan" + (f" -d {database}" if database else "")
        )

    def info(self) -> EngineInfo:
        with self._lock:
            if self._info is None or time.monotonic() - self._info_at > INFO_TTL:
                self._info = self._discover()
                self._info_at = time.monotonic()
            return self._info

    # -- scanning ------------------------------------------------------------------------
    def _scan_name(self, data: bytes) -> str | None:
        if self.clamd is not None:
            return self.clamd.scan(data)
        assert self.clamscan is not None
        done = subprocess.run(self.clamscan, input=data, capture_output=True, timeout=self.timeout)
        if done.returncode == 0:
            return None
        for line in done.stdout.decode("utf-8", "replace").splitlines():
            found = FOUND.match(line.strip())
            if found:
                return found.group(1)
        raise ClamdError((done.stderr or done.stdout).decode("utf-8", "replace").strip()[:200])

    def scan(self, target: Target) -> Verdict:
        info = self.info()
        if not info.available:
            return Verdict()
        try:
            name = self._scan_name(target.data)
        except (TimeoutError, subprocess.TimeoutExpired):
            return Verdict(results={ENGINE_NAME: result(info, "timeout")})
        except (OSError, ClamdError) as exc:
            logger.warning("ClamAV scan of %s failed: %s", target.sha256 or "data", exc)
            return Verdict(results={ENGINE_NAME: result(info, "failure")})
        if name is None:
            return Verdict(results={ENGINE_NAME: result(info, "undetected")})
        return Verdict(results={ENGINE_NAME: result(info, category_of(name), clean_name(name))})
