"""The long-term memory store's rules, as pure functions: what a namespace, a value and a
filter may be, when a value matches a filter, which namespaces a listing keeps, and how
vector search ranks. Written once; every store backend relies on them.

The rules are those of LangGraph's ``InMemoryStore``, with three deliberate differences,
each the behaviour of the official persistent stores or safer:
- a put keeps the item's ``created_at`` (InMemoryStore resets it);
- a search without a query lists items newest ``updated_at`` first, then by namespace and
  key (InMemoryStore: insertion order);
- a range operator on a value ``float()`` cannot read matches nothing (InMemoryStore raises
  from deep inside ``float()``); numbers, booleans and numeric strings compare as there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from langgraph.store.base import InvalidNamespaceError, MatchCondition

from ..errors import InvalidConfigError
from .validate import show, text_problem

OPERATORS: Final = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
RANGE_OPERATORS: Final = ("$gt", "$gte", "$lt", "$lte")
NAMESPACE_SEPARATOR: Final = "."
"""Labels never hold it, so a namespace joined by it is one unambiguous string (and a
namespace prefix is a string prefix ending at a separator)."""


class StoreNamespaceError(InvalidConfigError, InvalidNamespaceError):
    """A namespace the store refuses: both our InvalidConfigError and LangGraph's
    InvalidNamespaceError, so either ``except`` catches it."""


# -- namespaces ------------------------------------------------------------------------------


def check_namespace(namespace: Any, operation: str, *, prefix: bool = False) -> tuple[str, ...]:
    """A namespace as a tuple of labels; StoreNamespaceError naming what is wrong."""
    if not isinstance(namespace, tuple):
        raise StoreNamespaceError(
            f"{operation}: a namespace must be a tuple of strings, not {show(namespace)}"
        )
    if not namespace and not prefix:
        raise StoreNamespaceError(f"{operation}: the namespace cannot be empty")
    for label in namespace:
        if not isinstance(label, str):
            raise StoreNamespaceError(
                f"{operation}: namespace label {show(label)} in {namespace!r} is not a string"
            )
        if not label and not prefix:
            raise StoreNamespaceError(f"{operation}: namespace {namespace!r} has an empty label")
        if NAMESPACE_SEPARATOR in label:
            raise StoreNamespaceError(
                f"{operation}: namespace label {label!r} contains {NAMESPACE_SEPARATOR!r}"
            )
        problem = text_problem(label)
        if problem:
            raise StoreNamespaceError(f"{operation}: namespace label {label!r} {problem}")
    if namespace and namespace[0] == "langgraph" and not prefix:
        raise StoreNamespaceError(f"{operation}: the root label 'langgraph' is reserved")
    return namespace


def namespace_text(namespace: Sequence[str]) -> str:
    return NAMESPACE_SEPARATOR.join(namespace)


def namespace_of(text: str) -> tuple[str, ...]:
    return tuple(text.split(NAMESPACE_SEPARATOR))


def under_prefix(namespace: Sequence[str], prefix: Sequence[str]) -> bool:
    return tuple(namespace[: len(prefix)]) == tuple(prefix)


def prefix_range(prefix: Sequence[str]) -> tuple[str, str, str] | None:
    """For a backend that orders namespace texts: the prefix itself, and the half-open
    range [low, high) of every namespace strictly under it (None: the whole store)."""
    if not prefix:
        return None
    text = namespace_text(prefix)
    return text, text + NAMESPACE_SEPARATOR, text + chr(ord(NAMESPACE_SEPARATOR) + 1)


def namespace_matches(namespace: Sequence[str], conditions: Iterable[MatchCondition]) -> bool:
    """``list_namespaces``' match conditions: a prefix or suffix, ``*`` matching any label."""
    for condition in conditions:
        path = tuple(condition.path)
        if len(namespace) < len(path):
            return False
        if condition.match_type == "prefix":
            pairs = zip(namespace, path, strict=False)
        elif condition.match_type == "suffix":
            pairs = zip(reversed(namespace), reversed(path), strict=False)
        else:
            raise InvalidConfigError(
                f"list_namespaces: unknown match type {show(condition.match_type)}; "
                "use 'prefix' or 'suffix'"
            )
        if any(want != "*" and label != want for label, want in pairs):
            return False
    return True


def listed_namespaces(
    namespaces: Iterable[tuple[str, ...]],
    conditions: Sequence[MatchCondition],
    max_depth: int | None,
    offset: int,
    limit: int,
) -> list[tuple[str, ...]]:
    """What ``list_namespaces`` returns of the stored namespaces: matching, cut to
    ``max_depth`` and de-duplicated, sorted as tuples, then sliced."""
    kept = {
        namespace if max_depth is None else namespace[:max_depth]
        for namespace in namespaces
        if namespace_matches(namespace, conditions)
    }
    return sorted(kept)[offset : offset + limit]


# -- values ----------------------------------------------------------------------------------


