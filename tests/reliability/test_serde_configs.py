"""No code runs from stored data, whatever serializer the saver is configured with.

For every documented configuration (the default serde, ``encryption_key=`` with a
passphrase or a raw key, LangGraph's ``EncryptedSerializer`` around our cipher, a cipher of
the user's or pycryptodome's AES, a plain ``JsonPlusSerializer`` with and without an
allowlist, and a ``with_allowlist`` clone of each), payloads naming a module-level callable
whose calls are recorded, ``os.system`` and ``builtins.eval`` are planted by raw SQL / raw
Redis commands into a blob, a write, an item and the checkpoint record, then read by a
fresh reader through the async and the blocking API. Nothing is called, and each read
is refused by the library: an encrypting saver refuses the plaintext itself
(``CorruptDataError``); and the same payload *validly encrypted* for its place (what an
insider with the key could plant) still reaches only the safe rules
(``UnsafeDeserializationError``). A serializer the library cannot make safe is used with
exactly one ``UnsafeSerializerWarning``.
"""

from __future__ import annotations

import asyncio
import pickle
import uuid
import warnings
from pathlib import Path
from typing import Any

import orjson
import ormsgpack
import pytest
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import (
    EXT_CONSTRUCTOR_KW_ARGS,
    EXT_CONSTRUCTOR_POS_ARGS,
    EXT_CONSTRUCTOR_SINGLE_ARG,
    EXT_METHOD_SINGLE_ARG,
    EXT_PYDANTIC_V2,
    JsonPlusSerializer,
)

from langgraph_unified_store import (
    CorruptDataError,
    InvalidConfigError,
    MemorySaver,
    UnifiedStoreError,
    UnsafeDeserializationError,
    UnsafeSerializerWarning,
)
from langgraph_unified_store.core.codec import _blob_place
from langgraph_unified_store.core.records import BlobRecord
from langgraph_unified_store.core.saver import UnifiedCheckpointSaver
from langgraph_unified_store.core.serde import SafeSerializer, SealedSerializer

from ..support import ALL_BACKENDS
from . import raw, user_types
from .hostile import put_state, reader_of, sandboxed_saver, thread_tuples
from .private_servers import PrivateRedis
from .serde_configs import CONFIGS, ENCRYPTED
from .user_types import Quacks

USER_MODULE = user_types.__name__


def _ext(code: int, payload: Any) -> bytes:
    return ormsgpack.packb(ormsgpack.Ext(code, ormsgpack.packb(payload)))


class _Bomb:
    def __reduce__(self) -> tuple[Any, ...]:
        return (user_types.record_call, ("pickle",))


def payloads(marker: Path) -> list[tuple[str, str, bytes]]:
    """(label, serde type, bytes): each would call something if it were honoured."""
    touch = f"touch {marker}"
    return [
        ("record_call single", "msgpack", _ext(EXT_CONSTRUCTOR_SINGLE_ARG, (USER_MODULE, "record_call", "x"))),
        ("record_call pos", "msgpack", _ext(EXT_CONSTRUCTOR_POS_ARGS, (USER_MODULE, "record_call", ["x"]))),
        ("record_call kw", "msgpack", _ext(EXT_CONSTRUCTOR_KW_ARGS, (USER_MODULE, "record_call", {"a": 1}))),
        ("Recorder as model", "msgpack", _ext(EXT_PYDANTIC_V2, (USER_MODULE, "Recorder", {"a": 1}, "x"))),
        ("record_call method", "msgpack",
         _ext(EXT_METHOD_SINGLE_ARG, (USER_MODULE, "record_call", "x", "__call__"))),
        ("os.system", "msgpack", _ext(EXT_CONSTRUCTOR_POS_ARGS, ("os", "system", [touch]))),
        ("builtins.eval", "msgpack",
         _ext(EXT_CONSTRUCTOR_SINGLE_ARG, ("builtins", "eval", f"__import__('os').system('{touch}')"))),
        ("pickle", "pickle", pickle.dumps(_Bomb())),
        ("json constructor", "json",
         orjson.dumps({"lc": 2, "type": "constructor", "id": [*USER_MODULE.split("."), "Recorder"],
                       "kwargs": {"a": 1}})),
    ]


LOCATIONS = ("blob:messages", "write:messages", "item", "checkpoint")


async def _victim(saver: UnifiedCheckpointSaver, thread_id: str) -> Any:
    config = await put_state(
        saver, thread_id,
        {"messages": [{"content": f"element {i} " + "z" * 80} for i in range(3)], "n": 1},
    )
    await saver.aput_writes(config, [("messages", [{"content": "w" * 100}])], "task-1")
    return config


