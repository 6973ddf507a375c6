"""Channel values and writes into the export's typed values and back.

The exporter serializes each value with the source saver's plain serde (the safe one
``core.serde.resolve_serde`` finds under any configured serde) and, when the saver
encrypts and the export is not asked to decrypt, seals it with the saver's ``Sealer``
bound to its place *in the export* (thread, namespace, channel and version, or
checkpoint, or write): ciphertext that only the same key opens, and only there. The
importer opens and deserializes with the target saver's serde, by the same rules a
read of stored data follows.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from ..core.encryption import SEALED_PREFIX, Sealer, SealError
from ..core.msgpack_split import array_header_size, split_concatenated
from ..core.saver import UnifiedCheckpointSaver
from ..core.serde import resolve_serde
from ..errors import (
    CorruptDataError,
    SerializationError,
    UnsafeDeserializationError,
)
from .format import ExportDecryptError, ExportFormatError, ExportKeyError, TypedValue

Place = tuple[Any, ...]
MSGPACK = "msgpack"


def blob_place(thread_id: str, ns: str, channel: str, version: str) -> Place:
    return ("export-blob", thread_id, ns, channel, version)


def skeleton_place(thread_id: str, ns: str, checkpoint_id: str) -> Place:
    return ("export-checkpoint", thread_id, ns, checkpoint_id)


def write_place(thread_id: str, ns: str, checkpoint_id: str, position: int) -> Place:
    return ("export-write", thread_id, ns, checkpoint_id, position)


class ValueWriter:
    """Serializes (and seals) values for an export from ``saver``."""

    def __init__(self, saver: UnifiedCheckpointSaver, *, decrypt: bool) -> None:
        resolved = resolve_serde(saver.serde)
        self.plain = resolved.plain
        self.sealer: Sealer | None = None if decrypt else resolved.sealer
        self.splits_lists = isinstance(self.plain, JsonPlusSerializer)

    @property
    def encrypted(self) -> bool:
        return self.sealer is not None

    def plain_dumps(self, value: Any, where: str) -> tuple[str, bytes]:
        try:
            return self.plain.dumps_typed(value)
        except Exception as exc:
            raise SerializationError(f"{where}: cannot serialize the value ({exc})") from exc

    def seal(self, type_: str, data: bytes, place: Place) -> TypedValue:
        if self.sealer is None:
            return TypedValue(type_, data)
        sealed_type, sealed = self.sealer.seal(type_, data, place)
        return TypedValue(sealed_type, sealed)

    def value(self, value: Any, place: Place, where: str) -> TypedValue:
        return self.seal(*self.plain_dumps(value, where), place)

    def list_body(self, value: Any, where: str) -> tuple[TypedValue | None, bytes | None]:
        """A channel value's plain form and, for a list packed as msgpack, its packed
        elements laid end to end (so the next version can be sent as what it appends)."""
        type_, data = self.plain_dumps(value, where)
        if self.splits_lists and type(value) is list and type_ == MSGPACK and data:
            return TypedValue(type_, data), data[array_header_size(data) :]
        return TypedValue(type_, data), None

    @staticmethod
    def appended(body: bytes, previous: bytes | None) -> list[bytes] | None:
        """The packed elements ``body`` adds after ``previous``, when it starts with it."""
        if previous is None or not previous or not body.startswith(previous):
            return None
        return split_concatenated(body, len(previous))


class ValueReader:
    """Opens and deserializes an export's values for ``saver`` (the target)."""

    def __init__(self, saver: UnifiedCheckpointSaver) -> None:
        resolved = resolve_serde(saver.serde)
        self.plain = resolved.plain
        self.sealer = resolved.sealer

    def load(self, value: TypedValue, place: Place, line: int, where: str) -> Any:
        type_, data = value.type, value.data
        if type_.startswith(SEALED_PREFIX):
            if self.sealer is None:
                raise ExportKeyError(f"line {line}: {where} is encrypted", line)
            try:
                type_, data = self.sealer.open(type_, data, place)
            except SealError as exc:
                raise ExportDecryptError(line, f"{where} cannot be decrypted: {exc}") from None
        try:
            return self.plain.loads_typed((type_, data))
        except UnsafeDeserializationError as exc:
            raise UnsafeDeserializationError(f"line {line}: {where}: {exc}") from None
        except CorruptDataError as exc:
            raise ExportFormatError(line, f"{where} cannot be read: {exc}") from None
        except Exception as exc:
            if type(exc).__module__.startswith("langgraph_unified_store"):
                raise
            raise ExportFormatError(line, f"{where} cannot be read ({type(exc).__name__}: {exc})") from None
