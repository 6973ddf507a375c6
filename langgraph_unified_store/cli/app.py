"""``lus``: look after the checkpoints and the store at any URL ``create_saver`` takes.

Built on Typer (commands, options, ``--help``) and Rich (tables, progress on stderr).
Every command takes ``--url`` (or ``$LANGGRAPH_UNIFIED_STORE_URL``) and ``--json``, and
exits 0 on success, 1 on a failure, 2 on a usage error, with one line on stderr.
"""

from __future__ import annotations

import typer

from . import browse, doctor, maintain, transfer
from .store import store_app

app = typer.Typer(
    name="lus",
    help="Inspect and maintain langgraph-unified-store checkpoints and memory store.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
browse.register(app)
maintain.register(app)
doctor.register(app)
transfer.register(app)
app.add_typer(store_app, name="store")


def main() -> None:
    """The console script ``lus``."""
    app(prog_name="lus")
