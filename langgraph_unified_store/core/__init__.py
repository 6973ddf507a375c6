"""The shared saver core: everything LangGraph-specific, written once above the backends."""

from .backend import Backend, LoopLocal
from .records import (
    BlobRecord,
    CheckpointRecord,
    ItemRecord,
    ListQuery,
    StoredCheckpoint,
    WriteRecord,
)
from .saver import UnifiedCheckpointSaver
from .serde import AesGcmCipher, SafeSerializer

__all__ = [
    "AesGcmCipher",
    "Backend",
    "BlobRecord",
    "CheckpointRecord",
    "ItemRecord",
    "ListQuery",
    "LoopLocal",
    "SafeSerializer",
    "StoredCheckpoint",
    "UnifiedCheckpointSaver",
    "WriteRecord",
]