async def _every_read(reader: UnifiedCheckpointSaver, config: Any, thread_id: str) -> list[Any]:
    """What each way of reading returns (or raises): async and blocking, tuple and list."""
    outcomes: list[Any] = []
    reads: list[Any] = [
        lambda: reader.aget_tuple(config),
        lambda: thread_tuples(reader, thread_id),
        lambda: asyncio.to_thread(reader.get_tuple, config),
        lambda: asyncio.to_thread(lambda: list(reader.list({"configurable": {"thread_id": thread_id}}))),
    ]
    for read in reads:
        try:
            outcomes.append(await read())
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def _cases() -> list[Any]:
    return [
        pytest.param(backend, config, allow, id=f"{backend}-{config}{'-allowlisted' if allow else ''}")
        for backend in ALL_BACKENDS
        for config in CONFIGS
        for allow in (False, True)
    ]


@pytest.mark.parametrize(("backend", "config", "allowlisted"), _cases())
async def test_no_planted_payload_runs_code_under_any_serde(
    backend: str, config: str, allowlisted: bool, tmp_path: Path, sandbox_redis: PrivateRedis
) -> None:
    marker = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    user_types.CALLS.clear()
    encrypted = config in ENCRYPTED
    async with sandboxed_saver(backend, tmp_path, sandbox_redis, **CONFIGS[config]()) as saver:
        planted = []
        for location in LOCATIONS:
            for label, type_, data in payloads(marker):
                thread_id = f"victim-{location}-{label}"
                planted.append((location, label, type_, thread_id, await _victim(saver, thread_id)))
                await raw.overwrite(saver, thread_id, location, data, type_)
        async with reader_of(saver, **CONFIGS[config]()) as reader:
            if allowlisted:
                reader = reader.with_allowlist([(USER_MODULE, "Quacks")])
            for location, label, type_, thread_id, config_ in planted:
                for outcome in await _every_read(reader, config_, thread_id):
                    assert not marker.exists(), f"{label} in {location} RAN CODE"
                    assert not user_types.CALLS, f"{label} in {location} called {user_types.CALLS}"
                    if encrypted:
                        # The plaintext itself is refused, before any serde sees it.
                        assert isinstance(outcome, CorruptDataError), f"{label}: {outcome!r:.300}"
                        assert "not encrypted" in str(outcome), outcome
                    elif isinstance(outcome, Exception):
                        assert isinstance(outcome, UnifiedStoreError), f"{label}: {outcome!r:.300}"
                    else:
                        assert type_ == "json", f"{label} in {location} was read without an error"
                    if isinstance(outcome, Exception):
                        assert thread_id in str(outcome), outcome
        if encrypted:
            await _validly_sealed_payloads_reach_the_safe_rules(saver, config, allowlisted, marker)


async def _validly_sealed_payloads_reach_the_safe_rules(
    saver: UnifiedCheckpointSaver, config: str, allowlisted: bool, marker: Path
) -> None:
    """Sealed with the saver's own key for the exact place: decryption succeeds, and the
    inner reading (JsonPlus's, in LangGraph's EncryptedSerializer) must be ours."""
    sealer = saver.codec._sealer
    assert sealer is not None
    planted = []
    for label, type_, data in payloads(marker):
        thread_id = f"insider-{label}"
        config_ = await _victim(saver, thread_id)
        tup = await saver.aget_tuple(config_)
        assert tup is not None
        version = tup.checkpoint["channel_versions"]["n"]
        place = _blob_place(thread_id, "", BlobRecord("n", version, type_, data))
        sealed_type, sealed = sealer.seal(type_, data, place)
        await raw.overwrite(saver, thread_id, "blob:n", sealed, sealed_type)
        planted.append((label, type_, thread_id, config_))
    async with reader_of(saver, **CONFIGS[config]()) as reader:
        if allowlisted:
            reader = reader.with_allowlist([(USER_MODULE, "Quacks")])
        for label, type_, thread_id, config_ in planted:
            for outcome in await _every_read(reader, config_, thread_id):
                assert not marker.exists(), f"sealed {label} RAN CODE"
                assert not user_types.CALLS, f"sealed {label} called {user_types.CALLS}"
                if type_ == "json":
                    continue  # plain JSON data, read as data
                assert isinstance(outcome, UnsafeDeserializationError), f"{label}: {outcome!r:.300}"
                assert thread_id in str(outcome)


# -- which serde a saver ends up with ----------------------------------------------------


