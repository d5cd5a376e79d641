"""The chronik error tree.

Every error chronik raises derives from :class:`ChronikError` and names what it is
about (stream, version, event type, position, projection).  Driver errors are
translated at the boundary and kept as ``__cause__``.

::

    ChronikError
     ├── EventStoreError
     │    ├── StoreUnavailableError      the database cannot be reached (DSN masked)
     │    ├── InvalidConfigurationError  a setting the store cannot work with
     │    ├── InvalidInputError          a bad argument (a ValueError); nothing written
     │    │    └── InvalidAppendError    bad input to append
     │    ├── ConcurrencyError           expected version did not match (retryable)
     │    │    └── StreamOrderConflict   an older transaction appended after a newer one (retryable)
     │    ├── DeadlockError              two transactions' appends waited on each other (retryable)
     │    ├── DuplicateEventError        some, not all, event ids of a batch already exist
     │    └── StreamNotFoundError        the stream has no events
     ├── EventCodecError
     │    ├── UnreadableEventError       a stored row cannot be decoded (nested too deep)
     │    ├── UnknownEventTypeError      no event class registered for a stored type
     │    ├── UpcastError                an upcaster step raised or returned bad data
     │    ├── EventValidationError       stored (upcast) data does not validate into its class
     │    └── UpcasterChainError         the registered upcasters leave a gap (raised at start-up)
     └── (aggregates, snapshots and projections add their own branches)

Errors are picklable: each keeps its constructor arguments in ``args``.
"""

from __future__ import annotations

from typing import Any


class ChronikError(Exception):
    """Root of every error chronik raises."""


class EventStoreError(ChronikError):
    """A failure reading from or writing to an event store."""


class StoreUnavailableError(EventStoreError):
    """The event store's database could not be reached.

    ``target`` is the DSN with any password masked.
    """

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(target, reason)
        self.target = target
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot reach the event store at {self.target}: {self.reason}"


class InvalidConfigurationError(EventStoreError, ValueError):
    """A store setting (schema name, pool size, ...) that cannot work."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(setting, reason)
        self.setting = setting
        self.reason = reason

    def __str__(self) -> str:
        return f"invalid {self.setting}: {self.reason}"


class InvalidInputError(EventStoreError, ValueError):
    """A call was rejected for a bad argument before anything was read or written."""

    def __init__(self, stream_id: str, reason: str) -> None:
        super().__init__(stream_id, reason)
        self.stream_id = stream_id
        self.reason = reason

    def __str__(self) -> str:
        return f"stream {self.stream_id!r}: {self.reason}"


class InvalidAppendError(InvalidInputError):
    """An append was rejected before anything was written."""

    def __str__(self) -> str:
        return f"cannot append to stream {self.stream_id!r}: {self.reason}"


class ConcurrencyError(EventStoreError):
    """The stream was not at the version the writer expected.

    Retryable: reload the stream, decide again, append again.
    ``expected`` is an int or one of ``ANY``/``NO_STREAM``/``STREAM_EXISTS``;
    ``actual`` is the stream's version when the append was rejected (0: no stream).
    """

    def __init__(self, stream_id: str, expected: Any, actual: int) -> None:
        super().__init__(stream_id, expected, actual)
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual

    def __str__(self) -> str:
        return (
            f"stream {self.stream_id!r} is at version {self.actual}, "
            f"the append expected {self.expected}"
        )


class StreamOrderConflict(ConcurrencyError):
    """The stream's last append came from a newer transaction than this one.

    The global feed orders events by transaction id; letting this append through
    would deliver it ahead of the stream's earlier events.  Retry in a new
    transaction.
    """

    def __str__(self) -> str:
        return (
            f"stream {self.stream_id!r} (version {self.actual}) was last written by a newer "
            "transaction than this one; retry the append in a new transaction"
        )


class DeadlockError(EventStoreError):
    """Two transactions appending to the same streams in opposite order deadlocked.

    PostgreSQL broke the deadlock by failing this append.  Retryable: roll the
    whole transaction back and run it again.  Avoid it by appending to several
    streams in one transaction in a fixed order (sorted by stream id, say).
    ``held_streams``: the streams this transaction had appended to before.
    """

    def __init__(self, stream_id: str, held_streams: tuple[str, ...] = ()) -> None:
        super().__init__(stream_id, held_streams)
        self.stream_id = stream_id
        self.held_streams = held_streams

    def __str__(self) -> str:
        held = (
            f" (it had appended to {', '.join(repr(s) for s in self.held_streams)})"
            if self.held_streams
            else ""
        )
        return (
            f"appending to stream {self.stream_id!r} deadlocked with another transaction"
            f"{held}: roll back and retry the whole transaction; append to several streams "
            "in one fixed order (e.g. sorted by stream id) to avoid this"
        )


class DuplicateEventError(EventStoreError):
    """Some event ids of a batch already exist, but not as this exact batch."""

    def __init__(self, stream_id: str, event_ids: tuple[str, ...], reason: str) -> None:
        super().__init__(stream_id, event_ids, reason)
        self.stream_id = stream_id
        self.event_ids = event_ids
        self.reason = reason

    def __str__(self) -> str:
        ids = ", ".join(self.event_ids[:5]) + (" ..." if len(self.event_ids) > 5 else "")
        return f"cannot append to stream {self.stream_id!r}: {self.reason} (event ids: {ids})"


class StreamNotFoundError(EventStoreError, LookupError):
    """The stream holds no events."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.stream_id = stream_id

    def __str__(self) -> str:
        return f"stream {self.stream_id!r} does not exist"


