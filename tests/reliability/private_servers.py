"""Private, throwaway servers for tests that stop, restart or stall a server.

The shared PostgreSQL and Redis must never be stopped, and a test that garbles stored
data on purpose must not risk stalling other users of the shared Redis. These servers
bind 127.0.0.1 only, keep nothing (no persistence, fsync off), live under a temporary
directory and are stopped by whoever started them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
START_DEADLINE = 30.0
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"

def _newest_postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian layout)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _newest_postgres_bin()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def port_is_closed(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((HOST, port)) != 0


def _wait(what: str, ready: object) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while not ready():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not become ready within {START_DEADLINE:.0f} s")
        time.sleep(0.05)


class PrivateRedis:
    """A redis-server of our own on a free loopback port; restartable on the same port."""

    def __init__(self, directory: Path, *extra: str, password: str | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        self.password = password
        self.extra = (*extra, *(("--requirepass", password) if password else ()))
        self.url = f"redis://{HOST}:{self.port}/0"

    def cli(self, *args: str) -> str:
        auth = ("-a", self.password, "--no-auth-warning") if self.password else ()
        done = subprocess.run(
            [REDIS_CLI, "-h", HOST, "-p", str(self.port), *auth, *args],
            capture_output=True, text=True, timeout=30, check=False,
        )
        return done.stdout + done.stderr

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", HOST,
                "--dir", str(self.directory),
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "yes",
                "--pidfile", str(self.directory / "redis.pid"),
                "--logfile", str(self.directory / "redis.log"),
                *self.extra,
            ],
            check=True,
            timeout=30,
        )
        _wait(f"redis-server on port {self.port}", lambda: "PONG" in self.cli("ping"))

    def stop(self) -> None:
        """SHUTDOWN NOSAVE, and wait until the port is closed."""
        self.cli("shutdown", "nosave")
        _wait(f"redis-server on port {self.port} to stop", lambda: port_is_closed(self.port))


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb under /tmp, run as the postgres user)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lus-pg-"))
        os.chown(self.root, *_postgres_ids())
        self.data = self.root / "data"
        self.port = free_port()
        self.dsn = f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def _as_postgres(self, *command: str) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "--no-sync", "-N",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses={HOST} -c fsync=off "
            "-c full_page_writes=off -c max_connections=50"
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.root / "log"), "-w", "-t", "60", "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
        _wait(f"postgres on port {self.port} to stop", lambda: port_is_closed(self.port))

    def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid
