"""Crash safety: a writer process killed with SIGKILL at random moments loses nothing it
saw acknowledged, and leaves nothing unreadable behind.

Each run forks a writer process (``crash_child.py``, from a warm fork server) on a persistent backend (a SQLite
file, a Postgres schema, a Redis key prefix). The child writes checkpoints, with list
values (so items and segments are stored) and parent links, plus pending writes, and
prints each id right after the call returns. The test kills it 50-300 ms after it is
ready, then checks that every checkpoint ``list()`` returns deserializes to exactly
what was written, that its parent exists, and that everything acknowledged is there.

The memory backend is not part of this test: an in-process store cannot outlive its
own process, by nature. Nothing is skipped for it; it simply has no crash to survive.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from langgraph_unified_store.core.saver import UnifiedCheckpointSaver

from ..support import config_for, drop_saver, open_saver
from . import figures
from .workload import check_tuple, verify_chain

ROOT = Path(__file__).resolve().parents[2]
PERSISTENT_BACKENDS = ("sqlite", "postgres", "redis")
KILLS = 20
READY_TIMEOUT = 60.0


def location_for(backend: str, tmp_path: Path) -> str:
    suffix = uuid.uuid4().hex[:10]
    if backend == "sqlite":
        return str(tmp_path / f"crash_{suffix}.sqlite")
    return f"lus_crash_{suffix}"


class ForkServer:
    """The warm parent of the writers (``crash_child.py``): it forks one per run."""

    def __init__(self, backend: str, location: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.crash_child", backend, location],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def _line(self, prefix: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith(prefix), f"the fork server said {line!r}, expected {prefix}"
        return line[len(prefix) :].strip()

    def run_and_kill(self, thread_id: str, api: str, delay: float, out: Path) -> list[str]:
        """Fork a writer, kill it ``delay`` seconds after it is ready; the lines it wrote."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"RUN {thread_id} {api} {out}\n")
        self.process.stdin.flush()
        pid = int(self._line("PID "))
        deadline = time.monotonic() + READY_TIMEOUT
        while not (out.exists() and out.read_bytes().startswith(b"READY\n")):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                pytest.fail(f"writer {pid} did not get ready within {READY_TIMEOUT:.0f} s")
            time.sleep(0.005)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        status = int(self._line("EXIT "))
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
            f"the writer ended by itself (wait status {status}) before the kill"
        )
        # Only whole lines count: each was written in one call, right after its ack.
        return [line for line in out.read_text().split("\n")[:-1] if line]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def verify_thread(
    saver: UnifiedCheckpointSaver,
    thread_id: str,
    acked_checkpoints: list[str],
    acked_writes: list[str],
    where: str,
) -> tuple[int, int]:
    return verify_chain(list(saver.list(config_for(thread_id))), acked_checkpoints, acked_writes, where)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("backend", PERSISTENT_BACKENDS)
def test_sigkill_at_random_moments_loses_nothing_acknowledged(backend: str, tmp_path: Path) -> None:
    seed = int(os.environ.get("LUS_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    location = location_for(backend, tmp_path)
    verifier = open_saver(backend, location)
    acked_total = 0
    server = ForkServer(backend, location)
    try:
        verifier.setup()
        for run in range(KILLS):
            thread_id = f"crash-{run}"
            api = "async" if run % 2 == 0 else "sync"
            delay = rng.uniform(0.05, 0.3)
            where = f"{backend} run {run} ({api}, killed after {delay * 1000:.0f} ms, seed {seed})"
            lines = server.run_and_kill(thread_id, api, delay, tmp_path / f"run-{run}.out")
            acked_checkpoints = [line[2:] for line in lines if line.startswith("C ")]
            acked_writes = [line[2:] for line in lines if line.startswith("W ")]
            checkpoints, writes = verify_thread(
                verifier, thread_id, acked_checkpoints, acked_writes, where
            )
            acked_total += len(acked_checkpoints)
            figures.count(backend, figures.KILLS_SURVIVED)
            figures.count(backend, figures.CHECKPOINTS_VERIFIED, checkpoints)
            figures.count(backend, figures.WRITES_VERIFIED, writes)
        assert acked_total > 0, f"{backend}: no child acknowledged anything before its kill"
        # A last pass over the whole store: every kill left every thread readable.
        everything = list(verifier.list(None))
        assert {t.config["configurable"]["thread_id"] for t in everything} <= {
            f"crash-{run}" for run in range(KILLS)
        }
        for tup in everything:
            check_tuple(tup, f"{backend} final pass (seed {seed})")
    finally:
        server.close()
        asyncio.run(drop_saver(verifier))
