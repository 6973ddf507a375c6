"""A LangGraph checkpoint as records and back: the saver's pure encode and decode steps.

Split from ``core.saver``: ``encode_checkpoint`` turns what ``put`` is given into the
records a backend stores (the skeleton, a blob per new channel value, the items they
need), ``encode_writes`` does the same for ``put_writes``, ``decode_checkpoint`` turns
what a backend hands back into a ``CheckpointTuple``, and ``list_query`` turns ``list``'s
arguments into the backend's query. None does I/O; the saver calls them and talks to
the backend. The skeleton keys below are part of the stored format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointTuple,
    get_checkpoint_id,
    writes_sort_key,
)

from ..errors import CorruptDataError, InvalidConfigError
from .codec import Codec
from .decoded_items import DecodedItems
from .limits import ReadBudget, ReadLimits
from .list_memos import ListMemo
from .records import (
    EMPTY_TYPE,
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
)
from .validate import (
    INT64_MAX,
    check_checkpoint_shape,
    check_filter_value,
    check_metadata_shape,
    check_text,
    check_thread_id,
    check_versions,
    show,
)

# Skeleton key listing the channels whose value is None (see encode_checkpoint); written
# by releases before CHANNEL_KINDS_KEY, still read.
NONE_CHANNELS_KEY: Final = "lus_none"
# Skeleton key of what each channel of channel_versions holds, one letter per channel in
# sorted name order: a value (stored as a blob), None, or no value in channel_values (an
# emptied channel, or a DeltaChannel between snapshots, whose blob at that version, if
# any, still reads back). A reader then tells an empty channel from a value that went
# missing (CorruptDataError); a skeleton without it (an earlier release) reads as
# before: no blob means empty.
CHANNEL_KINDS_KEY: Final = "lus_c"
KIND_VALUE: Final = "v"
KIND_NONE: Final = "n"
KIND_EMPTY: Final = "e"


def require_configurable(config: RunnableConfig | None, what: str) -> dict[str, Any]:
    """The config's ``configurable`` with a checked thread id, namespace and checkpoint id
    (``core.validate``: text every backend can store, or InvalidConfigError naming it)."""
    if not config or not isinstance(config.get("configurable"), Mapping):
        raise InvalidConfigError(
            f"{what}: config has no 'configurable' section with a 'thread_id' "
            "(e.g. {'configurable': {'thread_id': 'my-thread'}})"
        )
    configurable: dict[str, Any] = dict(config["configurable"])
    configurable["thread_id"] = check_thread_id(configurable.get("thread_id"), what)
    ns = configurable.get("checkpoint_ns") or ""
    configurable["checkpoint_ns"] = check_text(ns, "checkpoint_ns", what)
    checkpoint_id = configurable.get("checkpoint_id")
    if checkpoint_id is not None:
        check_text(checkpoint_id, "checkpoint_id", what)
    return configurable


def checkpoint_config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    """The config LangGraph names one checkpoint by."""
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def channel_kinds(
    stored: Any, record: CheckpointRecord, where: str
) -> dict[str, str] | None:
    """CHANNEL_KINDS_KEY of a skeleton as channel -> kind; None for an earlier release's."""
    if stored is None:
        return None
    names = sorted(record.channel_versions)
    if (
        not isinstance(stored, str)
        or len(stored) != len(names)
        or not set(stored) <= {KIND_VALUE, KIND_NONE, KIND_EMPTY}
    ):
        raise CorruptDataError(
            f"{where}: the stored kinds of its channels do not match its channel_versions"
        )
    return dict(zip(names, stored, strict=True))


