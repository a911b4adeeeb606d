"""A throwaway PostgreSQL server for the test suite, from the installed Debian binaries.

``initdb`` + ``pg_ctl`` on a free loopback port in a temporary directory, stopped by PID at the
end. PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_bindir() -> str | None:
    if os.environ.get("KINFILE_PG_BINDIR"):
        return os.environ["KINFILE_PG_BINDIR"]
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return candidate
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.tmp = Path(tempfile.mkdtemp(prefix="kinfile-pg-"))
        self.datadir = self.tmp / "data"
        self.port = _free_port()
        self.pid: int | None = None
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.tmp, "postgres")
            os.chmod(self.tmp, 0o700)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.as_user, *args], check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> str:
        self._run(
            f"{self.bindir}/initdb",
            "-D",
            str(self.datadir),
            "-U",
            "kinfile",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        log = self.tmp / "server.log"
        self._run(
            f"{self.bindir}/pg_ctl",
            "-D",
            str(self.datadir),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -h 127.0.0.1 -k {self.tmp} -c fsync=off -c full_page_writes=off",
            "start",
        )
        pidfile = self.datadir / "postmaster.pid"
        self.pid = int(pidfile.read_text().split("\n", 1)[0])
        return f"postgresql://kinfile@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGINT)  # fast shutdown
                for _ in range(100):
                    os.kill(self.pid, 0)
                    time.sleep(0.1)
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        shutil.rmtree(self.tmp, ignore_errors=True)
