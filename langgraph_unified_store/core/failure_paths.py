"""Naming the part of a value that fails: the path an error message points the user to.

Split from ``core.codec``: serializing values and metadata both need to say *where* in a
large value the unserializable or unstorable part sits, and the search (a loop, safe on
any depth or cycle) is a concern of its own.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

# How much of a failing value's path an error message shows (levels, and chars per key).
PATH_SHOWN_LEVELS = 12
PATH_KEY_CHARS = 40


def _describe(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def locate_unserializable(serde: SerializerProtocol, value: Any, path: str) -> str:
    """The deepest path under ``path`` whose value fails to serialize, with its type."""

    def fails(child: Any) -> bool:
        try:
            serde.dumps_typed(child)
        except Exception:
            return True
        return False

    return locate_failure(fails, value, path)


def path_segment(key: Any) -> str:
    """A key as one step of a shown path, cut to ``PATH_KEY_CHARS``."""
    text = repr(key[:PATH_KEY_CHARS] if isinstance(key, (str, bytes)) else key)
    return text if len(text) <= PATH_KEY_CHARS else f"{text[: PATH_KEY_CHARS - 4]}...{text[-1]}"


def _children(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield f"[{path_segment(key)}]", child
        for key in value:
            yield f" key {path_segment(key)}", key
    elif isinstance(value, (list, tuple)):
        for index, child in enumerate(value):
            yield f"[{index}]", child
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        with contextlib.suppress(TypeError):
            for name, child in vars(value).items():
                yield f".{name}", child


def locate_failure(fails: Callable[[Any], bool], value: Any, path: str) -> str:
    """Where under ``path`` a value fails ``fails``: the path down to the deepest part that
    fails while none of its parts do, and that part's type.

    A loop, not recursion: a value nested 10,000 levels deep (which is why a serializer
    refused it) must not turn into a RecursionError here. A value that contains itself
    is named as such; a path longer than ``PATH_SHOWN_LEVELS`` is shown cut in the middle.
    """
    segments: list[str] = []
    on_path: set[int] = {id(value)}
    node = value
    loops = False
    while True:
        found = next(((seg, child) for seg, child in _children(node) if fails(child)), None)
        if found is None:
            break
        segments.append(found[0])
        node = found[1]
        if id(node) in on_path:
            loops = True
            break
        on_path.add(id(node))
    if len(segments) > PATH_SHOWN_LEVELS:
        head, tail = PATH_SHOWN_LEVELS * 2 // 3, PATH_SHOWN_LEVELS // 3
        hidden = len(segments) - head - tail
        shown = "".join(segments[:head]) + f"...({hidden} levels)..." + "".join(segments[-tail:])
    else:
        shown = "".join(segments)
    depth = f", {len(segments)} levels deep" if len(segments) > PATH_SHOWN_LEVELS else ""
    cycle = ", which contains itself" if loops else ""
    return f"{path}{shown} (a {_describe(node)}{depth}{cycle})"


def non_finite_path(value: Any, path: str) -> str | None:
    """Where in JSON-able data a float is NaN or infinite (iteratively, any depth)."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return where
        if isinstance(node, Mapping):
            stack.extend((child, f"{where}[{path_segment(k)}]") for k, child in node.items())
        elif isinstance(node, (list, tuple)):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(node))
    return None


def nul_path(value: Any, path: str) -> str | None:
    """Where in decoded JSON a string (key or value) holds a NUL character."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return where
        elif isinstance(node, dict):
            for key, child in node.items():
                if "\x00" in key:
                    return f"{where} key {path_segment(key)}"
                stack.append((child, f"{where}[{path_segment(key)}]"))
        elif isinstance(node, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(node))
    return None
