"""Turning channel values and writes into records and back, for every backend at once.

A list-valued value (a message list, most often) is split: each element large
enough to matter becomes an *item* stored once per thread under a keyed hash of
its serialized form, and the blob keeps only the references. A 100-turn chat
then stores each message once instead of once per checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
import ormsgpack
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from ..errors import (
    CorruptDataError,
    InvalidConfigError,
    SerializationError,
    UnsafeDeserializationError,
)
from .dictionaries import CHECKPOINT_DICTIONARY_V1, ITEM_DICTIONARY_V1
from .limits import DEFAULT_READ_LIMITS, ELEMENT_COST, ReadBudget, ReadLimits
from .msgpack_split import array_header_size, join_array, skip_object, split_concatenated
from .records import (
    ITEM_DICT_TYPE,
    ITEM_LIST_TYPE,
    ITEM_REF_SIZE,
    SEGMENT_TYPE,
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    StoredCheckpoint,
    WriteRecord,
)
from .serde import Sealer, SealError, resolve_serde

# How much of a failing value's path an error message shows (levels, and chars per key).
PATH_SHOWN_LEVELS = 12
PATH_KEY_CHARS = 40
# Dicts nested deeper than this are stored whole rather than split (see _encode_dict).
DICT_SPLIT_DEPTH = 8
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
# Item dicts nest when a dict value holds dicts with lists; this library splits only the
# top DICT_SPLIT_DEPTH levels, so a deeper stored nesting is not its data and would only
# cost recursion to read.
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

    def fails(child: Any) -> bool:
        try:
            serde.dumps_typed(child)
        except Exception:
            return True
        return False

    return locate_failure(fails, value, path)


def _segment(key: Any) -> str:
    text = repr(key[:PATH_KEY_CHARS] if isinstance(key, (str, bytes)) else key)
    return text if len(text) <= PATH_KEY_CHARS else f"{text[: PATH_KEY_CHARS - 4]}...{text[-1]}"


def _children(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield f"[{_segment(key)}]", child
        for key in value:
            yield f" key {_segment(key)}", key
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


def _non_finite_path(value: Any, path: str) -> str | None:
    """Where in JSON-able data a float is NaN or infinite (iteratively, any depth)."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return where
        if isinstance(node, Mapping):
            stack.extend((child, f"{where}[{_segment(k)}]") for k, child in node.items())
        elif isinstance(node, (list, tuple)):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(node))
    return None


def _nul_path(value: Any, path: str) -> str | None:
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
                    return f"{where} key {_segment(key)}"
                stack.append((child, f"{where}[{_segment(key)}]"))
        elif isinstance(node, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(node))
    return None


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

OpenedKey = tuple[str, bytes, tuple[bytes, ...], str, bytes]


