"""Safe-by-default serialization.

``SafeSerializer`` is LangGraph's ``JsonPlusSerializer`` with one change: reading
stored data may only build *data types*. A stored reference to a type is honoured
when it is one of LangGraph's curated safe types, something the graph or user
allowed through ``with_allowlist``, or a class already imported by the process
that is a pydantic model, dataclass, enum or NamedTuple. Anything else (``os.system``,
``subprocess.Popen``, ``builtins.eval``, ``functools.partial``) raises
``UnsafeDeserializationError`` naming the type. No module is ever imported because
stored data asked for it, and nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import ormsgpack
from langgraph.checkpoint.serde import _msgpack as lg_msgpack
from langgraph.checkpoint.serde.base import CipherProtocol
from langgraph.checkpoint.serde.jsonplus import (
    EXT_CONSTRUCTOR_KW_ARGS,
    EXT_CONSTRUCTOR_POS_ARGS,
    EXT_CONSTRUCTOR_SINGLE_ARG,
    EXT_DELTA_SNAPSHOT,
    EXT_METHOD_SINGLE_ARG,
    EXT_NUMPY_ARRAY,
    EXT_PYDANTIC_V1,
    EXT_PYDANTIC_V2,
    JsonPlusSerializer,
)
from langgraph.checkpoint.serde.jsonplus import _msgpack_default as _lg_msgpack_default
from langgraph.checkpoint.serde.jsonplus import _option as _PACK_OPTIONS
from langgraph.checkpoint.serde.types import _DeltaSnapshot

from ..errors import CorruptDataError, UnsafeDeserializationError, missing_extra
from .msgpack_split import nesting_depth

_UNPACK_OPTIONS = ormsgpack.OPT_NON_STR_KEYS
# Nesting is bounded for the C stack's sake: ormsgpack refuses more than ~1022 nested
# arrays per unpack, but every extension value (a model inside a model...) is a new
# unpack, so planted bytes nesting 1000 arrays in each of 14 extensions (140 KB) crash
# the process (SIGSEGV). Extension payloads below the first levels are measured before
# they are unpacked, and all levels together may nest at most MAX_NESTING deep.
MAX_EXT_DEPTH = 64
UNMEASURED_EXT_LEVELS = 3
UNPACK_MAX_NESTING = 1024
MAX_NESTING = 5000


def _is_data_type(obj: Any) -> bool:
    if not isinstance(obj, type):
        return False
    if dataclasses.is_dataclass(obj) or issubclass(obj, enum.Enum):
        return True
    if issubclass(obj, tuple) and hasattr(obj, "_fields"):
        return True
    try:
        import pydantic

        if issubclass(obj, pydantic.BaseModel):
            return True
        if issubclass(obj, pydantic.v1.BaseModel):
            return True
    except ImportError:  # pragma: no cover - pydantic is a dependency
        pass
    return False


def _resolve_loaded(module: str, name: str) -> Any:
    """Look a name up in an already-imported module; never import."""
    mod = sys.modules.get(module)
    if mod is None:
        return None
    obj: Any = mod
    for part in name.split("."):
        obj = obj.__dict__.get(part) if hasattr(obj, "__dict__") else None
        if obj is None:
            return None
    return obj


# LangChain's core message classes: plain fields (str, list, dict, TypedDicts), no nested
# models, so the fields LangGraph dumped rebuild the identical message without re-running
# validation, which costs most of the time of reading a long chat back.
_PLAIN_MESSAGE_TYPES: frozenset[tuple[str, str]] = frozenset(
    {
        ("langchain_core.messages.human", "HumanMessage"),
        ("langchain_core.messages.ai", "AIMessage"),
        ("langchain_core.messages.system", "SystemMessage"),
        ("langchain_core.messages.tool", "ToolMessage"),
    }
)


_MESSAGE_FIELDS: dict[type, frozenset[str]] = {}


def _construct_message(cls: Any, values: dict[str, Any]) -> Any:
    """``cls.model_construct(**values)`` for a core message whose stored fields are
    exactly its fields: the same four attributes, set directly (3x faster than pydantic's
    Python loop over the fields). Anything else goes through model_construct."""
    fields = _MESSAGE_FIELDS.get(cls)
    if fields is None:
        fields = _MESSAGE_FIELDS[cls] = frozenset(cls.model_fields)
    if cls.__private_attributes__ or type(values) is not dict or values.keys() != fields:
        return cls.model_construct(**values)
    message = cls.__new__(cls)
    object.__setattr__(message, "__dict__", values)
    object.__setattr__(message, "__pydantic_fields_set__", set(values))
    object.__setattr__(
        message, "__pydantic_extra__", {} if cls.model_config.get("extra") == "allow" else None
    )
    object.__setattr__(message, "__pydantic_private__", None)
    return message


class SafeExtHook:
    """The msgpack ext hook that decides which stored types may be built."""

    def __init__(self, allowlist: Iterable[tuple[str, ...]] = ()) -> None:
        self.allowlist: frozenset[tuple[str, ...]] = frozenset(
            tuple(entry) for entry in allowlist
        )
        # Resolved (module, name) -> class; only for names that passed the checks below.
        self._resolved: dict[tuple[str, str], Any] = {}

    def _type(self, module: str, name: str) -> Any:
        key = (module, name)
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        obj = self._check(module, name)
        self._resolved[key] = obj
        return obj

    def _check(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in lg_msgpack.SAFE_MSGPACK_TYPES or key in self.allowlist:
            obj = _resolve_loaded(module, name)
            if obj is None:
                # Allowed explicitly, so importing its module is what the user asked for.
                import importlib

                obj = getattr(importlib.import_module(module), name)
            return obj
        obj = _resolve_loaded(module, name)
        if obj is not None and _is_data_type(obj):
            return obj
        raise UnsafeDeserializationError(
            f"refusing to deserialize {module}.{name}: it is not a data type "
            "(pydantic model, dataclass, enum, NamedTuple or a LangGraph core type) "
            f"and not allowed; if you trust it, add ({module!r}, {name!r}) with "
            "saver.with_allowlist(...)"
        )

    def _unpack(self, data: bytes) -> Any:
        state = _refusal
        depth = state.depth
        if depth >= UNMEASURED_EXT_LEVELS:
            return self._unpack_measured(data, state, depth)
        state.depth = depth + 1
        try:
            return ormsgpack.unpackb(data, ext_hook=self, option=_UNPACK_OPTIONS)
        finally:
            state.depth = depth

    def _unpack_measured(self, data: bytes, state: _Refusal, depth: int) -> Any:
        """A deeper extension payload: unpacked only if all levels together stay within
        MAX_NESTING (each unmeasured level counted as deep as ormsgpack allows)."""
        room = MAX_NESTING - UNMEASURED_EXT_LEVELS * UNPACK_MAX_NESTING - state.nesting
        nesting = nesting_depth(data, room)
        if depth >= MAX_EXT_DEPTH or nesting > room:
            raise CorruptDataError(
                f"stored value nests deeper than {MAX_NESTING} levels "
                f"(or {MAX_EXT_DEPTH} extension types)"
            )
        state.depth = depth + 1
        state.nesting += nesting
        try:
            return ormsgpack.unpackb(data, ext_hook=self, option=_UNPACK_OPTIONS)
        finally:
            state.depth = depth
            state.nesting -= nesting

    def unpack(self, data: bytes) -> Any:
        """Unpack ``data``, re-raising the hook's own refusal.

        ormsgpack replaces any exception raised inside an ext hook with a bare
        ``ValueError("ext_hook failed")``; the refusal is kept aside so that the caller
        sees which type was refused.
        """
        _refusal.error = None
        _refusal.depth = _refusal.nesting = 0
        try:
            return self._unpack(data)
        except Exception:
            refusal = _refusal.error
            _refusal.error = None
            if refusal is not None:
                raise refusal from None
            raise

    def __call__(self, code: int, data: bytes) -> Any:
        try:
            return self._build(code, data)
        except (UnsafeDeserializationError, CorruptDataError) as exc:
            _refusal.error = exc
            raise

    def _build(self, code: int, data: bytes) -> Any:
        if code == EXT_DELTA_SNAPSHOT:
            return _DeltaSnapshot(self._unpack(data))
        if code == EXT_NUMPY_ARRAY:
            import numpy as np

            dtype, shape, order, buf = self._unpack(data)
            return np.frombuffer(buf, dtype=np.dtype(dtype)).reshape(shape, order=order)
        if code not in (
            EXT_CONSTRUCTOR_SINGLE_ARG,
            EXT_CONSTRUCTOR_POS_ARGS,
            EXT_CONSTRUCTOR_KW_ARGS,
            EXT_METHOD_SINGLE_ARG,
            EXT_PYDANTIC_V1,
            EXT_PYDANTIC_V2,
        ):
            raise UnsafeDeserializationError(f"unknown msgpack extension code {code}")
        payload = self._unpack(data)
        module, name = payload[0], payload[1]
        if code == EXT_METHOD_SINGLE_ARG:
            method = payload[3]
            if (module, name, method) not in lg_msgpack.SAFE_MSGPACK_METHODS:
                raise UnsafeDeserializationError(
                    f"refusing to deserialize {module}.{name}.{method}: not an allowed method"
                )
            return getattr(self._type(module, name), method)(payload[2])
        cls = self._type(module, name)
        if code == EXT_CONSTRUCTOR_SINGLE_ARG:
            return cls(payload[2])
        if code == EXT_CONSTRUCTOR_POS_ARGS:
            if (module, name) == ("langgraph.types", "Send"):
                args = payload[2]
                return cls(*args[:2]) if len(args) == 2 else cls(args[0], args[1], timeout=args[2])
            return cls(*payload[2])
        if code == EXT_CONSTRUCTOR_KW_ARGS:
            return cls(**payload[2])
        if code == EXT_PYDANTIC_V2 and (module, name) in _PLAIN_MESSAGE_TYPES:
            return _construct_message(cls, payload[2])
        # pydantic models: validate, and fall back to construct like LangGraph does.
        try:
            return cls(**payload[2])
        except Exception:
            builder: Callable[..., Any] = getattr(cls, "model_construct", None) or cls.construct
            return builder(**payload[2])


class _Refusal(threading.local):
    error: UnsafeDeserializationError | CorruptDataError | None = None
    depth = 0
    nesting = 0


_refusal = _Refusal()


def _refuse_json_constructors(value: Any) -> None:
    """Refuse LangChain's JSON ``{"lc": N, "type": "constructor", "id": [...]}`` objects,
    whatever the envelope version (LangGraph revives both lc 1 and lc 2)."""
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            if "lc" in current and current.get("type") == "constructor":
                path = current.get("id")
                name = ".".join(map(str, path)) if isinstance(path, list) else repr(path)
                raise UnsafeDeserializationError(
                    f"refusing to deserialize a stored JSON constructor of {name}: "
                    "JSON data is read as plain data only"
                )
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)


def _fast_msgpack_default(obj: Any) -> Any:
    """LangGraph's msgpack default, with a shortcut for the core message classes.

    ``model_dump()`` of HumanMessage, AIMessage, SystemMessage and ToolMessage is their
    ``__dict__`` (plain fields, no nested models), so packing ``__dict__`` gives the very
    same bytes at a third of the cost. Subclasses and messages with extra attributes take
    LangGraph's own path.
    """
    cls = type(obj)
    if (cls.__module__, cls.__name__) in _PLAIN_MESSAGE_TYPES and not obj.__pydantic_extra__:
        return ormsgpack.Ext(
            EXT_PYDANTIC_V2,
            ormsgpack.packb(
                (cls.__module__, cls.__name__, obj.__dict__, "model_validate_json"),
                default=_fast_msgpack_default,
                option=_PACK_OPTIONS,
            ),
        )
    return _lg_msgpack_default(obj)


class SafeSerializer(JsonPlusSerializer):
    """JsonPlusSerializer that only ever builds data types when reading (see module doc)."""

    def __init__(self, allowlist: Iterable[tuple[str, ...]] = ()) -> None:
        self._hook = SafeExtHook(allowlist)
        super().__init__(pickle_fallback=False, __unpack_ext_hook__=self._hook)

    def with_msgpack_allowlist(
        self, extra_allowlist: Iterable[tuple[str, ...] | type]
    ) -> SafeSerializer:
        extra: set[tuple[str, ...]] = set()
        for entry in extra_allowlist:
            if isinstance(entry, type):
                extra.add((entry.__module__, entry.__qualname__))
            else:
                extra.add(tuple(entry))
        if extra <= self._hook.allowlist:
            return self
        return SafeSerializer(self._hook.allowlist | extra)

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        if obj is None or isinstance(obj, (bytes, bytearray)):
            return super().dumps_typed(obj)
        # Same format as JsonPlusSerializer (see _fast_msgpack_default), written faster.
        return "msgpack", ormsgpack.packb(obj, default=_fast_msgpack_default, option=_PACK_OPTIONS)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_, payload = data
        if type_ == "json":
            # Plain JSON data only: no LangChain "constructor" revival (CVE-2025-64439).
            value = orjson.loads(payload)
            _refuse_json_constructors(value)
            return value
        if type_ == "pickle":
            raise UnsafeDeserializationError("refusing to unpickle stored data")
        if type_ == "msgpack":
            return self._hook.unpack(payload)
        return super().loads_typed(data)


class AesGcmCipher(CipherProtocol):
    """AES-256-GCM through the ``cryptography`` package; a fresh nonce per value."""

    name = "aesgcm"

    def __init__(self, key: bytes | str) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:
            raise missing_extra("encryption", "cryptography") from None
        raw = key.encode() if isinstance(key, str) else bytes(key)
        if len(raw) not in (16, 24, 32):
            # Any passphrase works: stretch it to a 256-bit key.
            raw = hashlib.blake2b(raw, digest_size=32, person=b"lus-aes-key").digest()
        self._aead = AESGCM(raw)
        self.hash_key = hashlib.blake2b(raw, digest_size=32, person=b"lus-item-ref").digest()

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(12)
        return self.name, nonce + self._aead.encrypt(nonce, plaintext, None)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        if ciphername != self.name:
            raise UnsafeDeserializationError(f"unknown cipher {ciphername!r}")
        return self._aead.decrypt(ciphertext[:12], ciphertext[12:], None)

    def __repr__(self) -> str:
        return "AesGcmCipher(key=<hidden>)"
