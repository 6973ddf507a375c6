"""create_saver(url): one entry point for every backend (``registry`` says which)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .core.options import Option
from .core.saver import UnifiedCheckpointSaver
from .errors import InvalidConfigError
from .registry import BACKENDS, SAVER_OPTIONS, BackendEntry, backend_for_scheme, backend_named

ENV_URL = "LANGGRAPH_UNIFIED_STORE_URL"
DEFAULT_DIRECTORY = Path(".langgraph_unified_store")
DEFAULT_SQLITE_FILE = DEFAULT_DIRECTORY / "checkpoints.sqlite"
KNOWN_SCHEMES = tuple(
    url for entry in BACKENDS for url in (entry.example_url, *entry.alias_urls())
)


def create_saver(url: str | None = None, **options: Any) -> UnifiedCheckpointSaver:
    """A saver for ``url``; with none, ``$LANGGRAPH_UNIFIED_STORE_URL``, else a local SQLite file.

    Extra keyword options go to the saver (``serde``, ``encryption_key``, ``ttl`` ...),
    which checks them (``registry``).
    """
    saver: UnifiedCheckpointSaver = _opened(url, "saver", options)
    return saver


def option_names(
    entry: BackendEntry, cls: Callable[..., Any], registered: Iterable[Option] = ()
) -> list[str]:
    """The keyword options ``cls`` (``entry``'s saver, store or cache) takes: the
    registry's ``registered`` ones first (for a saver: its own, then ``SAVER_OPTIONS``,
    which its ``**options`` takes), then any other named parameter (``ssl``...)."""
    parameters = list(inspect.signature(cls).parameters.values())
    if entry.conn_of_url is not None:
        parameters = parameters[1:]  # the connection, which the URL gives
    named = [
        p.name for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    return list(dict.fromkeys([*(option.name for option in registered), *named]))


def _check_option_names(entry: BackendEntry, kind: str, accepted: list[str], options: dict[str, Any]) -> None:
    """An option the saver, store or cache (``kind``) does not take is named, with those
    it does, before the constructor would raise a bare TypeError."""
    unknown = [name for name in options if name not in accepted]
    if unknown:
        raise InvalidConfigError(
            f"create_{kind}: {', '.join(map(repr, unknown))} "
            f"{'is not an option' if len(unknown) == 1 else 'are not options'} of the "
            f"{entry.name} {kind}; it takes: {', '.join(accepted)}"
        )


def _opened(url: str | None, kind: str, options: dict[str, Any]) -> Any:
    """The saver, store or cache (``kind``) of the backend ``url`` names, its options
    checked first; with no URL, ``$LANGGRAPH_UNIFIED_STORE_URL``, else the local SQLite
    file (its directory made only once the options are known good)."""
    url = url or os.environ.get(ENV_URL) or None
    entry = backend_named("sqlite") if url is None else backend_for_scheme(urlsplit(url).scheme)
    cls: Callable[..., Any] = getattr(entry, f"{kind}_class")()
    registered = (*entry.options, *SAVER_OPTIONS) if kind == "saver" else ()
    _check_option_names(entry, kind, option_names(entry, cls, registered), options)
    if url is None:
        DEFAULT_DIRECTORY.mkdir(parents=True, exist_ok=True)
        return cls(DEFAULT_SQLITE_FILE, **options)
    if entry.conn_of_url is None:
        return cls(**options)
    return cls(entry.conn_of_url(url), **options)


def create_store(url: str | None = None, **options: Any) -> Any:
    """LangGraph's long-term memory store (``BaseStore``) on the backend ``url`` names,
    in the same database, schema or prefix as that backend's saver; with none,
    ``$LANGGRAPH_UNIFIED_STORE_URL``, else the local SQLite file. Options: ``index``,
    ``ttl`` (a ``TTLConfig``), and the backend's own (``schema``, ``prefix`` ...)."""
    return _opened(url, "store", options)


def create_cache(url: str | None = None, **options: Any) -> Any:
    """LangGraph's node cache (``BaseCache``, for ``compile(cache=...)``) on the backend
    ``url`` names, as ``create_store``; an option it does not take is named, with those
    it does."""
    return _opened(url, "cache", options)
