"""Turning channel values and writes into records and back, for every backend at once.

A list-valued value (a message list, most often) is split: each element large
enough to matter becomes an *item* stored once per thread under a keyed hash of
its serialized form, and the blob keeps only the references. A 100-turn chat
then stores each message once instead of once per checkpoint.

Around it: ``core.list_memos`` (what was last stored, to extend it), ``core.compression``
(deflating items and skeletons), ``core.sealed_records`` (sealing and opening records
under encryption, a base of ``Codec``) and ``core.failure_paths`` (naming the part of a
value that cannot be stored).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
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
from .compression import COMPRESSED_CHECKPOINT as COMPRESSED_CHECKPOINT
from .compression import COMPRESSED_ITEM as COMPRESSED_ITEM
from .compression import INFLATED_ITEMS, INFLATED_MAX_BYTES, deflate, inflate
from .decoded_items import DecodedItems
from .dictionaries import CHECKPOINT_DICTIONARY_V1, ITEM_DICTIONARY_V1
from .encryption import Sealer
from .failure_paths import (
    locate_failure,
    locate_unserializable,
    non_finite_path,
    nul_path,
    path_segment,
)
from .limits import DEFAULT_READ_LIMITS, ELEMENT_COST, ReadBudget, ReadLimits
from .list_memos import Entry, ListMemo, ListMemos, MemoKey
from .msgpack_split import array_header_size, join_array, skip_object, split_concatenated
from .records import (
    ITEM_DICT_TYPE,
    ITEM_LIST_TYPE,
    ITEM_REF_SIZE,
    SEGMENT_TYPE,
    ItemRecord,
)
from .sealed_records import OpenedItems, RecordSealing
from .sealed_records import _blob_place as _blob_place
from .serde import resolve_serde

# Dicts nested deeper than this are stored whole rather than split (see _encode_dict).
DICT_SPLIT_DEPTH = 8
# Elements smaller than this stay inline in the list blob: a reference would not save space.
ITEM_MIN_BYTES = 64
# Entries in the smallest segment; larger segments hold this times a power of two.
SEGMENT_UNIT = 8
MSGPACK = "msgpack"
# Item dicts nest when a dict value holds dicts with lists; this library splits only the
# top DICT_SPLIT_DEPTH levels, so a deeper stored nesting is not its data and would only
# cost recursion to read.
ITEM_DICT_MAX_DEPTH = 32

EncodedValue = tuple[str, bytes, tuple[bytes, ...], list[ItemRecord]]


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


class Codec(RecordSealing):
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
        self._opened_items = OpenedItems(INFLATED_MAX_BYTES)

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
            sub_where = f"{where}[{path_segment(key)}]"
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
        decoded: DecodedItems | None = None,
    ) -> Any:
        """A stored value read back, or CorruptDataError naming ``where``.

        ``budget`` is shared by every value of one read (see ``core.limits``); without
        one, the value gets a budget of its own. ``stored_size``: what ``data`` took in
        storage, when the backend inflated it itself (then ``data`` counts as decoded).
        ``decoded``: the items a ``list`` call already decoded (``core.decoded_items``).
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
            return self._decode(type_, data, items, refs, budget, 0, decoded)
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
        decoded: DecodedItems | None = None,
    ) -> Any:
        if type_ == ITEM_DICT_TYPE:
            return self._decode_dict(data, items, refs, budget, depth, decoded)
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
        element_refs: list[bytes | None] = []
        for ref in refs[:segment_count]:
            segment = self._item(items, ref)
            if segment.type != SEGMENT_TYPE:
                raise CorruptDataError(f"stored item {ref.hex()} is not a segment")
            if budget.first_use(ref):
                budget.stored += len(segment.data) + ITEM_REF_SIZE * len(segment.item_refs)
            inner = iter(segment.item_refs)
            self._expand(segment.data, inner, items, budget, elements, element_refs)
            if next(inner, None) is not None:
                raise CorruptDataError(f"segment {ref.hex()} names more items than it uses")
        tail_refs = iter(refs[segment_count:])
        self._expand(data[unpacker_offset:], tail_refs, items, budget, elements, element_refs)
        if next(tail_refs, None) is not None:
            raise CorruptDataError("more item references than the list uses")
        if decoded is not None:
            return self._elements_once(elements, element_refs, decoded)
        return self._load_elements(elements)

    def _load_elements(self, elements: list[tuple[str, bytes]]) -> list[Any]:
        if self._batchable and all(t == MSGPACK for t, _ in elements):
            loaded: list[Any] = self._plain.loads_typed(
                (MSGPACK, join_array([b for _, b in elements]))
            )
            return loaded
        return [self._plain.loads_typed(element) for element in elements]

    def _elements_once(
        self,
        elements: list[tuple[str, bytes]],
        element_refs: list[bytes | None],
        decoded: DecodedItems,
    ) -> list[Any]:
        """The elements, each stored item this call decoded before given as a fresh
        copy of that value, the rest decoded (in one call when batchable) and kept."""
        result: list[Any] = [None] * len(elements)
        missing: list[int] = []
        for index, ref in enumerate(element_refs):
            if ref is not None:
                type_, body = elements[index]
                hit, value = decoded.take(ref, type_, body)
                if hit:
                    result[index] = value
                    continue
            missing.append(index)
        if missing:
            loaded = self._load_elements([elements[index] for index in missing])
            for index, value in zip(missing, loaded, strict=True):
                result[index] = value
                ref = element_refs[index]
                if ref is not None:
                    decoded.keep(ref, *elements[index], value)
        return result

    def _decode_dict(
        self,
        data: bytes,
        items: Mapping[bytes, ItemRecord],
        refs: Sequence[bytes],
        budget: ReadBudget,
        depth: int,
        decoded: DecodedItems | None = None,
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
                sub_type, sub_data, items, refs[offset : offset + ref_count], budget, depth + 1,
                decoded,
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
        into_refs: list[bytes | None],
    ) -> None:
        """Append the elements ``layout`` lays out to ``into`` (and the item each is, or
        None, to ``into_refs``), charging each to ``budget`` (an element named twice
        costs twice: repeating references buys no memory; a cached decode too)."""
        entries = ormsgpack.unpackb(layout)
        if type(entries) is not list:
            raise CorruptDataError("a stored list layout is not a list")
        limit = budget.limit()
        used = budget.used
        seen = budget.seen
        cached = INFLATED_ITEMS.cached
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
                        body = INFLATED_ITEMS.inflate(item.data, budget)
                        used = budget.used
                    else:
                        used += len(body)
                    into.append((item_type[len(COMPRESSED_ITEM) :], body))
                else:
                    used += len(item.data)
                    into.append((item_type, item.data))
                into_refs.append(ref)
                used += ELEMENT_COST
            elif type(entry) is bytes:
                used += len(entry) + ELEMENT_COST
                into.append((MSGPACK, entry))
                into_refs.append(None)
            elif (
                type(entry) is list
                and len(entry) == 2
                and type(entry[0]) is str
                and type(entry[1]) is bytes
            ):
                used += len(entry[1]) + ELEMENT_COST
                into.append((entry[0], entry[1]))
                into_refs.append(None)
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
            bad = non_finite_path(metadata, "checkpoint metadata")
            if bad is not None:
                raise SerializationError(
                    f"{bad} is not JSON data: NaN and infinity have no JSON form"
                )
        # orjson writes NUL as \u0000; only then is it worth decoding to be sure.
        if b"\\u0000" in data:
            bad = nul_path(orjson.loads(data), "checkpoint metadata")
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
