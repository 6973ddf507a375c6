"""Private redis-server processes for the Redis tests that must not touch the shared server:
a 3-node cluster, and a standalone server whose clients a test may kill.

Every server binds 127.0.0.1 only, keeps nothing on disk and is stopped by the test
session that started it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
HOST = "127.0.0.1"
# Cluster nodes also listen on port + 10000 (the cluster bus).
CLUSTER_BUS_OFFSET = 10000
START_DEADLINE_SECONDS = 30.0


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(*, with_bus: bool = False, taken: set[int] | None = None) -> int:
    """A loopback port nobody listens on (and, for a cluster node, its bus port too)."""
    taken = taken if taken is not None else set()
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((HOST, 0))
            port = int(probe.getsockname()[1])
        if port in taken or (with_bus and port + CLUSTER_BUS_OFFSET > 65535):
            continue
        if with_bus and not _port_is_free(port + CLUSTER_BUS_OFFSET):
            continue
        return port
    raise RuntimeError("no free loopback port found")


def _cli(port: int, *args: str, timeout: float = 10.0) -> str:
    done = subprocess.run(
        [REDIS_CLI, "-h", HOST, "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout + done.stderr


def _wait(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not become ready")
        time.sleep(0.1)


@dataclass
class RedisServers:
    """redis-server processes started in ``directory``; ``stop`` shuts them all down."""

    directory: Path
    ports: list[int] = field(default_factory=list)

    def start_node(self, port: int, *extra: str) -> None:
        node_dir = self.directory / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                REDIS_SERVER,
                "--port", str(port),
                "--bind", HOST,
                "--dir", str(node_dir),
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "yes",
                "--pidfile", str(node_dir / "redis.pid"),
                "--logfile", str(node_dir / "redis.log"),
                *extra,
            ],
            check=True,
            timeout=10,
        )
        self.ports.append(port)
        _wait(f"redis-server on port {port}", lambda: "PONG" in _cli(port, "ping"))

    def stop(self) -> None:
        for port in self.ports:
            _cli(port, "shutdown", "nosave")
        for port in self.ports:
            pidfile = self.directory / str(port) / "redis.pid"
            deadline = time.monotonic() + 10
            while pidfile.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        self.ports.clear()


def start_standalone(directory: Path) -> tuple[RedisServers, str]:
    """One private standalone server; returns it and its URL."""
    servers = RedisServers(directory)
    port = free_port()
    servers.start_node(port)
    return servers, f"redis://{HOST}:{port}/0"


def start_cluster(directory: Path, nodes: int = 3) -> tuple[RedisServers, str]:
    """A cluster of ``nodes`` primaries and no replicas; returns it and a URL of one node."""
    servers = RedisServers(directory)
    ports: list[int] = []
    try:
        for _ in range(nodes):
            port = free_port(with_bus=True, taken=set(ports))
            ports.append(port)
            servers.start_node(
                port,
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(directory / str(port) / "nodes.conf"),
                "--cluster-node-timeout", "5000",
            )
        created = subprocess.run(
            [
                REDIS_CLI, "--cluster", "create",
                *(f"{HOST}:{port}" for port in ports),
                "--cluster-replicas", "0", "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
        _wait(
            "the cluster",
            lambda: all("cluster_state:ok" in _cli(port, "cluster", "info") for port in ports),
        )
    except BaseException:
        servers.stop()
        raise
    return servers, f"redis://{HOST}:{ports[0]}/0"
