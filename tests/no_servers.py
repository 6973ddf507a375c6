"""A pytest plugin that makes this machine a laptop without servers, to check that
``pytest -m "not postgres and not redis"`` needs none:

    .venv/bin/python -m pytest -p tests.no_servers -m "not postgres and not redis"

Every TCP connect is refused, server binaries cannot be started, and the test helpers
(and the child processes they start) point at a closed port."""

from __future__ import annotations

import os
import socket
import subprocess
from typing import Any

os.environ["LUS_TEST_POSTGRES_DSN"] = "postgresql://postgres@127.0.0.1:9/test"
os.environ["LUS_TEST_REDIS_URL"] = "redis://127.0.0.1:9/0"
SERVER_BINARIES = (
    "redis-server", "redis-cli", "initdb", "pg_ctl", "postgres", "pgbouncer", "psql", "pg_dump",
)

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_popen_init = subprocess.Popen.__init__


def _refuse(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        raise ConnectionRefusedError(f"no_servers: connect to {address} refused")


def _connect_refused(self: socket.socket, address: Any) -> None:
    _refuse(self, address)
    _connect(self, address)


def _connect_ex_refused(self: socket.socket, address: Any) -> int:
    _refuse(self, address)
    return _connect_ex(self, address)


def _popen_without_servers(self: Any, args: Any, *rest: Any, **options: Any) -> None:
    program = args.split()[0] if isinstance(args, str) else (str(next(iter(args))) if args else "")
    if os.path.basename(program) in SERVER_BINARIES:
        raise FileNotFoundError(f"no_servers: {program} is not installed")
    _popen_init(self, args, *rest, **options)


socket.socket.connect = _connect_refused  # type: ignore[method-assign]
socket.socket.connect_ex = _connect_ex_refused  # type: ignore[method-assign]
subprocess.Popen.__init__ = _popen_without_servers  # type: ignore[method-assign]
