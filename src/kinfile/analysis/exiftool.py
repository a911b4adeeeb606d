"""ExifTool, when installed: one long-lived ``-stay_open`` process per worker, never one per file.

The format analysers produce a built-in ``exiftool`` dict with ExifTool's key names; when the
``exiftool`` program is available (Debian: ``libimage-exiftool-perl``) its output is merged in,
ExifTool's value winning where both have a key (it is the reference). A hung or crashed
ExifTool is killed and restarted; its output is then simply missing for that file.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

READY = b"{ready}"
ARGS = (
    "-j",
    "-charset",
    "filename=utf8",
    "--System:all",
    "--ExifTool:all",
    "--File:FileName",
    "--File:Directory",
    "-x",
    "SourceFile",
)
DROP = {
    "SourceFile",
    "ExifToolVersion",
    "FileName",
    "Directory",
    "FileSize",
    "FileModifyDate",
    "FileAccessDate",
    "FileInodeChangeDate",
    "FilePermissions",
    "Error",
    "Warning",
}
MAX_OUTPUT = 4 * 1024 * 1024
PR_SET_PDEATHSIG = 1


class ExifTool:
    """A ``-stay_open`` ExifTool process, safe to share between threads."""

    def __init__(self, executable: str, timeout: float = 10.0) -> None:
        self.executable = executable
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._tmpdir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None or self._pid != os.getpid():
            self._proc = subprocess.Popen(
                [self.executable, "-stay_open", "True", "-@", "-", "-common_args", *ARGS],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
            self._pid = os.getpid()
            atexit.register(self.close)
        return self._proc

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def metadata(self, data: bytes) -> dict[str, Any]:
        """ExifTool's tags for ``data`` (empty on any failure)."""
        with self._lock, tempfile.NamedTemporaryFile(dir=self._tmpdir, prefix="kinfile-exif-") as tmp:
            tmp.write(data)
            tmp.flush()
            try:
                raw = self._execute(tmp.name)
            except (OSError, TimeoutError) as exc:
                logger.warning("exiftool failed (%s); restarting it", exc)
                self._kill()
                return {}
        try:
            parsed = json.loads(raw.decode("utf-8", "replace") or "[]")
        except ValueError:
            return {}
        if not parsed or not isinstance(parsed[0], dict):
            return {}
        return {k: v for k, v in parsed[0].items() if k not in DROP}

    def _execute(self, path: str) -> bytes:
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(f"{path}\n-execute\n".encode())
        proc.stdin.flush()
        out = bytearray()
        deadline = time.monotonic() + self.timeout
        fd = proc.stdout.fileno()
        while True:
            end = out.rfind(READY)
            if end != -1 and out.endswith(b"\n", end):
                return bytes(out[:end])
            left = deadline - time.monotonic()
            if left <= 0 or len(out) > MAX_OUTPUT:
                raise TimeoutError("exiftool did not answer in time")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise OSError("exiftool exited")
            out += chunk

    def close(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None and self._pid == os.getpid():
                try:
                    assert self._proc.stdin is not None
                    self._proc.stdin.write(b"-stay_open\nFalse\n")
                    self._proc.stdin.flush()
                    self._proc.wait(5)
                except (OSError, subprocess.TimeoutExpired):
                    self._kill()
            self._proc = None


def _die_with_parent() -> None:
    """In the child: ask Linux to end it when its parent goes (ExifTool ignores a closed stdin)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: atexit still closes it on a clean exit
        pass


_INSTANCES: dict[str, ExifTool | None] = {}


def get_exiftool(setting: str) -> ExifTool | None:
    """The process-wide ExifTool for a setting: ``auto`` (if installed), ``off``, or a path."""
    if setting in _INSTANCES:
        return _INSTANCES[setting]
    found: ExifTool | None = None
    if setting != "off":
        exe = shutil.which("exiftool") if setting == "auto" else setting
        if exe and os.access(exe, os.X_OK):
            found = ExifTool(exe)
        elif setting != "auto":
            logger.warning("exiftool %r not found; continuing without it", setting)
    _INSTANCES[setting] = found
    return found


def merge(builtin: dict[str, Any] | None, external: dict[str, Any]) -> dict[str, Any]:
    """Built-in keys, overridden and extended by ExifTool's."""
    out = dict(builtin or {})
    out.update(external)
    return out
