"""Decoding each stored list item once per ``list`` call, and handing out fresh copies.

A thread's checkpoints share their messages as stored items (``core.codec``), so a
``list`` over a 400-checkpoint chat would otherwise deserialize the same message
hundreds of times. ``DecodedItems`` keeps, for one call, the value each item decoded
to, private (never returned), and every later use gets ``fresh_copy`` of it: a new
object all the way down to immutable leaves, so mutating a message of one returned
checkpoint never shows in another.

Measured on 300 LangChain chat messages (process CPU, medians; benchmarks/history.py
measures the whole effect): decoding them with the safe serde takes
2.3-2.9 ms, ``fresh_copy`` 1.4-1.7 ms (0.5-0.75x: the safe serde already builds a
message by setting its ``__dict__`` from the unpacked map, near the floor of making one),
``model_copy(deep=True)`` 3.7-6.0 ms, and a shallow ``model_copy`` 0.7-1.4 ms but shares
the messages' dicts. So a hit saves at most half a decode. A value of a type this
module does not know how to copy (anything but plain containers, scalars and pydantic
models) is not cached: it is decoded at every use, as before.

Only the exact bytes decode to a cached value: an entry remembers the item's type and
plaintext and a use with different bytes under the same reference decodes afresh, so
the cache can never change what a read returns. Read budgets are charged before this
(``Codec._expand``), hits and misses alike.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from collections.abc import Callable
from typing import Any, Final

from pydantic import BaseModel

_ATOMS: Final[frozenset[type]] = frozenset(
    {
        str,
        int,
        float,
        bool,
        type(None),
        bytes,
        complex,
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        datetime.timezone,
        uuid.UUID,
        decimal.Decimal,
    }
)

_new: Final = object.__new__
_set: Final = object.__setattr__


class NotCopyable(Exception):
    """A decoded value holds something ``fresh_copy`` cannot copy safely."""


def _copy_model(value: BaseModel) -> BaseModel:
    """A pydantic model rebuilt field by field, as ``BaseModel.__copy__`` does, with
    every mutable field value copied too (no validation: the value was valid)."""
    fields = value.__dict__.copy()
    for key, field in fields.items():
        kind = type(field)
        if kind in _ATOMS:
            continue
        # Inline for the dicts and lists every message has, most of them empty.
        if kind is dict:
            fields[key] = _copy_dict(field) if field else {}
        elif kind is list:
            fields[key] = _copy_list(field) if field else []
        else:
            fields[key] = fresh_copy(field)
    new = _new(type(value))
    _set(new, "__dict__", fields)
    _set(new, "__pydantic_fields_set__", value.__pydantic_fields_set__.copy())
    extra = value.__pydantic_extra__
    _set(new, "__pydantic_extra__", None if extra is None else _copy_dict(extra) if extra else {})
    private = value.__pydantic_private__
    _set(new, "__pydantic_private__", None if private is None else fresh_copy(private))
    return new


def _copy_list(value: list[Any]) -> list[Any]:
    return [item if type(item) in _ATOMS else fresh_copy(item) for item in value]


def _copy_dict(value: dict[Any, Any]) -> dict[Any, Any]:
    # Keys are hashable, hence treated as immutable (as copy.deepcopy's users assume).
    return {k: v if type(v) in _ATOMS else fresh_copy(v) for k, v in value.items()}


def _copy_tuple(value: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(item if type(item) in _ATOMS else fresh_copy(item) for item in value)


def _share(value: Any) -> Any:
    return value


def _refuse(value: Any) -> Any:
    raise NotCopyable(type(value).__qualname__)


_COPIERS: dict[type, Callable[[Any], Any]] = {
    list: _copy_list,
    dict: _copy_dict,
    tuple: _copy_tuple,
    set: set,  # elements are hashable, shared like dict keys
    frozenset: _share,
}


def _copier(kind: type) -> Callable[[Any], Any]:
    """How to copy a value of ``kind``, learnt once per type (``_refuse`` if unknown)."""
    if issubclass(kind, enum.Enum):
        return _share
    if issubclass(kind, BaseModel) and "__copy__" not in vars(kind) and not any(
        "__copy__" in vars(base) or "__deepcopy__" in vars(base)
        for base in kind.__mro__
        if base is not BaseModel and base is not object
    ):
        return _copy_model
    return _refuse


def fresh_copy(value: Any) -> Any:
    """``value`` with every mutable object in it new: lists, dicts, sets, tuples holding
    them and pydantic models (LangChain messages) are rebuilt, immutable leaves shared.
    NotCopyable if it holds anything else (then decode it again instead)."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    copier = _COPIERS.get(kind)
    if copier is None:
        copier = _COPIERS[kind] = _copier(kind)
    return copier(value)


class DecodedItems:
    """What each stored item decoded to during one ``list`` call, keyed by reference."""

    __slots__ = ("_decoded", "hits", "misses")

    def __init__(self) -> None:
        self._decoded: dict[bytes, tuple[str, bytes, Any]] = {}
        self.hits = 0
        self.misses = 0

    def take(self, ref: bytes, type_: str, body: bytes) -> tuple[bool, Any]:
        """(True, a fresh copy) when ``ref`` decoded from exactly these bytes before."""
        entry = self._decoded.get(ref)
        if entry is None or entry[0] != type_ or entry[1] != body:
            self.misses += 1
            return False, None
        self.hits += 1
        return True, fresh_copy(entry[2])

    def keep(self, ref: bytes, type_: str, body: bytes, value: Any) -> None:
        """Remember what ``ref`` decoded to (a private copy: ``value`` is returned)."""
        try:
            private = fresh_copy(value)
        except NotCopyable:
            return
        self._decoded[ref] = (type_, body, private)