def decode_checkpoint(
    codec: Codec,
    read_limits: ReadLimits,
    stored: StoredCheckpoint,
    items_once: DecodedItems | None = None,
) -> CheckpointTuple:
    """A stored checkpoint read back as LangGraph's ``CheckpointTuple`` (opened first when
    encrypted), or CorruptDataError naming the thread, namespace, checkpoint and channel.
    ``items_once``: the items this ``list`` call decoded already (``core.decoded_items``)."""
    record = stored.record
    where = (
        f"thread {record.thread_id!r}, namespace {record.checkpoint_ns!r}, "
        f"checkpoint {record.checkpoint_id!r}"
    )
    if not isinstance(record.channel_versions, dict):
        raise CorruptDataError(f"{where}: stored channel_versions is not a mapping")
    if codec.sealed:
        stored = codec.open_checkpoint(stored)
        record = stored.record
    # One budget for the whole read: what it may decode grows with what it fetched.
    budget = ReadBudget(read_limits)
    decoded = codec.decode_value(
        record.type, record.data, {}, where, (), budget, stored_size=record.stored_size
    )
    if not isinstance(decoded, dict):
        raise CorruptDataError(f"{where}: stored checkpoint is not a mapping")
    none_channels = decoded.pop(NONE_CHANNELS_KEY, [])
    if not isinstance(none_channels, list):
        raise CorruptDataError(f"{where}: stored list of None-valued channels is damaged")
    kinds = channel_kinds(decoded.pop(CHANNEL_KINDS_KEY, None), record, where)
    checkpoint = cast(Checkpoint, decoded)
    # The id and string versions are stored once, in the record (see encode_checkpoint).
    checkpoint["id"] = record.checkpoint_id
    in_skeleton = "channel_versions" in checkpoint
    if not in_skeleton:
        checkpoint["channel_versions"] = dict(record.channel_versions)
    check_checkpoint_shape(decoded, where, check_versions=in_skeleton)
    if kinds is None:  # an earlier release's skeleton
        kinds = {
            c: KIND_NONE for c in none_channels if isinstance(c, str) and c in record.channel_versions
        }
    values: dict[str, Any] = {}
    for channel, version in record.channel_versions.items():
        kind = kinds.get(channel)
        if kind == KIND_NONE:
            values[channel] = None
            continue
        blob = stored.blobs.get(channel)
        if blob is None:
            if kind != KIND_VALUE:
                # Emptied (or an earlier release's skeleton, where no blob meant that).
                continue
            # GC or someone else removed a value this checkpoint names: never read
            # that as an empty channel.
            raise CorruptDataError(
                f"{where}, channel {channel!r}: its stored value (version {version!r}) "
                "is missing"
            )
        if blob.type == EMPTY_TYPE:
            continue
        values[channel] = codec.decode_value(
            blob.type,
            blob.data,
            stored.items,
            f"{where}, channel {channel!r}",
            blob.item_refs,
            budget,
            decoded=items_once,
        )
    checkpoint["channel_values"] = values
    writes = sorted(stored.writes, key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx))
    pending = [
        (
            w.task_id,
            w.channel,
            codec.decode_value(
                w.type, w.data, stored.items, f"{where}, write {w.channel!r}", w.item_refs,
                budget, decoded=items_once,
            ),
        )
        for w in writes
    ]
    metadata = codec.load_metadata(record.metadata, where)
    check_metadata_shape(metadata, where)
    parent = record.parent_checkpoint_id
    return CheckpointTuple(
        config=checkpoint_config(record.thread_id, record.checkpoint_ns, record.checkpoint_id),
        checkpoint=checkpoint,
        metadata=metadata,  # type: ignore[arg-type]
        parent_config=(
            checkpoint_config(record.thread_id, record.checkpoint_ns, parent) if parent else None
        ),
        pending_writes=pending,
    )


def encode_checkpoint(
    codec: Codec,
    configurable: Mapping[str, Any],
    checkpoint: Checkpoint,
    metadata: Mapping[str, Any],
    new_versions: ChannelVersions,
    memos: list[ListMemo],
    *,
    resend: bool = False,
) -> tuple[CheckpointRecord, list[BlobRecord], list[ItemRecord], list[str]]:
    """The records of a put, and the channels whose stored blob (at the version in
    channel_versions) it names without sending: ``put_checkpoint`` must find those.
    With ``resend``, every value is sent and nothing is relied on."""
    thread_id: str = configurable["thread_id"]
    ns: str = configurable["checkpoint_ns"]
    if not isinstance(checkpoint, Mapping):
        raise InvalidConfigError(f"put: checkpoint must be a mapping, not {type(checkpoint).__name__}")
    checkpoint_id = checkpoint.get("id")
    if not isinstance(checkpoint_id, str) or not checkpoint_id:
        raise InvalidConfigError("put: the checkpoint has no 'id'")
    check_text(checkpoint_id, "checkpoint id", "put")
    versions = check_versions(checkpoint.get("channel_versions"), "channel_versions", "put")
    if not (type(new_versions) is dict and new_versions.items() <= versions.items()):
        # (LangGraph's new versions are a part of channel_versions: checked already.)
        check_versions(new_versions, "new_versions", "put")
    if not isinstance(checkpoint.get("channel_values") or {}, Mapping):
        raise InvalidConfigError("put: the checkpoint's channel_values must be a mapping")
    # String versions are kept once, in the record's plaintext channel_versions; other
    # types (ints, from hand-made checkpoints) stay in the skeleton to keep their type.
    dropped = ("channel_values", "id", "channel_versions") if all(
        isinstance(v, str) for v in versions.values()
    ) else ("channel_values", "id")
    skeleton = {k: v for k, v in checkpoint.items() if k not in dropped}
    values = checkpoint.get("channel_values") or {}
    # None values (LangGraph's branch:to:* triggers, every step) ride in the skeleton,
    # where they cost a few deflated bytes, instead of a blob row each.
    # What each channel holds (see CHANNEL_KINDS_KEY): None values ride here, where
    # they cost a letter, and so does "emptied", instead of a blob row each.
    skeleton[CHANNEL_KINDS_KEY] = "".join(
        KIND_EMPTY if c not in values else KIND_NONE if values[c] is None else KIND_VALUE
        for c in sorted(versions)
    )
    if resend:
        new_versions = {
            c: v for c, v in versions.items() if c in values and values[c] is not None
        }
    blobs: list[BlobRecord] = []
    items: list[ItemRecord] = []
    for channel, version in new_versions.items():
        # A new version with no value is an emptied channel: no blob is stored for it.
        if channel in values and values[channel] is not None:
            memo_count = len(memos)
            type_, data, refs, new_items = codec.encode_value(
                values[channel],
                f"channel {channel!r} of thread {thread_id!r}",
                (thread_id, ns, channel),
                memos,
            )
            items.extend(new_items)
            base_version = None
            if len(memos) > memo_count:
                memos[-1].version = str(version)
                base_version = memos[-1].base_version
            blobs.append(BlobRecord(channel, str(version), type_, data, refs, base_version))
    sent = {(b.channel, b.version) for b in blobs}
    inherited = [
        c
        for c, v in versions.items()
        if c in values and values[c] is not None and (c, str(v)) not in sent
    ]
    type_, data = codec.dumps_checkpoint(skeleton)
    run_id = metadata.get("run_id")
    record = CheckpointRecord(
        thread_id=thread_id,
        checkpoint_ns=ns,
        checkpoint_id=checkpoint_id,
        parent_checkpoint_id=configurable.get("checkpoint_id"),
        type=type_,
        data=data,
        channel_versions={k: str(v) for k, v in versions.items()},
        metadata=codec.dump_metadata(metadata),
        run_id=None if run_id is None else str(run_id),
    )
    if codec.sealed:
        record, blobs, items = codec.seal_checkpoint(record, blobs, items)
    return record, blobs, items, inherited