class _OpenedItems:
    """Decrypted items of one codec, bounded by bytes (oldest dropped first)."""

    def __init__(self, max_bytes: int) -> None:
        self._opened: dict[OpenedKey, tuple[str, bytes]] = {}
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, key: OpenedKey) -> tuple[str, bytes] | None:
        return self._opened.get(key)

    def put(self, key: OpenedKey, value: tuple[str, bytes]) -> None:
        size = len(key[4]) + len(value[1]) + 128
        if size * 8 > self._max_bytes:
            return
        with self._lock:
            if key not in self._opened:
                self._opened[key] = value
                self._bytes += size
            while self._bytes > self._max_bytes:
                oldest = next(iter(self._opened))
                dropped = self._opened.pop(oldest)
                self._bytes -= len(oldest[4]) + len(dropped[1]) + 128


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
        # Whatever serde this is, plain values are (de)serialized by the safe rules and,
        # with encryption, every stored record is sealed with its place afterwards
        # (``seal_checkpoint``, ``seal_writes``) and opened before decoding
        # (``open_checkpoint``). The saver gave the warning for a serde that is not safe.
        resolved = resolve_serde(serde)
        self._plain: SerializerProtocol = resolved.plain
        self._sealer: Sealer | None = resolved.sealer
        self.limits = limits
        # With encryption, items are hashed on their plaintext (so they still dedup) with a
        # key derived from the encryption key (so a hash reveals nothing to a reader).
        self._hash_key = b""
        # Plain msgpack elements can be joined and read back in one C-level call.
        self._batchable = isinstance(self._plain, JsonPlusSerializer)
        self.memos = memos if memos is not None else ListMemos()
        self._compress = compress
        self._opened_items = _OpenedItems(INFLATED_MAX_BYTES)

    # -- values ---------------------------------------------------------------------------

    @property
    def sealed(self) -> bool:
        """Whether stored records are encrypted (and must be sealed and opened)."""
        return self._sealer is not None

    def dumps(self, value: Any, where: str) -> tuple[str, bytes]:
        """``value`` by the plain serde (never sealed: sealing is per record), or
        SerializationError naming the part that cannot be serialized."""
        try:
            return self._plain.dumps_typed(value)
        except Exception as exc:
            raise SerializationError(
                f"cannot serialize {locate_unserializable(self._plain, value, where)}: {exc}"
            ) from exc

    def dumps_checkpoint(self, skeleton: dict[str, Any]) -> tuple[str, bytes]:
        """A checkpoint without its values, deflated when that pays (read by ``decode_value``)."""
        type_, data = self.dumps(skeleton, "checkpoint")
        if self._compress and self._sealer is None:
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
            return self._encode_dict(value, where, 0)
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
            type_, packed = self.dumps(value, where)
            if type_ == MSGPACK:
                body = packed[array_header_size(packed) :]
        if body is None:
            elements = [
                self.dumps(element, f"{where}[{index}]") for index, element in enumerate(value)
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
            if len(plain) < ITEM_MIN_BYTES and self._sealer is None:
                entries.append((plain_type, plain))
                continue
            ref = self._ref(plain_type.encode() + b"\0" + plain)
            if ref not in items:
                stored_type, stored = plain_type, plain
                if self._compress and self._sealer is None:
                    packed = deflate(plain, ITEM_DICTIONARY_V1, self.limits.ratio)
                    if packed is not None:
                        stored_type, stored = COMPRESSED_ITEM + plain_type, packed
                items[ref] = ItemRecord(ref, stored_type, stored)
            entries.append((None, ref))
        return entries, items

    def _encode_dict(self, value: dict[Any, Any], where: str, depth: int) -> EncodedValue:
        """A dict as (key, encoded value, ref count) entries: graph input such as
        ``{"messages": [HumanMessage(...)]}`` then shares its messages' items.

        Only the top ``DICT_SPLIT_DEPTH`` levels of nested dicts are split; below that the
        dict is serialized whole, so deep nesting costs no recursion here."""
        if depth >= DICT_SPLIT_DEPTH:
            type_, data = self.dumps(value, where)
            return type_, data, (), []
        entries: list[Any] = []
        refs: list[bytes] = []
        items: list[ItemRecord] = []
        for key, sub_value in value.items():
            sub_where = f"{where}[{_segment(key)}]"
            if type(sub_value) is dict and any(type(v) is list and v for v in sub_value.values()):
                type_, data, sub_refs, sub_items = self._encode_dict(sub_value, sub_where, depth + 1)
            else:
                type_, data, sub_refs, sub_items = self.encode_value(sub_value, sub_where)
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

    def _ref(self, content: bytes) -> bytes:
        key = self._hash_key if self._sealer is None else self._sealer.hash_key()
        return hashlib.blake2b(content, digest_size=ITEM_REF_SIZE, key=key).digest()

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
            return self._plain.loads_typed((type_[len(COMPRESSED_CHECKPOINT) :], plain))
        if type_ != ITEM_LIST_TYPE:
            return self._plain.loads_typed((type_, data))
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
            return self._plain.loads_typed((MSGPACK, join_array([b for _, b in elements])))
        return [self._plain.loads_typed(element) for element in elements]

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

    # -- encryption: every stored value sealed with its place -----------------------------
    #
    # A value's place is what it must not be moved away from:
    # - a checkpoint skeleton: (thread, namespace, checkpoint id, parent id, channel
    #   versions), so the plaintext versions and parent that name its blobs are bound too;
    # - a blob: (thread, namespace, channel, version, item refs), shared by every
    #   checkpoint that names that version;
    # - a write: (thread, namespace, checkpoint, task, idx, channel, task path, item refs);
    # - an item: (thread, ref, item refs); items are content-addressed per thread and shared
    #   across namespaces and channels, and its ref is a keyed hash of its plaintext.
    # List layouts (item lists, item dicts, segments) are sealed like any other value.

    def seal_checkpoint(
        self, record: CheckpointRecord, blobs: Sequence[BlobRecord], items: Sequence[ItemRecord]
    ) -> tuple[CheckpointRecord, list[BlobRecord], list[ItemRecord]]:
        """The records of a put, encrypted (only called when ``sealed``)."""
        sealer = self._sealer
        assert sealer is not None
        thread_id, ns = record.thread_id, record.checkpoint_ns
        type_, data = sealer.seal(record.type, record.data, _checkpoint_place(record))
        sealed_blobs = []
        for blob in blobs:
            blob_type, blob_data = sealer.seal(
                blob.type, blob.data, _blob_place(thread_id, ns, blob)
            )
            sealed_blobs.append(replace(blob, type=blob_type, data=blob_data))
        return (
            replace(record, type=type_, data=data),
            sealed_blobs,
            self._seal_items(thread_id, items),
        )

    def seal_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[WriteRecord],
        items: Sequence[ItemRecord],
    ) -> tuple[list[WriteRecord], list[ItemRecord]]:
        """The records of a put_writes, encrypted (only called when ``sealed``)."""
        sealer = self._sealer
        assert sealer is not None
        sealed = []
        for write in writes:
            place = _write_place(thread_id, checkpoint_ns, checkpoint_id, write)
            type_, data = sealer.seal(write.type, write.data, place)
            sealed.append(replace(write, type=type_, data=data))
        return sealed, self._seal_items(thread_id, items)

    def _seal_items(self, thread_id: str, items: Sequence[ItemRecord]) -> list[ItemRecord]:
        sealer = self._sealer
        assert sealer is not None
        sealed = []
        for item in items:
            type_, data = sealer.seal(item.type, item.data, _item_place(thread_id, item))
            sealed.append(replace(item, type=type_, data=data))
        return sealed

    def open_checkpoint(self, stored: StoredCheckpoint) -> StoredCheckpoint:
        """A stored checkpoint with every value decrypted, each checked against its place;
        CorruptDataError naming thread, namespace, checkpoint and channel otherwise."""
        record = stored.record
        thread_id, ns = record.thread_id, record.checkpoint_ns
        where = (
            f"thread {thread_id!r}, namespace {ns!r}, checkpoint {record.checkpoint_id!r}"
        )
        type_, data = self._open(record.type, record.data, _checkpoint_place(record), where, None)
        blobs = {}
        for channel, blob in stored.blobs.items():
            blob_type, blob_data = self._open(
                blob.type, blob.data, _blob_place(thread_id, ns, blob),
                f"{where}, channel {channel!r}", blob.item_refs,
            )
            blobs[channel] = BlobRecord(
                blob.channel, blob.version, blob_type, blob_data, blob.item_refs, blob.base_version
            )
        writes = []
        for write in stored.writes:
            place = _write_place(thread_id, ns, record.checkpoint_id, write)
            write_type, write_data = self._open(
                write.type, write.data, place,
                f"{where}, write {write.channel!r} by task {write.task_id!r}", write.item_refs,
            )
            writes.append(replace(write, type=write_type, data=write_data))
        items = {}
        opened = self._opened_items
        for ref, item in stored.items.items():
            # Items are shared by many checkpoints of a thread and decrypted on every read:
            # keep what opened, keyed by everything its place and ciphertext are, so a
            # ciphertext moved to another place still has to open there.
            key = (thread_id, bytes(ref), item.item_refs, item.type, bytes(item.data))
            hit = opened.get(key)
            if hit is None:
                try:
                    hit = self._open(
                        item.type, item.data, _item_place(thread_id, item), "", item.item_refs
                    )
                except CorruptDataError as exc:
                    raise CorruptDataError(
                        f"{where}, channel {_user_of(stored, ref)!r}: stored item {ref.hex()} {exc}"
                    ) from None
                opened.put(key, hit)
            items[ref] = ItemRecord(item.ref, hit[0], hit[1], item.item_refs)
        return StoredCheckpoint(
            CheckpointRecord(
                record.thread_id, ns, record.checkpoint_id, record.parent_checkpoint_id,
                type_, data, record.channel_versions, record.metadata, record.run_id,
            ),
            blobs, writes, items,
        )

    def _open(
        self,
        type_: str,
        data: bytes,
        place: tuple[Any, ...],
        where: str,
        refs: Sequence[bytes] | None,
    ) -> tuple[str, bytes]:
        sealer = self._sealer
        assert sealer is not None
        prefix = f"{where}: " if where else ""
        if sealer.read_legacy and type_ in _LEGACY_LAYOUTS:
            # Release 0.1 stored list layouts unencrypted: accept their structure only, with
            # every value in it still encrypted.
            try:
                return type_, _open_legacy_layout(sealer, type_, bytes(data))
            except Exception as exc:  # any parse failure of planted bytes: the library's error
                raise CorruptDataError(f"{prefix}stored value cannot be read: {exc}") from None
        try:
            return sealer.open(type_, data, place)
        except SealError as exc:
            hint = ""
            if type_ in _LEGACY_LAYOUTS:
                hint = (
                    " (release 0.1 stored list layouts unencrypted: to read such data, pass "
                    "serde=EncryptedSerializer(AesGcmCipher(key, read_legacy=True)))"
                )
            raise CorruptDataError(
                f"{prefix}stored value cannot be decrypted: {exc}{hint}"
            ) from None

    # -- metadata -------------------------------------------------------------------------

    @staticmethod
    def dump_metadata(metadata: Mapping[str, Any]) -> bytes:
        """Metadata as JSON every backend stores and filters alike, or a clear error:
        SerializationError naming the path of what JSON cannot hold (a non-JSON type, an
        int beyond 64 bits, a lone surrogate, NaN or infinity, nesting orjson refuses),
        InvalidConfigError for a NUL character (PostgreSQL's jsonb cannot hold one)."""
        try:
            data = orjson.dumps(metadata, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:

            def fails(child: Any) -> bool:
                try:
                    orjson.dumps(child, option=orjson.OPT_NON_STR_KEYS)
                except TypeError:
                    return True
                return False

            where = locate_failure(fails, metadata, "checkpoint metadata")
            raise SerializationError(f"{where} is not JSON data: {exc}") from exc
        # orjson writes NaN and infinity as null, silently: look only when a null is there.
        if b"null" in data:
            bad = _non_finite_path(metadata, "checkpoint metadata")
            if bad is not None:
                raise SerializationError(
                    f"{bad} is not JSON data: NaN and infinity have no JSON form"
                )
        # orjson writes NUL as \u0000; only then is it worth decoding to be sure.
        if b"\\u0000" in data:
            bad = _nul_path(orjson.loads(data), "checkpoint metadata")
            if bad is not None:
                raise InvalidConfigError(
                    f"{bad} holds a NUL character ('\\x00'), which PostgreSQL's JSON "
                    "cannot store; no backend accepts it"
                )
        return data

    @staticmethod
    def load_metadata(data: bytes | str, where: str) -> dict[str, Any]:
        try:
            loaded = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise CorruptDataError(f"{where}: metadata is not valid JSON ({exc})") from exc
        if not isinstance(loaded, dict):
            raise CorruptDataError(f"{where}: metadata is not a JSON object")
        return loaded


_LEGACY_LAYOUTS = frozenset({ITEM_LIST_TYPE, ITEM_DICT_TYPE, SEGMENT_TYPE})


def _checkpoint_place(record: CheckpointRecord) -> tuple[Any, ...]:
    return (
        "checkpoint",
        record.thread_id,
        record.checkpoint_ns,
        record.checkpoint_id,
        record.parent_checkpoint_id or "",
        sorted(record.channel_versions.items()),
    )


def _blob_place(thread_id: str, checkpoint_ns: str, blob: BlobRecord) -> tuple[Any, ...]:
    return ("blob", thread_id, checkpoint_ns, blob.channel, blob.version, b"".join(blob.item_refs))


def _write_place(
    thread_id: str, checkpoint_ns: str, checkpoint_id: str, write: WriteRecord
) -> tuple[Any, ...]:
    return (
        "write", thread_id, checkpoint_ns, checkpoint_id, write.task_id, write.idx,
        write.channel, write.task_path, b"".join(write.item_refs),
    )


def _item_place(thread_id: str, item: ItemRecord) -> tuple[Any, ...]:
    return ("item", thread_id, bytes(item.ref), b"".join(item.item_refs))


def _user_of(stored: StoredCheckpoint, ref: bytes) -> str:
    """The channel whose value references an item (for an error message)."""
    for channel, blob in stored.blobs.items():
        if ref in blob.item_refs:
            return channel
    for write in stored.writes:
        if ref in write.item_refs:
            return write.channel
    for item in stored.items.values():
        if ref in item.item_refs:
            return _user_of(stored, item.ref)
    return "?"


def _only_placeholders(layout: bytes) -> None:
    """A legacy list layout may only hold item placeholders: its elements were items,
    each encrypted; an inline element would be plaintext nobody encrypted."""
    if any(entry is not None for entry in ormsgpack.unpackb(layout)):
        raise SealError("an unencrypted element was planted in an encrypted list")


def _open_legacy_layout(sealer: Sealer, type_: str, data: bytes) -> bytes:
    """A release-0.1 list layout, checked (and for an item dict, its values decrypted)."""
    if type_ == SEGMENT_TYPE:
        _only_placeholders(data)
        return data
    if type_ == ITEM_LIST_TYPE:
        _only_placeholders(data[skip_object(data, 0) :])
        return data
    entries = []
    for key, sub_type, sub_data, ref_count in ormsgpack.unpackb(
        data, option=ormsgpack.OPT_NON_STR_KEYS
    ):
        if sub_type == ITEM_LIST_TYPE:
            _only_placeholders(sub_data[skip_object(sub_data, 0) :])
        elif "+" in sub_type:
            sub_type, sub_data = sealer.open_legacy(sub_type, sub_data)
        else:
            raise SealError(f"an unencrypted value ({sub_type[:40]!r}) was planted in an encrypted dict")
        entries.append((key, sub_type, sub_data, ref_count))
    return ormsgpack.packb(entries, option=ormsgpack.OPT_NON_STR_KEYS)
