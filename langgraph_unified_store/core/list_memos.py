"""What a saver remembers of the lists it stored, to encode their next version from there.

Split from ``core.codec``: a message list that grows by appending is encoded from the
end of the version last stored (its elements keep their items and segments); the memo
of that version, and its bounded, thread-safe store, are this module.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

# An entry of a list being encoded: (None, ref) for an item, (type, bytes) for an inline element.
Entry = tuple[str | None, bytes]
MemoKey = tuple[str, str, str]  # (thread_id, checkpoint_ns, channel)
# What the codec remembers of lists it stored, to encode their next version from there.
MEMO_MAX_BYTES = 64 * 1024 * 1024
MEMO_MAX_LISTS = 4096


@dataclass(slots=True)
class ListMemo:
    """One list as the codec last stored it: its packed elements and their entries."""

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
