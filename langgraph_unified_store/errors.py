"""Exceptions raised by langgraph-unified-store.

Every error names what was wrong (thread, checkpoint, channel, key) and never a
password or connection string.
"""

from __future__ import annotations


class UnifiedStoreError(Exception):
    """Base class of every error this library raises on purpose."""


class InvalidConfigError(UnifiedStoreError, ValueError):
    """A RunnableConfig or argument is missing something the saver needs."""


class CheckpointNotFoundError(UnifiedStoreError, LookupError):
    """A checkpoint named explicitly by the caller does not exist."""


class SerializationError(UnifiedStoreError, TypeError):
    """A value could not be serialized; the message names where it sits in the state."""


class UnsafeDeserializationError(UnifiedStoreError):
    """Stored data asked to build a type that is not a plain data type."""


class UnsafeSerializerWarning(UserWarning):
    """A ``serde`` was configured that reads stored data by its own rules, which this
    library cannot make safe: whoever can write to the storage may run code through it."""


class CorruptDataError(UnifiedStoreError):
    """Stored data is missing or unreadable; the message names thread and checkpoint."""


class ItemsMissingError(CorruptDataError):
    """A put extends a stored list whose blob is gone (expired, restarted, deleted by
    another process). Nothing was written; the saver retries with every item."""

    def __init__(self, thread_id: str, detail: str) -> None:
        super().__init__(f"thread {thread_id!r}: {detail}")
        self.thread_id = thread_id

    @classmethod
    def base_gone(cls, thread_id: str, channel: str, base_version: str) -> ItemsMissingError:
        """The blob a list was encoded against (``BlobRecord.base_version``) is gone."""
        return cls(
            thread_id,
            f"channel {channel!r} extends version {base_version!r}, which is no longer stored",
        )


class BlobsMissingError(ItemsMissingError):
    """A put names, without sending them, channel values stored by an earlier checkpoint
    that are gone (pruned, deleted or expired meanwhile, by this or another process).
    Nothing was written; the saver retries once, sending every channel's value."""

    def __init__(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, channels: list[str]
    ) -> None:
        self.checkpoint_ns = checkpoint_ns
        self.checkpoint_id = checkpoint_id
        self.channels = channels
        super().__init__(
            thread_id,
            f"namespace {checkpoint_ns!r}, checkpoint {checkpoint_id!r} inherits the stored "
            f"value of channel(s) {', '.join(repr(c) for c in channels)}, which is no longer "
            "stored",
        )


class SyncCallInEventLoopError(UnifiedStoreError, RuntimeError):
    """A blocking method was called from a thread that is running an event loop."""


class SaverClosedError(UnifiedStoreError, RuntimeError):
    """The saver was closed: every call after ``close()``/``aclose()`` raises this, and so
    does a call that close cut short. A closed saver stays closed; make a new one."""

    def __init__(self, saver: str, method: str | None = None, *, in_flight: bool = False) -> None:
        if method is None:
            message = f"{saver} is closed"
        elif in_flight:
            message = (
                f"{saver}.{method}(): the saver was closed during this call, which was cut "
                "short; anything it wrote is stored whole or not at all"
            )
        else:
            message = f"{saver}.{method}(): the saver is closed; make a new saver to go on"
        super().__init__(message)
        self.saver = saver
        self.method = method
        self.in_flight = in_flight

    def for_method(self, method: str) -> SaverClosedError:
        """The same error, naming the saver method it interrupted."""
        if self.method is not None:
            return self
        return SaverClosedError(self.saver, method, in_flight=True)


class BackendUnavailableError(UnifiedStoreError, ConnectionError):
    """The storage server could not be reached within the configured time."""


class MissingExtraError(UnifiedStoreError, ImportError):
    """An optional dependency is not installed; the message names the extra."""


def missing_extra(extra: str, module: str) -> MissingExtraError:
    """Build the error for an optional dependency that is not installed."""
    return MissingExtraError(
        f"{module!r} is not installed: install it with "
        f"`pip install 'langgraph-unified-store[{extra}]'`"
    )
