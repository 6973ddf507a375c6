"""create_saver(url): one entry point for every backend (``registry`` says which)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    url = url or os.environ.get(ENV_URL) or None
    if url is None:
        entry = backend_named("sqlite")
        saver_class = entry.saver_class()
        _check_option_names(entry, saver_class, options)
        DEFAULT_DIRECTORY.mkdir(parents=True, exist_ok=True)
        return saver_class(DEFAULT_SQLITE_FILE, **options)
    entry = backend_for_scheme(urlsplit(url).scheme)
    saver_class = entry.saver_class()
    _check_option_names(entry, saver_class, options)
    if entry.conn_of_url is None:
        return saver_class(**options)
    return saver_class(entry.conn_of_url(url), **options)


def saver_option_names(entry: BackendEntry, saver_class: Callable[..., Any]) -> list[str]:
    """The keyword options ``entry``'s saver takes: the registry's (its own, then
    ``SAVER_OPTIONS``), then any other named parameter of its class (``ssl``...)."""
    parameters = list(inspect.signature(saver_class).parameters.values())
    if entry.conn_of_url is not None:
        parameters = parameters[1:]  # the connection, which the URL gives
    named = [
        p.name for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    registry = [option.name for option in (*entry.options, *SAVER_OPTIONS)]
    return list(dict.fromkeys([*registry, *named]))


def _check_option_names(
    entry: BackendEntry, saver_class: Callable[..., Any], options: dict[str, Any]
) -> None:
    """An option the saver does not take is named, with those it does, before the
    constructor would raise a bare TypeError."""
    accepted = saver_option_names(entry, saver_class)
    unknown = [name for name in options if name not in accepted]
    if unknown:
        raise InvalidConfigError(
            f"create_saver: {', '.join(map(repr, unknown))} "
            f"{'is not an option' if len(unknown) == 1 else 'are not options'} of the "
            f"{entry.name} saver; it takes: {', '.join(accepted)}"
        )


def _opened(url: str | None, make: str, options: dict[str, Any]) -> Any:
    """The store or cache (``make``) of the backend ``url`` names, as ``create_saver``."""
    url = url or os.environ.get(ENV_URL) or None
    entry: BackendEntry
    if url is None:
        entry = backend_named("sqlite")
        DEFAULT_DIRECTORY.mkdir(parents=True, exist_ok=True)
        return getattr(entry, make)()(DEFAULT_SQLITE_FILE, **options)
    entry = backend_for_scheme(urlsplit(url).scheme)
    cls = getattr(entry, make)()
    if entry.conn_of_url is None:
        return cls(**options)
    return cls(entry.conn_of_url(url), **options)


def create_store(url: str | None = None, **options: Any) -> Any:
    """LangGraph's long-term memory store (``BaseStore``) on the backend ``url`` names,
    in the same database, schema or prefix as that backend's saver; with none,
    ``$LANGGRAPH_UNIFIED_STORE_URL``, else the local SQLite file. Options: ``index``,
    ``ttl`` (a ``TTLConfig``), and the backend's own (``schema``, ``prefix`` ...)."""
    return _opened(url, "store_class", options)


def create_cache(url: str | None = None, **options: Any) -> Any:
    """LangGraph's node cache (``BaseCache``, for ``compile(cache=...)``) on the backend
    ``url`` names, as ``create_store``."""
    return _opened(url, "cache_class", options)
