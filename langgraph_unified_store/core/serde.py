"""Safe-by-default serialization, and encryption that binds each value to its place.

``SafeSerializer`` is LangGraph's ``JsonPlusSerializer`` with one change: reading
stored data may only build *data types*. A stored reference to a type is honoured
when it names a class already loaded in the process (``sys.modules``) that is one of
LangGraph's curated safe types, something the user allowed through ``with_allowlist``,
or a pydantic model, dataclass, enum or NamedTuple. Anything else (``os.system``,
``subprocess.Popen``, ``builtins.eval``, ``functools.partial``) raises
``UnsafeDeserializationError`` naming the type. A model or dataclass that cannot be
found at all (defined inside a function, renamed, its module not imported) is read as
its fields, a dict, with one logged warning per type. No module is ever imported
because stored data asked for it, and nothing is ever unpickled.

Whatever ``serde`` a saver is given is read through these rules (``resolve_serde``):
LangGraph's ``JsonPlusSerializer`` and ``EncryptedSerializer`` are taken apart (the
cipher and allowlist kept, the reading replaced); only a serializer of unknown kind is
used as it is, with an ``UnsafeSerializerWarning``.

With encryption, every stored value is sealed by a ``Sealer`` with its *place* (thread,
namespace, checkpoint, channel...) as associated data, so a value copied elsewhere
fails to open, and an unencrypted value is refused. The ciphers and sealing live in
``core.encryption``; their names are re-exported here, where they were first defined.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import ormsgpack
from langgraph.checkpoint.serde import _msgpack as lg_msgpack
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
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

from ..errors import (
    CorruptDataError,
    InvalidConfigError,
    UnsafeDeserializationError,
    UnsafeSerializerWarning,
)
from .encryption import SEALED_PREFIX as SEALED_PREFIX
from .encryption import AesGcmCipher as AesGcmCipher
from .encryption import SealedSerializer as SealedSerializer
from .encryption import Sealer as Sealer
from .encryption import SealError as SealError
from .encryption import place_bytes as place_bytes
from .msgpack_split import nesting_depth

logger = logging.getLogger(__name__)
_UNPACK_OPTIONS = ormsgpack.OPT_NON_STR_KEYS
# Extension codes whose payload is (module, name, fields dict, ...): a model or dataclass
# that cannot be found is read back as that dict.
_FIELDS_CODES = frozenset({EXT_CONSTRUCTOR_KW_ARGS, EXT_PYDANTIC_V1, EXT_PYDANTIC_V2})
# Types already reported as read as fields (one warning per type, bounded).
_WARNED_AS_FIELDS: set[tuple[str, str]] = set()
_WARNED_MAX = 1000


def _warn_read_as_fields(module: str, name: str) -> None:
    key = (module, name)
    if key in _WARNED_AS_FIELDS or len(_WARNED_AS_FIELDS) >= _WARNED_MAX:
        return
    _WARNED_AS_FIELDS.add(key)
    logger.warning(
        "stored type %s.%s cannot be found (defined inside a function, renamed, or its "
        "module is not imported): its values are read as their fields (a dict), which a "
        "pydantic state coerces back; nothing is imported or called",
        module,
        name,
    )


class _Missing:
    """What ``SafeExtHook._type`` returns for a name no loaded module defines."""


_MISSING = _Missing()
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
        """The loaded class ``module.name`` may build, ``_MISSING`` when no loaded module
        defines it, or UnsafeDeserializationError when it exists and is not allowed."""
        key = (module, name)
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        obj = _resolve_loaded(module, name)
        if obj is None:
            # Never imported on stored data's say-so; not cached, it may be loaded later.
            return _MISSING
        if not (
            key in lg_msgpack.SAFE_MSGPACK_TYPES or key in self.allowlist or _is_data_type(obj)
        ):
            raise UnsafeDeserializationError(
                f"refusing to deserialize {module}.{name}: it is not a data type "
                "(pydantic model, dataclass, enum, NamedTuple or a LangGraph core type) "
                f"and not allowed; if you trust it, add ({module!r}, {name!r}) with "
                "saver.with_allowlist(...)"
            )
        self._resolved[key] = obj
        return obj

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
            np = sys.modules.get("numpy")
            if np is None:
                raise UnsafeDeserializationError(
                    "refusing to deserialize a numpy array: numpy is not imported, and "
                    "stored data never imports a module (import numpy before reading)"
                )
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
            owner = self._type(module, name)
            if owner is _MISSING:
                raise _not_loaded(module, name)
            return getattr(owner, method)(payload[2])
        cls = self._type(module, name)
        if cls is _MISSING:
            if code in _FIELDS_CODES and len(payload) > 2 and type(payload[2]) is dict:
                _warn_read_as_fields(module, name)
                return payload[2]
            raise _not_loaded(module, name)
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


def _not_loaded(module: str, name: str) -> UnsafeDeserializationError:
    return UnsafeDeserializationError(
        f"refusing to deserialize {module}.{name}: no loaded module defines it, and "
        "stored data never imports a module"
    )


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
    """JsonPlusSerializer that only ever builds data types when reading (see module doc).

    ``writer``: a JsonPlusSerializer subclass of the user's whose writing is kept (its
    own ``dumps_typed``) while reading goes through these rules.
    """

    def __init__(
        self, allowlist: Iterable[tuple[str, ...]] = (), *, writer: SerializerProtocol | None = None
    ) -> None:
        self._hook = SafeExtHook(allowlist)
        self._writer = writer
        super().__init__(pickle_fallback=False, __unpack_ext_hook__=self._hook)

    @property
    def allowlist(self) -> frozenset[tuple[str, ...]]:
        return self._hook.allowlist

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
        return SafeSerializer(self._hook.allowlist | extra, writer=self._writer)

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        if self._writer is not None:
            return self._writer.dumps_typed(obj)
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


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedSerde:
    """A saver's serde taken apart: what ``saver.serde`` is, what (de)serializes plain
    values, what seals them (None when unencrypted), and the warning to give, if any."""

    public: SerializerProtocol
    plain: SerializerProtocol
    sealer: Sealer | None
    warning: str | None = None


def _overrides(obj: object, base: type, method: str) -> bool:
    return getattr(type(obj), method, None) is not getattr(base, method)


def _safe_plain(serde: SerializerProtocol) -> tuple[SerializerProtocol, str | None]:
    """A plain serde read by the safe rules, or the serde itself and why it is not."""
    if isinstance(serde, SafeSerializer) and not _overrides(serde, SafeSerializer, "loads_typed"):
        return serde, None
    if isinstance(serde, JsonPlusSerializer) and not _overrides(
        serde, JsonPlusSerializer, "loads_typed"
    ):
        if serde.pickle_fallback:
            raise InvalidConfigError(
                "serde: JsonPlusSerializer(pickle_fallback=True) cannot be used: reading a "
                "stored pickle runs whatever code it names; drop pickle_fallback"
            )
        allowed = getattr(serde, "_allowed_msgpack_modules", None)
        allowlist = allowed if isinstance(allowed, (set, frozenset)) else ()
        writer = serde if _overrides(serde, JsonPlusSerializer, "dumps_typed") else None
        return SafeSerializer(allowlist, writer=writer), None
    name = f"{type(serde).__module__}.{type(serde).__qualname__}"
    return serde, (
        f"serde {name} reads stored data by its own rules, which langgraph-unified-store "
        "cannot make safe: anyone who can write to the storage may be able to run code "
        "in this process through it. Use the default serde (pass no serde), "
        "JsonPlusSerializer or EncryptedSerializer instead"
    )


def resolve_serde(
    serde: SerializerProtocol | None, encryption_key: bytes | str | None = None
) -> ResolvedSerde:
    """Take a configured serde apart so that stored data is read by the safe rules.

    - None: ``SafeSerializer``; a ``JsonPlusSerializer``: its allowlist (when it has
      one) and any writing it overrides kept, reading replaced by ``SafeSerializer``'s;
      ``pickle_fallback=True`` is refused.
    - LangGraph's ``EncryptedSerializer``: its cipher kept, its inner serde resolved as
      above, every value sealed with its place.
    - ``encryption_key``: an ``AesGcmCipher`` of that key around the resolved serde.
    - Anything else is used as it is, with a warning (``ResolvedSerde.warning``).
    """
    if isinstance(serde, SealedSerializer):
        if encryption_key is not None:
            raise InvalidConfigError("pass either encryption_key or an EncryptedSerializer")
        plain, warning = _safe_plain(serde.serde)
        public = serde if plain is serde.serde else SealedSerializer(serde.sealer, plain)
        return ResolvedSerde(public, plain, serde.sealer, warning)
    if isinstance(serde, EncryptedSerializer) and not (
        _overrides(serde, EncryptedSerializer, "loads_typed")
        or _overrides(serde, EncryptedSerializer, "dumps_typed")
    ):
        if encryption_key is not None:
            raise InvalidConfigError("pass either encryption_key or an EncryptedSerializer")
        plain, warning = _safe_plain(serde.serde)
        sealer = Sealer(serde.cipher)
        return ResolvedSerde(SealedSerializer(sealer, plain), plain, sealer, warning)
    plain, warning = _safe_plain(serde if serde is not None else SafeSerializer())
    if encryption_key is None:
        return ResolvedSerde(plain, plain, None, warning)
    sealer = Sealer(AesGcmCipher(encryption_key))
    return ResolvedSerde(SealedSerializer(sealer, plain), plain, sealer, warning)


def warn_unsafe_serde(message: str) -> None:
    """Warn, pointing at the user's line that built the saver (the first frame outside
    this package)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        level, frame = level + 1, frame.f_back  # type: ignore[assignment]
    warnings.warn(message, UnsafeSerializerWarning, stacklevel=level)
