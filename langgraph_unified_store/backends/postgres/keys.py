"""The key codec of ``lus_store``: every row's binary key, its stored type, lock keys.

Python is the only place that encodes ids into keys; SQL only ever takes keys apart (the
expressions in ``sql.py``). The layouts, built by the functions below:

    checkpoint  b"c" ns 0x00 ordered(checkpoint_id)
    blob        b"b" ns 0x00 version 0x00 channel
    item        b"i" ref
    writes      b"w" ns 0x00 ordered(checkpoint_id) id(task_id) idx+2**31 (4 bytes)

where ordered() is ``ordered_ids.encode_ordered_id`` (18-19 bytes for a UUID, in text
order, so a thread's checkpoints are one key range in id order) and id() is 0x01 and the
16 bytes of a canonical UUID, else 0x02, the UTF-8 text and 0x00. Text never holds NUL,
so the separators are unambiguous, and a checkpoint's writes are the key range b"w" +
its key without the b"c", up to 0x03 after that.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from ...core.codec import COMPRESSED_CHECKPOINT, COMPRESSED_ITEM
from ...core.records import EMPTY_TYPE, ITEM_DICT_TYPE, ITEM_LIST_TYPE, SEGMENT_TYPE
from ...errors import CorruptDataError, InvalidConfigError
from .ordered_ids import decode_ordered_id, encode_ordered_id

CHECKPOINT_KIND: Final = b"c"
BLOB_KIND: Final = b"b"
ITEM_KIND: Final = b"i"
WRITE_KIND: Final = b"w"
UUID_ID: Final = b"\x01"
TEXT_ID: Final = b"\x02"
WRITE_IDX_OFFSET: Final = 2**31
WRITE_IDX_MAX: Final = b"\xff\xff\xff\xff"
CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Serde type tags stored as one control character (every row has one, and these few are
# nearly all of them); any other tag is stored as it is, behind TYPE_ESCAPE if it starts
# with a control character itself. Append only: the codes are stored.
WRITES_TYPE: Final = "lus.writes"
TYPE_CODES: Final = (
    "msgpack",
    "null",
    "json",
    "bytes",
    EMPTY_TYPE,
    ITEM_LIST_TYPE,
    ITEM_DICT_TYPE,
    SEGMENT_TYPE,
    COMPRESSED_ITEM + "msgpack",
    COMPRESSED_CHECKPOINT + "msgpack",
    WRITES_TYPE,
)
TYPE_ESCAPE: Final = "\x1f"
_TYPE_CODE: Final = {type_: chr(1 + number) for number, type_ in enumerate(TYPE_CODES)}
STORED_WRITES_TYPE: Final = _TYPE_CODE[WRITES_TYPE]


def stored_type(type_: str) -> str:
    """A serde type tag as the ``type`` column holds it (see TYPE_CODES)."""
    code = _TYPE_CODE.get(type_)
    if code is not None:
        return code
    return TYPE_ESCAPE + type_ if type_ and type_[0] < " " else type_


def read_type(stored: str) -> str:
    """The serde type tag ``stored_type`` stored."""
    if stored and stored[0] < " ":
        if stored[0] == TYPE_ESCAPE:
            return stored[1:]
        if len(stored) == 1 and ord(stored) <= len(TYPE_CODES):
            return TYPE_CODES[ord(stored) - 1]
    return stored


def lock_key(schema: str, thread_id: str) -> int:
    """A thread's advisory lock key (a signed 64-bit int), scoped to the schema."""
    digest = hashlib.blake2b(
        f"{schema}\0{thread_id}".encode("utf-8", "surrogatepass"), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def id_bytes(value: str) -> bytes:
    """An id inside a key: a canonical UUID in 17 bytes, any other text NUL-terminated."""
    if len(value) == 36 and CANONICAL_UUID.fullmatch(value):
        return UUID_ID + bytes.fromhex(value.replace("-", ""))
    return TEXT_ID + value.encode() + b"\x00"


def read_id(key: bytes, start: int) -> tuple[str, int]:
    """The id encoded by ``id_bytes`` at ``start`` of a key, and where it ends."""
    if key[start : start + 1] == UUID_ID:
        h = key[start + 1 : start + 17].hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", start + 17
    end = key.index(0, start + 1)
    return key[start + 1 : end].decode(), end + 1


def stored_id(value: str | None) -> bytes | None:
    """A parent checkpoint id as a checkpoint row's ``refs`` holds it."""
    return None if value is None else id_bytes(value)


def read_stored_id(stored: bytes | None) -> str | None:
    return None if stored is None else read_id(stored, 0)[0]


def blob_key(checkpoint_ns: str, channel: str, version: str) -> bytes:
    return BLOB_KIND + checkpoint_ns.encode() + b"\x00" + version.encode() + b"\x00" + channel.encode()


def item_key(ref: bytes) -> bytes:
    return ITEM_KIND + ref


def checkpoint_prefix(checkpoint_ns: str) -> bytes:
    """The keys of a namespace's checkpoints all start with this."""
    return CHECKPOINT_KIND + checkpoint_ns.encode() + b"\x00"


def checkpoint_key(checkpoint_ns: str, checkpoint_id: str) -> bytes:
    return checkpoint_prefix(checkpoint_ns) + encode_ordered_id(checkpoint_id)


def read_checkpoint_key(thread_id: str, key: bytes) -> tuple[str, str]:
    """(checkpoint_ns, checkpoint_id) of a checkpoint row's key."""
    try:
        end = key.index(0, 1)
        return key[1:end].decode(), decode_ordered_id(key, end + 1)[0]
    except ValueError:
        raise CorruptDataError(
            f"thread {thread_id!r}: a stored checkpoint key is damaged ({bytes(key)!r})"
        ) from None


def prefix_end(prefix: bytes) -> bytes:
    """The least key above every key starting with ``prefix`` (which ends in 0x00)."""
    return prefix[:-1] + b"\x01"


def write_prefix(checkpoint_ns: str, checkpoint_id: str) -> bytes:
    """The keys of a checkpoint's writes rows all start with this."""
    return WRITE_KIND + checkpoint_ns.encode() + b"\x00" + encode_ordered_id(checkpoint_id)


def write_index(idx: int) -> bytes:
    if not -WRITE_IDX_OFFSET <= idx < WRITE_IDX_OFFSET:
        raise InvalidConfigError(f"write index {idx!r} does not fit in 32 bits")
    return (idx + WRITE_IDX_OFFSET).to_bytes(4, "big")


def write_key(prefix: bytes, task_id: str, idx: int) -> bytes:
    return prefix + id_bytes(task_id) + write_index(idx)


def read_write_key(key: bytes, prefix_length: int) -> tuple[str, int]:
    """(task_id, first idx) of a writes row's key."""
    task_id, end = read_id(key, prefix_length)
    return task_id, int.from_bytes(key[end : end + 4], "big") - WRITE_IDX_OFFSET
