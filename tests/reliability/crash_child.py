"""Writer processes for the crash test, forked from a warm parent so each run starts fast.

Usage: python -m tests.reliability.crash_child BACKEND LOCATION

This process imports everything once, then reads commands on stdin, one per line:
``RUN <thread_id> <async|sync> <output file>``. For each it forks a writer and prints
``PID <pid>``, then ``EXIT <wait status>`` once the writer is gone (the test kills it
with SIGKILL). The writer opens its own saver, appends ``READY`` to the output file,
then ``C <checkpoint_id>`` right after each ``put`` returns and ``W <checkpoint_id>``
right after each ``put_writes`` returns. Each line is one unbuffered write(2), so a
line is in the file (the kernel's page cache) before the next call starts, and a
SIGKILL cannot take back a line that was written.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import threading

from ..support import open_saver
from .workload import Acked, write_chain_async, write_chain_sync

MAX_STEPS = 2000


class Echoed(Acked):
    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def say(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())

    def checkpoint(self, checkpoint_id: str) -> None:
        self.say(f"C {checkpoint_id}")

    def write(self, checkpoint_id: str) -> None:
        self.say(f"W {checkpoint_id}")


async def run_async(backend: str, location: str, thread_id: str, out: Echoed) -> None:
    saver = open_saver(backend, location)
    await saver.asetup()
    out.say("READY")
    await write_chain_async(saver, thread_id, MAX_STEPS, "crash", out)


def run_sync(backend: str, location: str, thread_id: str, out: Echoed) -> None:
    saver = open_saver(backend, location)
    saver.setup()
    out.say("READY")
    write_chain_sync(saver, thread_id, MAX_STEPS, "crash", out)


def writer(backend: str, location: str, thread_id: str, api: str, path: str) -> None:
    out = Echoed(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    if api == "async":
        asyncio.run(run_async(backend, location, thread_id, out))
    else:
        run_sync(backend, location, thread_id, out)
    out.say("DONE")


DRIVERS = {"sqlite": ("aiosqlite",), "postgres": ("asyncpg",), "redis": ("redis.asyncio",)}


def main() -> None:
    backend, location = sys.argv[1:3]
    # Import now what a writer would import lazily, so that each fork starts warm.
    for module in (f"langgraph_unified_store.backends.{backend}", *DRIVERS[backend]):
        importlib.import_module(module)
    for line in sys.stdin:
        command, thread_id, api, path = line.split()
        assert command == "RUN", line
        # Forking is only safe while this process has no other thread (and no loop).
        assert threading.active_count() == 1, "the fork server must stay single-threaded"
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                writer(backend, location, thread_id, api, path)
            except BaseException as exc:
                sys.stderr.write(f"writer failed: {exc!r}\n")
                code = 1
            finally:
                os._exit(code)
        print(f"PID {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"EXIT {status}", flush=True)


if __name__ == "__main__":
    main()
