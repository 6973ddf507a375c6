"""Turning channel values and writes into records and back, for every backend at once.

A list-valued value (a message list, most often) is split: each element large
enough to matter becomes an *item* stored once per thread under a keyed hash of
its serialized form, and the blob keeps only the references. A 100-turn chat
then stores each message once instead of once per checkpoint.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import ormsgpack
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from ..errors import CorruptDataError, SerializationError, UnsafeDeserializationError
from .dictionaries import CHECKPOINT_DICTIONARY_V1, ITEM_DICTIONARY_V1
from .limits import DEFAULT_READ_LIMITS, ELEMENT_COST, ReadBudget, ReadLimits
from .msgpack_split import array_header_size, join_array, skip_object, split_concatenated
from .records import (
    ITEM_DICT_TYPE,
    ITEM_LIST_TYPE,
    ITEM_REF_SIZE,
    SEGMENT_TYPE,
    ItemRecord,
)

# Elements smaller than this stay inline in the list blob: a reference would not save space.
ITEM_MIN_BYTES = 64
# Element items and checkpoint skeletons are stored deflated against a preset dictionary
# (core.dictionaries) when that saves 10%, never when encrypted: compressing before
# encrypting can leak through sizes.
COMPRESS_LEVEL = 6
COMPRESSED_ITEM = "zd1:"
COMPRESSED_CHECKPOINT = "zc1:"
# Entries in the smallest segment; larger segments hold this times a power of two.
SEGMENT_UNIT = 8
MSGPACK = "msgpack"
# Item dicts nest when a dict value holds dicts with lists; deeper than this is not data
# this library wrote (it stores deeper dicts whole) and would only cost recursion.
ITEM_DICT_MAX_DEPTH = 32

# An entry of a list being encoded: (None, ref) for an item, (type, bytes) for an inline element.
Entry = tuple[str | None, bytes]

EncodedValue = tuple[str, bytes, tuple[bytes, ...], list[ItemRecord]]
MemoKey = tuple[str, str, str]  # (thread_id, checkpoint_ns, channel)
# What the codec remembers of lists it stored, to encode their next version from there.
MEMO_MAX_BYTES = 64 * 1024 * 1024
INFLATED_MAX_BYTES = 32 * 1024 * 1024
MEMO_MAX_LISTS = 4096


@dataclass(slots=True)
class ListMemo:
    key: MemoKey
    body: bytes
    """The packed elements, without the array header."""
    entries: list[Entry]
    version: str | None = None
    """The blob version this list was stored under (set once stored)."""
    base_version: str | None = None
    """The stored version this encoding extended, if it reused one."""
    item_bytes: int = 0
    """Stored bytes of the element items it names (what a read of it fetches)."""


def segment_sizes(count: int) -> list[int]:
    """How a list of ``count`` entries is cut: the binary digits of count // SEGMENT_UNIT,
    largest first, each times SEGMENT_UNIT; the remainder is the tail.

    The cut depends on the count alone, so a list that grows by appending keeps its
    earlier segments byte for byte and they are stored once.
    """
    units = count // SEGMENT_UNIT
    return [
        (1 << bit) * SEGMENT_UNIT for bit in reversed(range(units.bit_length())) if units >> bit & 1
    ]



def _layout(entries: list[Entry]) -> tuple[bytes, list[bytes]]:
    """Packed entries with a None placeholder per item reference, and the references in order.

    Inline msgpack elements are stored as their bytes, other inline types as [type, bytes].
    """
    layout: list[Any] = []
    refs: list[bytes] = []
    for kind, payload in entries:
        if kind is None:
            layout.append(None)
            refs.append(payload)
        elif kind == MSGPACK:
            layout.append(payload)
        else:
            layout.append((kind, payload))
    return ormsgpack.packb(layout), refs


def _describe(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def locate_unserializable(serde: SerializerProtocol, value: Any, path: str) -> str:
    """The deepest path under ``path`` whose value fails to serialize, with its type."""
    children: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        children = [(f"{path}[{k!r}]", v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        children = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        children = [(f"{path}.{k}", v) for k, v in vars(value).items()]
    for child_path, child in children:
        try:
            serde.dumps_typed(child)
        except Exception:
            return locate_unserializable(serde, child, child_path)
    return f"{path} (a {_describe(value)})"


class ListMemos:
    """What a saver last stored per (thread, namespace, channel), shared by its clones.

    Bounded (LRU by bytes and count). A memo is recorded only after the backend stored
    the value, and dropped for a thread whenever this saver deletes, prunes or copies.
    """

    def __init__(self) -> None:
        self._memos: OrderedDict[MemoKey, ListMemo] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def recall(self, key: MemoKey) -> ListMemo | None:
        with self._lock:
            memo = self._memos.get(key)
            if memo is not None:
                self._memos.move_to_end(key)
            return memo

    def remember(self, memos: Sequence[ListMemo]) -> None:
        """Record lists the backend has now stored (their items are in storage)."""
        with self._lock:
            for memo in memos:
                old = self._memos.pop(memo.key, None)
                if old is not None:
                    self._bytes -= len(old.body)
                self._memos[memo.key] = memo
                self._bytes += len(memo.body)
            while self._memos and (self._bytes > MEMO_MAX_BYTES or len(self._memos) > MEMO_MAX_LISTS):
                _, dropped = self._memos.popitem(last=False)
                self._bytes -= len(dropped.body)

    def forget(self, thread_id: str | None = None) -> None:
        """Drop the memos of a thread (of all threads, when None)."""
        with self._lock:
            for key in [k for k in self._memos if thread_id is None or k[0] == thread_id]:
                self._bytes -= len(self._memos.pop(key).body)


def deflate(plain: bytes, dictionary: bytes, max_ratio: int = DEFAULT_READ_LIMITS.ratio) -> bytes | None:
    """``plain`` deflated against ``dictionary``, or None when that saves under 10%, or
    when it would inflate more than ``max_ratio`` times (a read would take it for a bomb)."""
    deflater = zlib.compressobj(
        COMPRESS_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY, dictionary
    )
    packed = deflater.compress(plain) + deflater.flush()
    if len(packed) * 10 > len(plain) * 9 or len(packed) * max_ratio < len(plain):
        return None
    return packed


def inflate(data: bytes, dictionary: bytes, budget: ReadBudget) -> bytes:
    """``data`` inflated, never past what ``budget`` still allows (charged to it)."""
    room = budget.room()
    inflater = zlib.decompressobj(zlib.MAX_WBITS, dictionary)
    body = inflater.decompress(data, room + 1)
    budget.used += len(body)
    if len(body) > room:
        budget.exceeded()
    if not inflater.eof or inflater.unused_data:
        raise zlib.error("compressed data is truncated or has trailing bytes")
    return body


class _InflatedItems:
    """Decompressed item bodies, keyed by their compressed bytes; bounded by bytes.

    Every read of a thread decompresses the items of its whole message list again, so a
    long thread spends much of ``get_tuple`` in zlib. Keyed by the stored bytes
    themselves (not the ref), a damaged row misses the cache and still fails to read.
    """

    def __init__(self, max_bytes: int) -> None:
        self._bodies: dict[bytes, bytes] = {}
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def cached(self, data: bytes) -> bytes | None:
        """The body of ``data`` if it is cached (the caller charges it to its budget)."""
        return self._bodies.get(data) if type(data) is bytes else None

    def inflate(self, data: bytes, budget: ReadBudget) -> bytes:
        """The body of a deflated item, charged to ``budget`` whether cached or not."""
        if type(data) is not bytes:  # a driver's memoryview or bytearray is no dict key
            return inflate(data, ITEM_DICTIONARY_V1, budget)
        body = self._bodies.get(data)
        if body is not None:
            budget.take(len(body))
            return body
        body = inflate(data, ITEM_DICTIONARY_V1, budget)
        size = len(data) + len(body)
        if size * 8 > self._max_bytes:
            return body
        with self._lock:
            if data not in self._bodies:
                self._bodies[data] = body
                self._bytes += size
            while self._bytes > self._max_bytes:
                oldest = next(iter(self._bodies))
                self._bytes -= len(oldest) + len(self._bodies.pop(oldest))
        return body


_INFLATED = _InflatedItems(INFLATED_MAX_BYTES)


class Codec:
    """Serialization through the saver's serde, with list items split out."""

    def __init__(
        self,
        serde: SerializerProtocol,
        memos: ListMemos | None = None,
        *,
        compress: bool = True,
        limits: ReadLimits = DEFAULT_READ_LIMITS,
    ) -> None:
        self.serde = serde
        self.limits = limits
        # With encryption, items are hashed on their plaintext (so they still dedup) with a
        # key derived from the encryption key (so a hash reveals nothing to a reader).
        self._plain: SerializerProtocol = serde
        self._encrypted: EncryptedSerializer | None = None
        hash_key = b""
        if isinstance(serde, EncryptedSerializer):
            self._encrypted = serde
            self._plain = serde.serde
            hash_key = bytes(getattr(serde.cipher, "hash_key", b""))[:64]
        self._hash_key = hash_key
        # Unencrypted msgpack elements can be joined and read back in one C-level call.
        self._batchable = isinstance(serde, JsonPlusSerializer)
        self.memos = memos if memos is not None else ListMemos()
        self._compress = compress

    # -- values ---------------------------------------------------------------------------

    def dumps(self, value: Any, where: str) -> tuple[str, bytes]:
        try:
            return self.serde.dumps_typed(value)
        except Exception as exc:
            raise SerializationError(
                f"cannot serialize {locate_unserializable(self._plain, value, where)}: {exc}"
            ) from exc

    def dumps_checkpoint(self, skeleton: dict[str, Any]) -> tuple[str, bytes]:
        """A checkpoint without its values, deflated when that pays (read by ``decode_value``)."""
        type_, data = self.dumps(skeleton, "checkpoint")
        if self._compress and self._encrypted is None:
            packed = deflate(data, CHECKPOINT_DICTIONARY_V1, self.limits.ratio)
            if packed is not None:
                return COMPRESSED_CHECKPOINT + type_, packed
        return type_, data

    def encode_value(
        self,
        value: Any,
        where: str,
        memo_key: MemoKey | None = None,
        memos: list[ListMemo] | None = None,
    ) -> EncodedValue:
        """A channel value or write as (type, data, item refs, items it needs stored).

        For an item list the refs are ordered (duplicates kept): the layout in ``data``
        holds a placeholder for each, so every reference is stored exactly once. With a
        ``memo_key`` (thread, namespace, channel), a list that extends the one this codec
        last stored under that key is encoded from where that one ended; the new memo
        goes to ``memos``, to be remembered once the backend has stored the value.
        """
        if type(value) is dict and any(type(v) is list and v for v in value.values()):
            return self._encode_dict(value, where)
        if type(value) is not list or not value:
            type_, data = self.dumps(value, where)
            return type_, data, (), []
        entries, items, body, base, known_bytes, plain_bytes = self._list_entries(
            value, where, memo_key
        )
        if not any(kind is None for kind, _ in entries):
            type_, data = self.dumps(value, where)
            return type_, data, (), []
        item_bytes = known_bytes + sum(len(item.data) for item in items.values())
        stored = item_bytes
        segment_refs: list[bytes] = []
        start = 0
        for size in segment_sizes(len(entries)):
            layout, inner = _layout(entries[start : start + size])
            start += size
            ref = self._ref(b"segment\0" + layout + b"".join(inner))
            segment_refs.append(ref)
            stored += len(layout) + ITEM_REF_SIZE * len(inner)
            items.setdefault(ref, ItemRecord(ref, SEGMENT_TYPE, layout, tuple(inner)))
        tail_layout, tail_refs = _layout(entries[start:])
        refs = [*segment_refs, *tail_refs]
        data = ormsgpack.packb(len(segment_refs)) + tail_layout
        stored += len(data) + ITEM_REF_SIZE * len(refs)
        if plain_bytes + ELEMENT_COST * len(entries) > self.limits.ratio * stored:
            # A list repeating large elements would read back as more than the read
            # limits allow its stored size: store it whole, so it always reads back.
            type_, data = self.dumps(value, where)
            return type_, data, (), []
        if memo_key is not None and memos is not None and body is not None:
            memos.append(ListMemo(memo_key, body, entries, base_version=base, item_bytes=item_bytes))
        return ITEM_LIST_TYPE, data, tuple(refs), list(items.values())

    def _list_entries(
        self, value: list[Any], where: str, memo_key: MemoKey | None
    ) -> tuple[list[Entry], dict[bytes, ItemRecord], bytes | None, str | None, int, int]:
        """Entries of a list, the items it needs stored, its packed body (if known), the
        stored version it extends (if it reused a memo), the stored bytes of the items
        that memo names, and the bytes of all its elements serialized.

        With a JsonPlus-family serde the list is packed in one C call and cut at element
        boundaries; when the packed body starts with the body last stored under
        ``memo_key`` (byte for byte), those elements keep their entries and only the
        rest is split, hashed and sent. Anything else re-encodes every element.
        """
        body: bytes | None = None
        if isinstance(self._plain, JsonPlusSerializer):
            type_, packed = self._plain_dumps(value, where)
            if type_ == MSGPACK:
                body = packed[array_header_size(packed) :]
        if body is None:
            elements = [
                self._plain_dumps(element, f"{where}[{index}]") for index, element in enumerate(value)
            ]
            plain_bytes = sum(len(plain) for _, plain in elements)
            return (*self._entries_for(elements), None, None, 0, plain_bytes)
        known = self.memos.recall(memo_key) if memo_key is not None else None
        if known is not None and known.version is not None and body.startswith(known.body):
            rest = split_concatenated(body, len(known.body))
            entries, items = self._entries_for([(MSGPACK, element) for element in rest])
            return [*known.entries, *entries], items, body, known.version, known.item_bytes, len(body)
        entries, items = self._entries_for([(MSGPACK, e) for e in split_concatenated(body)])
        return entries, items, body, None, 0, len(body)

    def _entries_for(
        self, elements: list[tuple[str, bytes]]
    ) -> tuple[list[Entry], dict[bytes, ItemRecord]]:
        entries: list[Entry] = []
        items: dict[bytes, ItemRecord] = {}
        for plain_type, plain in elements:
            # Encrypted inline entries differ on every write (fresh nonce) and would make
            # segments unshareable, so with encryption every element becomes an item.
            if len(plain) < ITEM_MIN_BYTES and self._encrypted is None:
                entries.append((plain_type, plain))
                continue
            ref = self._ref(plain_type.encode() + b"\0" + plain)
            if ref not in items:
                stored_type, stored = self._seal(plain_type, plain)
                if self._compress and self._encrypted is None:
                    packed = deflate(plain, ITEM_DICTIONARY_V1, self.limits.ratio)
                    if packed is not None:
                        stored_type, stored = COMPRESSED_ITEM + plain_type, packed
                items[ref] = ItemRecord(ref, stored_type, stored)
            entries.append((None, ref))
        return entries, items

    def _encode_dict(self, value: dict[Any, Any], where: str, depth: int = 0) -> EncodedValue:
        """A dict as (key, encoded value, ref count) entries: graph input such as
        ``{"messages": [HumanMessage(...)]}`` then shares its messages' items."""
        entries: list[Any] = []
        refs: list[bytes] = []
        items: list[ItemRecord] = []
        for key, sub_value in value.items():
            sub_where = f"{where}[{key!r}]"
            if type(sub_value) is dict and any(type(v) is list and v for v in sub_value.values()):
                if depth + 1 < ITEM_DICT_MAX_DEPTH:
                    encoded = self._encode_dict(sub_value, sub_where, depth + 1)
                else:
                    encoded = (*self.dumps(sub_value, sub_where), (), [])
            else:
                encoded = self.encode_value(sub_value, sub_where)
            type_, data, sub_refs, sub_items = encoded
            entries.append((key, type_, data, len(sub_refs)))
            refs.extend(sub_refs)
            items.extend(sub_items)
        if not refs:
            type_, data = self.dumps(value, where)
            return type_, data, (), []
        try:
            packed = ormsgpack.packb(entries, option=ormsgpack.OPT_NON_STR_KEYS)
        except TypeError:  # keys msgpack cannot hold: store the dict whole
            type_, data = self.dumps(value, where)
            return type_, data, (), []
        return ITEM_DICT_TYPE, packed, tuple(refs), items

    def _plain_dumps(self, value: Any, where: str) -> tuple[str, bytes]:
        try:
            return self._plain.dumps_typed(value)
        except Exception as exc:
            raise SerializationError(
                f"cannot serialize {locate_unserializable(self._plain, value, where)}: {exc}"
            ) from exc

    def _ref(self, content: bytes) -> bytes:
        return hashlib.blake2b(content, digest_size=ITEM_REF_SIZE, key=self._hash_key).digest()

    def _seal(self, plain_type: str, plain: bytes) -> tuple[str, bytes]:
        if self._encrypted is None:
            return plain_type, plain
        cipher_name, ciphertext = self._encrypted.cipher.encrypt(plain)
        return f"{plain_type}+{cipher_name}", ciphertext

    def decode_value(
        self,
        type_: str,
        data: bytes,
        items: Mapping[bytes, ItemRecord],
        where: str,
        refs: Sequence[bytes] = (),
        budget: ReadBudget | None = None,
        *,
        stored_size: int | None = None,
    ) -> Any:
        """A stored value read back, or CorruptDataError naming ``where``.

        ``budget`` is shared by every value of one read (see ``core.limits``); without
        one, the value gets a budget of its own. ``stored_size``: what ``data`` took in
        storage, when the backend inflated it itself (then ``data`` counts as decoded).
        """
        if budget is None:
            budget = ReadBudget(self.limits)
        budget.value_start = budget.used
        budget.stored += ITEM_REF_SIZE * len(refs)
        try:
            if stored_size is None:
                budget.stored += len(data)
            else:
                budget.stored += stored_size
                budget.take(len(data))
            return self._decode(type_, data, items, refs, budget, 0)
        except (CorruptDataError, UnsafeDeserializationError) as exc:
            if str(exc).startswith(where):
                raise
            raise type(exc)(f"{where}: {exc}") from exc
        except Exception as exc:
            raise CorruptDataError(f"{where}: stored value cannot be read ({exc})") from exc

    def _decode(
        self,
        type_: str,
        data: bytes,
        items: Mapping[bytes, ItemRecord],
        refs: Sequence[bytes],
        budget: ReadBudget,
        depth: int,
    ) -> Any:
        if type_ == ITEM_DICT_TYPE:
            return self._decode_dict(data, items, refs, budget, depth)
        if type_.startswith(COMPRESSED_CHECKPOINT):
            plain = inflate(data, CHECKPOINT_DICTIONARY_V1, budget)
            return self.serde.loads_typed((type_[len(COMPRESSED_CHECKPOINT) :], plain))
        if type_ != ITEM_LIST_TYPE:
            return self.serde.loads_typed((type_, data))
        unpacker_offset = skip_object(data, 0)
        segment_count = ormsgpack.unpackb(data[:unpacker_offset])
        if type(segment_count) is not int or not 0 <= segment_count <= len(refs):
            raise CorruptDataError("stored list names a segment count it does not have")
        elements: list[tuple[str, bytes]] = []
        for ref in refs[:segment_count]:
            segment = self._item(items, ref)
            if segment.type != SEGMENT_TYPE:
                raise CorruptDataError(f"stored item {ref.hex()} is not a segment")
            if budget.first_use(ref):
                budget.stored += len(segment.data) + ITEM_REF_SIZE * len(segment.item_refs)
            inner = iter(segment.item_refs)
            self._expand(segment.data, inner, items, budget, elements)
            if next(inner, None) is not None:
                raise CorruptDataError(f"segment {ref.hex()} names more items than it uses")
        tail_refs = iter(refs[segment_count:])
        self._expand(data[unpacker_offset:], tail_refs, items, budget, elements)
        if next(tail_refs, None) is not None:
            raise CorruptDataError("more item references than the list uses")
        if self._batchable and all(t == MSGPACK for t, _ in elements):
            return self.serde.loads_typed((MSGPACK, join_array([b for _, b in elements])))
        return [self.serde.loads_typed(element) for element in elements]

    def _decode_dict(
        self,
        data: bytes,
        items: Mapping[bytes, ItemRecord],
        refs: Sequence[bytes],
        budget: ReadBudget,
        depth: int,
    ) -> dict[Any, Any]:
        if depth >= ITEM_DICT_MAX_DEPTH:
            raise CorruptDataError(f"stored dicts nest deeper than {ITEM_DICT_MAX_DEPTH} levels")
        entries = ormsgpack.unpackb(data, option=ormsgpack.OPT_NON_STR_KEYS)
        if type(entries) is not list:
            raise CorruptDataError("stored dict is not a list of entries")
        result: dict[Any, Any] = {}
        offset = 0
        for entry in entries:
            if type(entry) is not list or len(entry) != 4:
                raise CorruptDataError("a stored dict entry is not (key, type, data, count)")
            key, sub_type, sub_data, ref_count = entry
            if (
                type(sub_type) is not str
                or type(sub_data) is not bytes
                or type(ref_count) is not int
                or not 0 <= ref_count <= len(refs) - offset
            ):
                raise CorruptDataError("a stored dict entry is not (key, type, data, count)")
            result[key] = self._decode(
                sub_type, sub_data, items, refs[offset : offset + ref_count], budget, depth + 1
            )
            offset += ref_count
        if offset != len(refs):
            raise CorruptDataError("more item references than the dict uses")
        return result

    def _expand(
        self,
        layout: bytes,
        refs: Iterator[bytes],
        items: Mapping[bytes, ItemRecord],
        budget: ReadBudget,
        into: list[tuple[str, bytes]],
    ) -> None:
        """Append the elements ``layout`` lays out to ``into``, charging each to ``budget``
        (an element named twice costs twice: repeating references buys no memory)."""
        entries = ormsgpack.unpackb(layout)
        if type(entries) is not list:
            raise CorruptDataError("a stored list layout is not a list")
        limit = budget.limit()
        used = budget.used
        seen = budget.seen
        cached = _INFLATED.cached
        for entry in entries:
            if entry is None:
                ref = next(refs, None)
                if ref is None:
                    raise CorruptDataError("a list entry has no item reference")
                item = items.get(ref)
                if item is None:
                    raise CorruptDataError(f"stored item {ref.hex()} is missing")
                item_type = item.type
                if item_type == SEGMENT_TYPE:
                    raise CorruptDataError(f"a list element names segment {ref.hex()}")
                if ref not in seen:  # each stored item adds to what the read fetched once
                    seen.add(ref)
                    budget.stored += len(item.data)
                if item_type.startswith(COMPRESSED_ITEM):
                    body = cached(item.data)
                    if body is None:
                        budget.used = used
                        body = _INFLATED.inflate(item.data, budget)
                        used = budget.used
                    else:
                        used += len(body)
                    into.append((item_type[len(COMPRESSED_ITEM) :], body))
                else:
                    used += len(item.data)
                    into.append((item_type, item.data))
                used += ELEMENT_COST
            elif type(entry) is bytes:
                used += len(entry) + ELEMENT_COST
                into.append((MSGPACK, entry))
            elif (
                type(entry) is list
                and len(entry) == 2
                and type(entry[0]) is str
                and type(entry[1]) is bytes
            ):
                used += len(entry[1]) + ELEMENT_COST
                into.append((entry[0], entry[1]))
            else:
                raise CorruptDataError("a stored list entry is neither an element nor a reference")
            if used > limit:  # ``limit`` may be stale (low): what was fetched since raises it
                budget.used = used
                limit = budget.limit()
                if used > limit:
                    budget.exceeded()
        budget.used = used

    @staticmethod
    def _item(items: Mapping[bytes, ItemRecord], ref: bytes) -> ItemRecord:
        item = items.get(ref)
        if item is None:
            raise CorruptDataError(f"stored item {ref.hex()} is missing")
        return item

    # -- metadata -------------------------------------------------------------------------

    @staticmethod
    def dump_metadata(metadata: Mapping[str, Any]) -> bytes:
        try:
            return orjson.dumps(metadata, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:
            for key, value in metadata.items():
                try:
                    orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
                except TypeError:
                    raise SerializationError(
                        f"checkpoint metadata[{key!r}] is not JSON data (a {_describe(value)})"
                    ) from exc
            raise SerializationError(f"checkpoint metadata is not JSON data: {exc}") from exc

    @staticmethod
    def load_metadata(data: bytes | str, where: str) -> dict[str, Any]:
        try:
            loaded = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise CorruptDataError(f"{where}: metadata is not valid JSON ({exc})") from exc
        if not isinstance(loaded, dict):
            raise CorruptDataError(f"{where}: metadata is not a JSON object")
        return loaded
