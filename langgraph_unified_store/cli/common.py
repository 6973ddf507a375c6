"""What every command shares: its options (URL, saver options, ``--json``), and the one
place failures become a one-line message and an exit code (2: usage, 1: failure)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated, Any, Final, TypeVar

import typer
from rich.console import Console

from ..errors import InvalidConfigError, UnifiedStoreError
from ..factory import ENV_URL
from .parsing import UsageProblem, redact
from .render import Output, literal

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
DEBUG_ENV: Final = "LUS_DEBUG"
"""Set to 1 to see the traceback of a failure instead of its one line."""

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        "-u",
        envvar=ENV_URL,
        show_envvar=True,
        help="Any URL create_saver takes: sqlite:///file.db, postgresql://..., redis://...",
    ),
]
SaverOptions = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        "-o",
        metavar="KEY=VALUE",
        help="A saver/store option, e.g. -o schema=tenant_a, -o prefix=app (key:=json for numbers).",
    ),
]
KeyEnvOption = Annotated[
    str | None,
    typer.Option(
        "--key-env",
        metavar="NAME",
        help="The environment variable holding the saver's encryption key (never on the command line).",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="One JSON document on stdout instead of tables.")]
FilterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        "-f",
        metavar="KEY=VALUE",
        help="Checkpoint metadata key=value (a string) or key:=json (a number, true/false); repeatable.",
    ),
]
NamespaceOption = Annotated[
    str, typer.Option("--ns", help="The checkpoint namespace (a subgraph's); the root by default.")
]
YesFlag = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
DryRunFlag = Annotated[bool, typer.Option("--dry-run", help="Show what would go; change nothing.")]


class CommandFailure(Exception):
    """A failure a command has put in its own terms (its flags, not the library's
    arguments); the CLI prints the message and exits with code 1."""


def confirm_or_stop(output: Output, question: str, *, yes: bool, nothing_done: str) -> None:
    """Ask ``question`` on stderr unless ``--yes``; a no says ``nothing_done`` and exits 1,
    so that a command that deletes or replaces never does it unasked."""
    if yes:
        return
    if not typer.confirm(question, default=False, err=True):
        output.note(nothing_done)
        raise typer.Exit(EXIT_FAILURE)


def fail(message: str, code: int) -> typer.Exit:
    """Print ``lus: error: message`` (one line, secrets out) and give the exit to raise."""
    first = redact(message).strip().splitlines()[0] if message.strip() else "failed"
    Console(stderr=True, highlight=False, soft_wrap=True).print(literal(f"lus: error: {first}", "red"))
    return typer.Exit(code)


def describe_failure(exc: BaseException) -> str:
    """One line for an exception: the library's own say what was wrong; a driver's or
    the system's get their type name in front."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, (UnifiedStoreError, UsageProblem, CommandFailure, FileNotFoundError)):
        return text
    return f"{type(exc).__name__}: {text}"


TYPER_OUTCOMES: tuple[type[BaseException], ...] = (
    typer.Exit,
    typer.Abort,
    *(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"),
)
"""What Typer itself turns into an exit code and message: its Exit and Abort, and Click's
usage errors (Typer 0.29 carries its own Click as ``typer._click``; older releases use
``click``), found through the class Typer exports rather than by importing Click."""


def handled(command: F) -> F:
    """Run ``command``, turning every failure into one line on stderr and an exit code."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except TYPER_OUTCOMES:
            raise
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except (UsageProblem, InvalidConfigError) as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            raise fail(describe_failure(exc), EXIT_USAGE) from None
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            raise fail(describe_failure(exc), EXIT_FAILURE) from None

    return run  # type: ignore[return-value]
