"""A throw-away PostgreSQL server for a test session (tests/conftest.py: postgres_url): initdb into a fresh
directory, `pg_ctl start` on 127.0.0.1 and a free port, `pg_ctl stop` at the end. As root, initdb and
postgres refuse to run, so both run as the `postgres` user (runuser) on a directory it owns."""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "tarjama"
DATABASE = "tarjama"


def find_bindir() -> Path | None:
    """The directory of initdb, pg_ctl and postgres: initdb's on PATH (Debian links only some binaries
    there, so the link is followed), else the newest /usr/lib/postgresql/N/bin; None when there is none."""
    candidates = []
    if found := shutil.which("initdb"):
        candidates.append(Path(found).resolve().parent)

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path))

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for bindir in candidates:
        if all((bindir / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThrowAwayServer:
    """One PostgreSQL cluster in a temporary directory; `url` is a password login of a role that may
    create databases (the fixture makes one per test)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_owner: list[str] = []
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root, and there is no `postgres` user to run PostgreSQL as") from None
            if not shutil.which("runuser"):
                raise RuntimeError("running as root, and runuser (util-linux) is missing")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        # Under /tmp itself: pytest's tmp_path is in a root-only directory the postgres user cannot enter.
        self.root = Path(tempfile.mkdtemp(prefix="tarjama-pg-"))
        if owner is not None:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.password = secrets.token_hex(16)
        self.port = 0

    def run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self.as_owner, *command], capture_output=True, text=True, timeout=timeout,
                              cwd=self.root)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} failed ({done.returncode}): {done.stderr or done.stdout}"
                               f"{self.log_tail()}")  # fmt: skip
        return done

    def log_tail(self) -> str:
        try:
            return "\nserver log:\n" + self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> str:
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        if self.as_owner:
            shutil.chown(password_file, "postgres", "postgres")
        # The superuser is the tests' role, password-only over TCP; the socket (trust) is in self.root,
        # which only its owner can enter. --no-sync and fsync=off: nothing here outlives the session.
        self.run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={password_file}",
                 "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-locale", "--no-sync",
                 "--no-instructions")  # fmt: skip
        password_file.unlink()
        for attempt in range(3):  # the free port may be taken between the probe and the bind
            self.port = free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} "
                       "-c fsync=off -c full_page_writes=off -c max_connections=200")  # fmt: skip
            try:
                self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                         "-w", "-t", "60", "start")  # fmt: skip
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        self.run(str(self.bindir / "psql"), "-X", "-q", "-h", str(self.root), "-p", str(self.port), "-U", USER,
                 "-d", "postgres", "-c", f"CREATE DATABASE {DATABASE}")  # fmt: skip
        return self.url

    def stop(self) -> None:
        """Bounded: a fast shutdown (clients disconnected) for 30 s, else an immediate one."""
        try:
            if (self.data / "postmaster.pid").exists():
                pg_ctl = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", "stop"]
                try:
                    self.run(*pg_ctl, "-m", "fast", timeout=45)
                except (RuntimeError, subprocess.TimeoutExpired):
                    self.run(*pg_ctl, "-m", "immediate", timeout=45)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
