"""Child process of the two-process test: 8 writers (4 blocking threads, 4 asyncio tasks)
on one saver, each writing its own thread and the thread every writer shares.

Usage: python -m tests.reliability.concurrent_child BACKEND LOCATION NAME

Prints ``READY`` once set up, waits for a line on stdin (so that both processes start
writing together), then prints one JSON line: what each writer saw acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading

from ..support import open_saver
from .workload import Acked, write_chain_async, write_chain_sync

OWN_STEPS = 20
SHARED_STEPS = 6
SHARED_THREAD = "shared"


async def main(backend: str, location: str, name: str) -> None:
    saver = open_saver(backend, location)
    await saver.asetup()
    print("READY", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    writers = [f"{name}-w{n}" for n in range(8)]
    own = {w: Acked() for w in writers}
    shared = {w: Acked() for w in writers}
    errors: list[BaseException] = []

    def sync_writer(writer: str) -> None:
        try:
            write_chain_sync(saver, f"own-{writer}", OWN_STEPS, writer, own[writer])
            write_chain_sync(saver, SHARED_THREAD, SHARED_STEPS, writer, shared[writer])
        except BaseException as exc:
            errors.append(exc)

    async def async_writer(writer: str) -> None:
        await write_chain_async(saver, f"own-{writer}", OWN_STEPS, writer, own[writer])
        await write_chain_async(saver, SHARED_THREAD, SHARED_STEPS, writer, shared[writer])

    threads = [threading.Thread(target=sync_writer, args=(w,)) for w in writers[:4]]
    for thread in threads:
        thread.start()
    await asyncio.gather(*(async_writer(w) for w in writers[4:]))
    for thread in threads:
        await asyncio.to_thread(thread.join)
    if errors:
        raise errors[0]
    await saver.aclose()
    print(
        json.dumps(
            {
                "own": {w: [a.checkpoints, a.writes] for w, a in own.items()},
                "shared": {w: [a.checkpoints, a.writes] for w, a in shared.items()},
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