def encode_writes(
    codec: Codec,
    configurable: Mapping[str, Any],
    checkpoint_id: str,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str,
) -> tuple[list[WriteRecord], list[ItemRecord]]:
    """The records of a put_writes (sealed when the codec encrypts), and the items they
    need stored; a write to a special channel (``WRITES_IDX_MAP``) keeps its fixed idx."""
    records: list[WriteRecord] = []
    items: list[ItemRecord] = []
    for idx, (channel, value) in enumerate(writes):
        type_, data, refs, new_items = codec.encode_value(
            value, f"write to channel {channel!r} by task {task_id!r}"
        )
        items.extend(new_items)
        records.append(
            WriteRecord(
                task_id=task_id,
                idx=WRITES_IDX_MAP.get(channel, idx),
                channel=channel,
                type=type_,
                data=data,
                task_path=task_path,
                item_refs=refs,
            )
        )
    if records and codec.sealed:
        records, items = codec.seal_writes(
            configurable["thread_id"], configurable["checkpoint_ns"], checkpoint_id,
            records, items,
        )
    return records, items


EXACT_NUMBER_LIMIT: Final = 2**53
"""Past it, a backend's number equality (PostgreSQL compares decimals, SQLite floats)
and the rule's (Python compares an int and a float exactly) can differ; the saver checks
such numbers itself."""


def _pushable(value: Any) -> bool:
    if isinstance(value, float) and value != value:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return abs(value) < EXACT_NUMBER_LIMIT
    return isinstance(value, (str, bool))


def list_query(
    config: RunnableConfig | None,
    filter: dict[str, Any] | None,
    before: RunnableConfig | None,
    limit: int | None,
) -> tuple[ListQuery, dict[str, Any]]:
    """``list``'s arguments as the backend's query, checked (InvalidConfigError naming
    what is wrong), and the filter entries no backend compares exactly (None, lists,
    dicts, numbers past 2**53), which the saver checks itself: with any of those the
    query has no limit."""
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
    ):
        raise InvalidConfigError(f"list: limit must be a non-negative integer, not {show(limit)}")
    # The core counts what it yields; a limit no backend's integer holds is no limit.
    query = ListQuery(limit=limit if limit is None or limit <= INT64_MAX else None)
    if config is not None:
        if not isinstance(config, Mapping):
            raise InvalidConfigError(f"list: config must be a mapping, not {type(config).__name__}")
        configurable = config.get("configurable") or {}
        if configurable.get("thread_id") not in (None, ""):
            query.thread_id = check_thread_id(configurable["thread_id"], "list")
        ns = configurable.get("checkpoint_ns")
        query.checkpoint_ns = None if ns is None else check_text(ns, "checkpoint_ns", "list")
        checkpoint_id = configurable.get("checkpoint_id")
        if checkpoint_id is not None:
            query.checkpoint_id = check_text(checkpoint_id, "checkpoint_id", "list")
    if before is not None:
        if not isinstance(before, Mapping):
            raise InvalidConfigError(f"list: before must be a config, not {type(before).__name__}")
        before_id = get_checkpoint_id(before)
        if before_id is not None:
            query.before = check_text(before_id, "before's checkpoint_id", "list")
    if filter is not None and not isinstance(filter, Mapping):
        raise InvalidConfigError(f"list: filter must be a mapping, not {type(filter).__name__}")
    leftover: dict[str, Any] = {}
    for key, value in (filter or {}).items():
        if not isinstance(key, str):
            raise InvalidConfigError(f"list: filter keys must be strings, not {show(key)}")
        check_text(key, "filter key", "list")
        check_filter_value(key, value)
        if _pushable(value):
            query.filter[key] = value
        else:
            leftover[key] = value
    if leftover:
        # Values a backend cannot compare exactly (None, lists, dicts, numbers past
        # 2**53) are checked here.
        query.limit = None
    return query, leftover