def _no_warning(**options: Any) -> UnifiedCheckpointSaver:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsafeSerializerWarning)
        return MemorySaver(**options)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_documented_configs_read_through_the_safe_rules(config: str) -> None:
    saver = _no_warning(**CONFIGS[config]())
    serde = saver.serde
    if config in ENCRYPTED:
        assert isinstance(serde, SealedSerializer), serde
        assert isinstance(serde, EncryptedSerializer)  # still LangGraph's type for callers
        serde = serde.serde
    assert type(serde) is SafeSerializer, serde
    clone = saver.with_allowlist([(USER_MODULE, "Quacks")])
    inner = clone.serde.serde if config in ENCRYPTED else clone.serde  # type: ignore[attr-defined]
    assert type(inner) is SafeSerializer and (USER_MODULE, "Quacks") in inner.allowlist


def test_jsonplus_allowlist_is_honoured() -> None:
    config = CONFIGS["JsonPlusSerializer-allowlist"]()
    saver = _no_warning(**config)
    assert (USER_MODULE, "Quacks") in saver.serde.allowlist  # type: ignore[attr-defined]
    assert saver.serde.loads_typed(saver.serde.dumps_typed(Quacks("q"))) == Quacks("q")
    plain = MemorySaver()
    with pytest.raises(UnsafeDeserializationError):
        plain.serde.loads_typed(plain.serde.dumps_typed(Quacks("q")))


def test_jsonplus_with_pickle_fallback_is_refused_saying_why() -> None:
    with pytest.raises(InvalidConfigError, match="pickle"):
        MemorySaver(serde=JsonPlusSerializer(pickle_fallback=True))
    with pytest.raises(InvalidConfigError, match="pickle"):
        MemorySaver(serde=EncryptedSerializer.from_pycryptodome_aes(
            JsonPlusSerializer(pickle_fallback=True), key=b"sixteen byte key"))


def test_jsonplus_subclass_keeps_its_writing_and_gets_our_reading() -> None:
    class Tagged(JsonPlusSerializer):
        def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
            return super().dumps_typed({"tagged": obj})

    saver = _no_warning(serde=Tagged())
    type_, data = saver.serde.dumps_typed(1)
    assert saver.serde.loads_typed((type_, data)) == {"tagged": 1}
    with pytest.raises(UnsafeDeserializationError):
        saver.serde.loads_typed(("msgpack", _ext(EXT_CONSTRUCTOR_POS_ARGS, ("os", "system", ["true"]))))


class ForeignSerde:
    """A SerializerProtocol the library cannot look inside."""

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return "foreign", orjson.dumps(obj)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        return orjson.loads(data[1])


class ReadsItsOwnWay(JsonPlusSerializer):
    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        return super().loads_typed(data)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: {"serde": ForeignSerde()}, id="foreign"),
        pytest.param(lambda: {"serde": ReadsItsOwnWay()}, id="jsonplus-overriding-loads"),
        pytest.param(lambda: {"serde": pickle}, id="pickle-module"),
        pytest.param(lambda: {"serde": ForeignSerde(), "encryption_key": "k" * 40}, id="foreign+key"),
        pytest.param(
            lambda: {"serde": EncryptedSerializer(CONFIGS_CIPHER(), ForeignSerde())},
            id="EncryptedSerializer-around-foreign",
        ),
    ],
)
def test_a_serde_that_cannot_be_made_safe_warns_exactly_once(make: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saver = MemorySaver(**make())
        clone = saver.with_allowlist([(USER_MODULE, "Quacks")])
        _ = clone.codec, saver.codec
    unsafe = [w for w in caught if issubclass(w.category, UnsafeSerializerWarning)]
    assert len(unsafe) == 1, [str(w.message) for w in caught]
    message = str(unsafe[0].message)
    assert "run code" in message and "cannot make safe" in message, message
    assert unsafe[0].filename == __file__, unsafe[0].filename


def CONFIGS_CIPHER() -> Any:
    from .serde_configs import CHACHA_KEY, UserCipher

    return UserCipher(CHACHA_KEY)


def test_aesgcm_cipher_inside_langgraphs_own_encrypted_serializer() -> None:
    """Used outside a saver (a node cache, say), AesGcmCipher still authenticates, and the
    unbound release-0.1 format is read only with read_legacy."""
    from langgraph_unified_store.core.serde import AesGcmCipher

    cipher = AesGcmCipher("a passphrase")
    name, data = cipher.encrypt(b"payload")
    assert name == "aesgcm2" and cipher.decrypt(name, data) == b"payload"
    with pytest.raises(UnsafeDeserializationError, match="wrong key or tampered data"):
        AesGcmCipher("another passphrase").decrypt(name, data)
    legacy = AesGcmCipher("a passphrase", read_legacy=True)
    old = legacy._aesgcm(legacy._legacy_key).encrypt(b"\0" * 12, b"old", None)
    assert legacy.decrypt("aesgcm", b"\0" * 12 + old) == b"old"
    with pytest.raises(UnsafeDeserializationError, match="read_legacy"):
        cipher.decrypt("aesgcm", b"\0" * 12 + old)