class EventCodecError(ChronikError):
    """A stored event could not be turned into a typed event (or back)."""


class UnreadableEventError(EventCodecError):
    """A stored event whose data or metadata cannot be decoded at all.

    Rows written before ``MAX_NESTING_DEPTH`` was enforced can nest too deeply
    for the JSON decoder.  Readers raise this after every event before it, so a
    caller (a projection runner) can park it and go on after ``position``.
    """

    def __init__(
        self,
        stream_id: str,
        version: int,
        position: Any,
        event_id: Any,
        event_type: str,
        schema_version: int,
        recorded_at: Any,
        reason: str,
    ) -> None:
        super().__init__(
            stream_id, version, position, event_id, event_type, schema_version, recorded_at, reason
        )
        self.stream_id = stream_id
        self.version = version
        self.position = position
        self.event_id = event_id
        self.event_type = event_type
        self.schema_version = schema_version
        self.recorded_at = recorded_at
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"stored event {self.event_type!r} at {self.stream_id!r} version {self.version} "
            f"(feed position {self.position}) cannot be decoded: {self.reason}"
        )


class _StoredEventError(EventCodecError):
    """Base for errors about one stored event: names stream, version, type, schema."""

    def __init__(
        self, stream_id: str, version: int, event_type: str, schema_version: int, reason: str
    ) -> None:
        super().__init__(stream_id, version, event_type, schema_version, reason)
        self.stream_id = stream_id
        self.version = version
        self.event_type = event_type
        self.schema_version = schema_version
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"event {self.event_type!r} (stored schema v{self.schema_version}) at "
            f"{self.stream_id!r} version {self.version}: {self.reason}"
        )


class UnknownEventTypeError(_StoredEventError):
    """No event class is registered for the stored (upcast) type."""


class EventValidationError(_StoredEventError):
    """The stored data, after upcasting, does not validate into its event class."""


class UpcastError(_StoredEventError):
    """An upcaster step failed on a stored event; ``step`` names it."""

    def __init__(
        self,
        stream_id: str,
        version: int,
        event_type: str,
        schema_version: int,
        reason: str,
        step: str = "",
    ) -> None:
        super().__init__(stream_id, version, event_type, schema_version, reason)
        self.args = (stream_id, version, event_type, schema_version, reason, step)
        self.step = step

    def __str__(self) -> str:
        return f"{super().__str__()} (upcaster step {self.step})"


class UpcasterChainError(EventCodecError):
    """The registered upcasters cannot bring every stored version to the current one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)
        self.problems = problems

    def __str__(self) -> str:
        return "upcaster chain has gaps:\n  " + "\n  ".join(self.problems)
