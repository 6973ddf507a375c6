"""The key and field codec: how thread ids, namespaces, checkpoint ids and channels
become Redis keys, hash fields and sorted-set members (the layout is in ``__init__``).

The Lua side of the same codec is ``lua/lib/members.lua``; stored data depends on both,
so neither may change.
"""

from __future__ import annotations

import base64
from enum import StrEnum
from typing import Final

RUN_COUNTER_FIELD: Final = b"#"
"""The field of ``B:r`` that counts checkpoint numbers given out (the rest are numbers)."""


class ThreadKey(StrEnum):
    """The keys of one thread: its base key ``B`` plus ``:`` and one of these."""

    INDEX = "i"
    """zset: ``P NUL n`` of every checkpoint."""
    BY_ID = "a"
    """zset: ``<escaped id> NUL <hex ns>`` of checkpoints outside the root namespace."""
    CHECKPOINTS = "c"
    """hash: n -> frame(head JSON, type, record bytes)."""
    METADATA = "m"
    """hash: n -> metadata JSON."""
    RUNS = "r"
    """hash: n -> run id; ``#`` -> the last number given."""
    BLOBS = "b"
    """hash: ``<hex ns>:<hex channel>:<version>`` -> frame(item refs, type, bytes)."""
    WRITES = "w"
    """hash: ``n NUL k`` (or ``P NUL k`` while waiting) -> frame(item refs, head, bytes)."""
    ITEMS = "t"
    """hash: item ref -> frame(item refs, type, bytes)."""
    LIFECYCLE = "h"
    """hash: f (first write), l (last write), t (own ttl, 0 pinned), e (expiry), in ms."""


def utf8(text: str) -> bytes:
    """UTF-8 of any Python str, even one holding a lone surrogate (it round-trips)."""
    return text.encode("utf-8", "surrogatepass")


def text_of(data: bytes) -> str:
    """The str ``utf8`` encoded."""
    return data.decode("utf-8", "surrogatepass")


def hex_of(text: str) -> str:
    """Hex of the UTF-8 of ``text``: namespaces, channels and run ids in keys and fields."""
    return utf8(text).hex()


def unhex(data: bytes) -> str:
    """The str ``hex_of`` encoded."""
    return text_of(bytes.fromhex(data.decode("ascii")))


def escape(text: str) -> bytes:
    """UTF-8 without NUL (NUL is 01 01, 01 is 01 02): sorts as the text does."""
    return utf8(text).replace(b"\x01", b"\x01\x02").replace(b"\x00", b"\x01\x01")


def unescape(data: bytes) -> str:
    """The str ``escape`` encoded."""
    return text_of(data.replace(b"\x01\x01", b"\x00").replace(b"\x01\x02", b"\x01"))


def thread_base_key(prefix: str, thread_id: str) -> str:
    """``B`` = ``<prefix>:{t<base64url of the thread id>}``: the hash tag puts every key of
    the thread in one cluster slot."""
    tag = base64.urlsafe_b64encode(utf8(thread_id)).rstrip(b"=").decode("ascii")
    return f"{prefix}:{{t{tag}}}"


def thread_key(base: str, key: ThreadKey) -> str:
    """One key of the thread whose base key is ``base``."""
    return f"{base}:{key.value}"


def threads_index_key(prefix: str) -> str:
    """The global zset of thread ids, scored by expiry time in ms (or +inf: never)."""
    return f"{prefix}:threads"


def names_index_key(prefix: str) -> str:
    """The global zset of thread ids, all scored 0: paged by id (ZRANGEBYLEX)."""
    return f"{prefix}:threads:names"


def written_index_key(prefix: str) -> str:
    """The global zset of thread ids, scored by last write time in ms."""
    return f"{prefix}:threads:written"


def run_index_key(prefix: str, run_id: str) -> str:
    """The global set of the threads holding checkpoints of one run (without a TTL)."""
    return f"{prefix}:run:{hex_of(run_id)}"


def checkpoint_key(checkpoint_ns: str, checkpoint_id: str) -> bytes:
    """A checkpoint's key P, ``<hex ns>:<escaped id>``; its B:i member is P NUL number."""
    return f"{hex_of(checkpoint_ns)}:".encode() + escape(checkpoint_id)


def by_id_entry(checkpoint_ns: str, checkpoint_id: str) -> bytes:
    """A checkpoint's B:a entry (outside the root namespace): escaped id NUL hex ns."""
    return escape(checkpoint_id) + b"\x00" + hex_of(checkpoint_ns).encode()


def split_index_member(member: bytes) -> tuple[str, str]:
    """(namespace, checkpoint id) of a B:i member or a P; ValueError when it is neither."""
    ns_hex, rest = member.split(b":", 1)
    return unhex(ns_hex), unescape(rest.split(b"\x00", 1)[0])


def namespace_hex_of(member: bytes) -> str:
    """The hex namespace a B:i member or a P begins with."""
    return member.split(b":", 1)[0].decode()


def blob_field(ns_hex: str, channel: str, version: str) -> bytes:
    """A blob's B:b field, ``<hex ns>:<hex channel>:<version>``."""
    return f"{ns_hex}:{hex_of(channel)}:".encode() + utf8(version)

