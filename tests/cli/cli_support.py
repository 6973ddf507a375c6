"""Stored history for the CLI to read: a real graph run on a real saver, on a SQLite file,
a PostgreSQL schema or a Redis prefix of its own, and the URL and ``-o`` options that
open the same data from the command line (as another process would)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from langchain_core.messages import HumanMessage
from typer.testing import CliRunner

from langgraph_unified_store.cli.app import app
from langgraph_unified_store.factory import ENV_URL

from ..graphs import chat_graph
from ..support import POSTGRES_DSN, REDIS_URL, drop_saver, open_saver, unique

CLI_BACKENDS = ("sqlite", "postgres", "redis")
# Threads the graph runs: id -> (user_id in the run's metadata, turns).
THREADS = {"support-1": ("u1", 2), "support-2": ("u2", 1), "sales-9": ("u1", 3)}
MARKUP_TURN = "what about [bold red]markup[/] and \x1b[31mescapes\x1b[0m?"


@dataclass
class Stored:
    """Where the history is, and how the CLI opens it."""

    backend: str
    location: str
    url: str
    options: list[str] = field(default_factory=list)

    def args(self, *command: str) -> list[str]:
        """``command`` with ``--url`` and the ``-o`` options that open this storage."""
        return [*command, "--url", self.url, *self.options]

    def saver(self) -> Any:
        return open_saver(self.backend, self.location)


def stored_for(backend: str, tmp_path: Path) -> Stored:
    if backend == "sqlite":
        path = tmp_path / "history.sqlite"
        return Stored(backend, str(path), f"sqlite:///{path}")
    location = unique("lus_cli")
    if backend == "postgres":
        return Stored(backend, location, POSTGRES_DSN, ["-o", f"schema={location}"])
    return Stored(backend, location, REDIS_URL, ["-o", f"prefix={location}"])


def run_graph(stored: Stored) -> None:
    """Each thread of ``THREADS``: its turns through the chat graph, the user id in the
    metadata, and a turn with markup and terminal escapes in it."""
    with stored.saver() as saver:
        graph = chat_graph(saver)
        for thread_id, (user_id, turns) in THREADS.items():
            config = {"configurable": {"thread_id": thread_id}, "metadata": {"user_id": user_id}}
            for turn in range(turns):
                text = MARKUP_TURN if turn == 1 else f"hello {turn}"
                graph.invoke({"messages": [HumanMessage(text)], "topic": "billing"}, config)


def drop(stored: Stored) -> None:
    async def dropped() -> None:
        await drop_saver(stored.saver())

    asyncio.run(dropped())



def invoke(
    runner: CliRunner, args: list[str], input: str | None = None, **env: str | None
) -> Any:
    """Run ``lus args`` in-process; stdout and stderr apart (``result.stdout/.stderr``)."""
    return runner.invoke(
        app, args, input=input, env={"COLUMNS": "200", "NO_COLOR": "1", ENV_URL: None, **env}
    )


def as_json(result: Any) -> Any:
    """The one JSON document a ``--json`` run printed (and it ran without failing)."""
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)
