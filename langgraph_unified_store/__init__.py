"""langgraph-unified-store: LangGraph checkpoint savers with a framework-neutral state.

Memory, SQLite, PostgreSQL and plain Redis savers share one core, so every feature
(unified state, dedup of message lists, safe deserialization, encryption) works the
same on each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.health import HealthReport
from .core.lifecycle import ErasureReceipt, Removed, ThreadInfo, ThreadPage
from .core.limits import ReadLimits
from .core.saver import UnifiedCheckpointSaver
from .errors import (
    BackendUnavailableError,
    CheckpointNotFoundError,
    CorruptDataError,
    InvalidConfigError,
    MissingExtraError,
    SaverClosedError,
    SerializationError,
    SyncCallInEventLoopError,
    UnifiedStoreError,
    UnsafeDeserializationError,
    UnsafeSerializerWarning,
)
from .factory import create_cache, create_saver, create_store
from .registry import SAVER_MODULES
from .state import ToolCall, UnifiedMessage, UnifiedWorkflowState, WorkflowMetadata

if TYPE_CHECKING:
    from .backends.memory import MemorySaver
    from .backends.postgres import PostgresSaver
    from .backends.redis import RedisSaver
    from .backends.sqlite import SQLiteSaver


__all__ = [
    "BackendUnavailableError",
    "CheckpointNotFoundError",
    "CorruptDataError",
    "ErasureReceipt",
    "HealthReport",
    "InvalidConfigError",
    "MemoryCache",
    "MemorySaver",
    "MemoryStore",
    "MissingExtraError",
    "PostgresCache",
    "PostgresSaver",
    "PostgresStore",
    "ReadLimits",
    "RedisCache",
    "RedisSaver",
    "RedisStore",
    "Removed",
    "SQLiteCache",
    "SQLiteSaver",
    "SQLiteStore",
    "SaverClosedError",
    "SerializationError",
    "SyncCallInEventLoopError",
    "ThreadInfo",
    "ThreadPage",
    "ToolCall",
    "UnifiedCheckpointSaver",
    "UnifiedMessage",
    "UnifiedStoreError",
    "UnifiedWorkflowState",
    "UnsafeDeserializationError",
    "UnsafeSerializerWarning",
    "WorkflowMetadata",
    "create_cache",
    "create_saver",
    "create_store",
]


def __getattr__(name: str) -> Any:
    # Savers load lazily (registry.SAVER_MODULES), so that `import langgraph_unified_store`
    # never needs a driver.
    module = SAVER_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