def encode_value(value: Any, namespace: tuple[str, ...], key: str) -> bytes:
    """A put's value as stored: a JSON object, encoded once here."""
    exact = type(value) is dict  # the usual case: no ABC check, no copy before dumps
    if not exact and not isinstance(value, Mapping):
        raise InvalidConfigError(
            f"put {namespace!r} / {key!r}: the value must be a JSON object (a dict), not {show(value)}"
        )
    try:
        data = orjson.dumps(value if exact else dict(value))
    except TypeError as exc:
        raise InvalidConfigError(
            f"put {namespace!r} / {key!r}: the value is not JSON ({exc})"
        ) from None
    if b"null" in data:  # orjson writes NaN and infinities as null, silently
        where = _non_finite_at(value)
        if where is not None:
            raise InvalidConfigError(
                f"put {namespace!r} / {key!r}: the value is not JSON (a NaN or infinity at {where!r})"
            )
    return data


def nul_at(value: Any) -> str | None:
    """The path of a string holding NUL in a value (a key or a string value), or None:
    for backends whose JSON cannot hold one exactly (SQLite's JSON functions cut the
    string there, PostgreSQL's jsonb refuses it)."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return ".".join(path)
        elif isinstance(item, Mapping):
            for k, v in item.items():
                if "\x00" in str(k):
                    return ".".join((*path, str(k)))
                stack.append(((*path, str(k)), v))
        elif isinstance(item, (list, tuple)):
            stack.extend(((*path, str(i)), v) for i, v in enumerate(item))
    return None


def _non_finite_at(value: Any) -> str | None:
    """The path of a NaN or an infinity in a value, or None."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return ".".join(path)
        elif isinstance(item, Mapping):
            stack.extend(((*path, str(k)), v) for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend(((*path, str(i)), v) for i, v in enumerate(item))
    return None


def decode_value(data: bytes | str, item: tuple[tuple[str, ...], str] | None = None) -> dict[str, Any]:
    """A stored value back as a dict; CorruptDataError (naming the item when given) for
    bytes that are not a JSON object, such as a planted ``1e400`` or a cut-off write."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _corrupt_item(item, f"is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise _corrupt_item(item, "is not a JSON object")
    return value


def _corrupt_item(item: tuple[tuple[str, ...], str] | None, problem: str) -> Exception:
    from ..errors import CorruptDataError

    where = "" if item is None else f" {item[0]!r} / {item[1]!r}"
    return CorruptDataError(f"stored store item{where} {problem}")


# -- filters ---------------------------------------------------------------------------------


NUMBER_SLACK: Final = 1e-9
"""How far a ``NumberRange`` widens its bounds, relative to the operand: far more than the
few ulps by which a database's reading of a stored number can differ from Python's
``float()``, so a backend that compares its own way still keeps every match."""


@dataclass(frozen=True, slots=True)
class NumberRange:
    """A hint a backend may push down for one field (the core always decides): keep the
    items whose value at ``path`` is a JSON string or boolean (``float()`` may read those),
    or a number within ``[low, high]`` (None: unbounded). Items with nothing, null, an
    array or an object there can go: no range or numeric equality matches them."""

    path: tuple[str, ...]
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class CompiledFilter:
    """A search filter, checked. ``equals`` is the part every backend pushes down exactly
    (top-level keys whose value must be this string; never one holding NUL, which SQLite's
    JSON functions cut short, so the core compares those) and ``exact`` says whether that part
    is the whole filter (then the backend's page is the answer). ``ranges`` are hints a
    backend may push down to return fewer candidates; ``matches`` always decides."""

    raw: Mapping[str, Any]
    equals: dict[str, str]
    exact: bool
    ranges: tuple[NumberRange, ...] = ()

    def matches(self, value: Mapping[str, Any]) -> bool:
        for key, wanted in self.raw.items():  # noqa: SIM110 - a loop: no generator per item
            if not _compare(value.get(key), wanted):
                return False
        return True


def compile_filter(filter: Any, operation: str = "search") -> CompiledFilter:
    if filter is None:
        return CompiledFilter({}, {}, True)
    if not isinstance(filter, Mapping):
        raise InvalidConfigError(f"{operation}: filter must be a mapping, not {show(filter)}")
    _check_filter(filter, operation, ())
    equals: dict[str, str] = {}
    ranges: list[NumberRange] = []
    for key, wanted in filter.items():
        if isinstance(wanted, Mapping) and set(wanted) == {"$eq"}:
            wanted = wanted["$eq"]
        if isinstance(wanted, str) and "\x00" not in wanted:
            equals[key] = wanted
        elif not isinstance(wanted, str):
            ranges.extend(_number_ranges((key,), wanted))
    return CompiledFilter(filter, equals, len(equals) == len(filter), tuple(ranges))


def _number_ranges(path: tuple[str, ...], wanted: Any) -> list[NumberRange]:
    """The ranges a field's condition implies, widened by NUMBER_SLACK: from ``$gt`` and
    the like, and from equality to a number; nested field dicts give longer paths."""
    if isinstance(wanted, Mapping):
        if not any(isinstance(k, str) and k.startswith("$") for k in wanted):
            return [r for k, v in wanted.items() for r in _number_ranges((*path, k), v)]
        low: float | None = None
        high: float | None = None
        for operator, operand in wanted.items():
            number = _finite(operand)
            if operator == "$ne" or number is None or (operator == "$eq" and not _plain_number(operand)):
                continue
            slack = abs(number) * NUMBER_SLACK + 1e-300
            if operator in ("$gt", "$gte", "$eq"):
                low = number - slack if low is None else max(low, number - slack)
            if operator in ("$lt", "$lte", "$eq"):
                high = number + slack if high is None else min(high, number + slack)
        return [] if low is None and high is None else [NumberRange(path, low, high)]
    number = _finite(wanted) if _plain_number(wanted) else None
    if number is None:
        return []
    slack = abs(number) * NUMBER_SLACK + 1e-300
    return [NumberRange(path, number - slack, number + slack)]


def _plain_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: Any) -> float | None:
    """``float(value)`` as the range rule reads an operand, or None where it gives no
    finite number (then that operator is not pushed down)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _check_filter(filter: Mapping[Any, Any], operation: str, path: tuple[str, ...]) -> None:
    """Top-level keys are always field names (as ``InMemoryStore`` reads them, so a key
    like ``$.x`` is a field, never syntax); below a field, a dict with a ``$`` key is a
    dict of operators only."""
    operators = bool(path) and any(isinstance(k, str) and k.startswith("$") for k in filter)
    for key, wanted in filter.items():
        where = ".".join((*path, str(key)))
        if not isinstance(key, str):
            raise InvalidConfigError(f"{operation}: filter keys must be strings, not {show(key)}")
        problem = text_problem(key)
        if problem:
            raise InvalidConfigError(f"{operation}: filter key {key!r} {problem}")
        if operators:
            if key not in OPERATORS:
                what = "unknown filter operator" if key.startswith("$") else "field among operators"
                raise InvalidConfigError(
                    f"{operation}: {what} {key!r} at {where!r}; "
                    f"use one of {', '.join(OPERATORS)}"
                )
            continue
        if isinstance(wanted, Mapping):
            _check_filter(wanted, operation, (*path, key))
        elif isinstance(wanted, float) and not math.isfinite(wanted):
            raise InvalidConfigError(f"{operation}: filter value at {where!r} must be finite")


_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def _compare(value: Any, wanted: Any) -> bool:
    if type(wanted) in _SCALARS:  # neither a Mapping nor a sequence: skip the ABC checks
        return bool(value == wanted)
    if isinstance(wanted, Mapping):
        if any(isinstance(k, str) and k.startswith("$") for k in wanted):
            return all(_operator(value, op, operand) for op, operand in wanted.items())
        if not isinstance(value, Mapping):
            return False
        return all(_compare(value.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, (list, tuple)):
        return (
            isinstance(value, (list, tuple))
            and len(value) == len(wanted)
            and all(_compare(v, w) for v, w in zip(value, wanted, strict=True))
        )
    return bool(value == wanted)


def _operator(value: Any, operator: str, operand: Any) -> bool:
    if operator == "$eq":
        return bool(value == operand)
    if operator == "$ne":
        return bool(value != operand)
    try:
        left, right = float(value), float(operand)
    except (TypeError, ValueError, OverflowError):
        return False
    if operator == "$gt":
        return left > right
    if operator == "$gte":
        return left >= right
    if operator == "$lt":
        return left < right
    return left <= right  # $lte: compile_filter admitted no other


# -- ranking ---------------------------------------------------------------------------------


def unranked_order(updated_at: float, namespace: Sequence[str], key: str) -> tuple[float, str, str]:
    """The sort key of a search without a query: newest first, then namespace and key."""
    return (-updated_at, namespace_text(namespace), key)


def cosine_scores(query: Sequence[float], vectors: Sequence[Sequence[float]]) -> list[float]:
    """Cosine similarity of ``query`` with each vector (0 for a zero vector)."""
    if not vectors:
        return []
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy ships with the vector extras
        return [_cosine(query, v) for v in vectors]
    q = np.asarray(query, dtype=float)
    m = np.asarray(vectors, dtype=float)
    norms = np.linalg.norm(m, axis=1) * np.linalg.norm(q)
    dots = m @ q
    scores = np.divide(dots, norms, out=np.zeros_like(dots), where=norms != 0)
    return [float(s) for s in scores]


def _cosine(query: Sequence[float], vector: Sequence[float]) -> float:
    dot = sum(a * b for a, b in zip(query, vector, strict=False))
    norm = math.sqrt(sum(a * a for a in query)) * math.sqrt(sum(b * b for b in vector))
    return dot / norm if norm else 0.0
