"""Generated from eventstore/_store.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``eventstore._store``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import abc
import functools
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventstore._correlation import CORRELATION_ID
from eventstore._errors import InvalidInputError
from eventstore._events import Event
from eventstore._history import DEFAULT_MAX_SHAPES, pick_sample
from eventstore._model import (
    ANY,
    START,
    AppendResult,
    ExpectedVersion,
    NewEvent,
    Position,
    RecordedEvent,
    StreamInfo,
)
from eventstore._store import DEFAULT_CORRELATED_LIMIT, _is_version, _provenance
from eventstore._tracing import instrumented, span
from eventstore._validation import (
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_EVENT_BYTES,
    FEED,
    PreparedEvent,
    SupportsNewEvent,
    check_after,
    check_expected_version,
    check_limit,
    check_prefix,
    check_stream_cut,
    check_stream_id,
    check_version_range,
    prepare_batch,
)
from eventstore.sync._lifecycle import Closing
from eventstore.sync._schemas import InMemorySchemaRegistry, SchemaRegistry


class EventStore(Closing):
    """An append-only store of event streams with a gap-safe global feed."""

    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES

    def append(
        self,
        stream_id: str,
        events: Iterable[NewEvent | SupportsNewEvent],
        expected_version: ExpectedVersion | int = ANY,
        *,
        connection: Any = None,
    ) -> AppendResult:
        """Append ``events`` to a stream atomically.

        ``expected_version``: ``ANY``, ``NO_STREAM``, ``STREAM_EXISTS`` or the exact
        current version (0 means the stream must not exist yet).  A mismatch raises
        ``ConcurrencyError``; bad input raises ``InvalidAppendError``; in both cases
        nothing is written.  Re-appending the same event ids as the same batch returns
        the original result.  ``connection`` joins a caller's open transaction (stores
        that support it).

        Several streams in one transaction: append to them in one fixed order (sorted
        by stream id, say) in every transaction.  An append holds its stream until the
        transaction ends, so two transactions taking two streams in opposite order
        wait on each other; PostgreSQL fails one of them, raised as the retryable
        ``DeadlockError`` (roll the whole transaction back and run it again).

        Limits (all refused with ``InvalidAppendError``): ``max_event_bytes`` of JSON
        per event, ``max_batch_bytes`` per append, ``MAX_NESTING_DEPTH`` levels of
        nesting, string keys only.
        """
        stream_id = check_stream_id(stream_id)
        expected = check_expected_version(stream_id, expected_version)
        if not instrumented():
            return self._prepare_and_append(stream_id, events, expected, connection, None)
        attributes: dict[str, Any] = {"chronik.stream_id": stream_id}
        with span("chronik.append", attributes) as current:
            return self._prepare_and_append(
                stream_id, events, expected, connection, (attributes, current)
            )

    def _prepare_and_append(
        self,
        stream_id: str,
        events: Iterable[NewEvent | SupportsNewEvent],
        expected: ExpectedVersion | int,
        connection: Any,
        traced: tuple[dict[str, Any], Any] | None,
    ) -> AppendResult:
        """Validate, register typed events' schemas, append; ``traced``: the span's
        attributes and the span (or None) to record the event count on."""
        models: set[type[Any]] = set()
        batch = prepare_batch(
            stream_id,
            events,
            self.max_event_bytes,
            models,
            max_batch_bytes=self.max_batch_bytes,
            stamp=_provenance(None if traced is None else traced[1]),
        )
        if traced is not None:
            attributes, current = traced
            attributes["chronik.events"] = len(batch)
            if current is not None and current.is_recording():
                current.set_attribute("chronik.events", len(batch))
        if models:
            self.schemas.ensure(m for m in models if issubclass(m, Event))
        return self._append(stream_id, batch, expected, connection)

    @abc.abstractmethod
    def _append(
        self,
        stream_id: str,
        batch: Sequence[PreparedEvent],
        expected: ExpectedVersion | int,
        connection: Any,
    ) -> AppendResult: ...

    def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> Iterator[RecordedEvent]:
        """The stream's events with ``from_version <= version <= to_version``, oldest first."""
        low, high = self._check_range(stream_id, from_version, to_version)
        return self._read_stream(stream_id, low, high, backwards=False)

    def read_stream_backwards(
        self, stream_id: str, from_version: int | None = None, to_version: int = 1
    ) -> Iterator[RecordedEvent]:
        """Newest first: from ``from_version`` (default: the last) down to ``to_version``."""
        low, high = self._check_range(stream_id, to_version, from_version)
        return self._read_stream(stream_id, low, high, backwards=True)

    @abc.abstractmethod
    def _read_stream(
        self, stream_id: str, low: int, high: int | None, *, backwards: bool
    ) -> Iterator[RecordedEvent]: ...

    def stream_version(
        self, stream_id: str, *, as_of: datetime | None = None, at_position: Position | None = None
    ) -> int:
        """The stream's version (0 when it does not exist).

        With ``as_of``: the version of the last event recorded at or before that time.
        With ``at_position``: the version of the last event at or before that feed
        position (a consistent cut across streams).
        """
        checked = check_stream_cut(stream_id, as_of, at_position)
        return self._stream_version(checked, as_of, at_position)

    @abc.abstractmethod
    def _stream_version(
        self, stream_id: str, as_of: datetime | None, at_position: Position | None
    ) -> int: ...

    def list_streams(
        self, prefix: str | None = None, *, limit: int | None = None
    ) -> Iterator[StreamInfo]:
        """Streams in code-point order of their ids, optionally only those starting with
        ``prefix``."""
        checked_limit = check_limit(limit, prefix if isinstance(prefix, str) else FEED)
        return self._list_streams(check_prefix(prefix) or "", checked_limit)

    @abc.abstractmethod
    def _list_streams(self, prefix: str, limit: int | None) -> Iterator[StreamInfo]: ...

    def read_all(
        self, after: Position | None = None, limit: int | None = None
    ) -> Iterator[RecordedEvent]:
        """Every committed event after ``after``, in feed order, up to the current end.

        Never skips an event: an event that becomes visible later always has a
        position greater than every position already returned.
        """
        return self._read_all(check_after(after) or START, check_limit(limit, FEED))

    @abc.abstractmethod
    def _read_all(self, after: Position, limit: int | None) -> Iterator[RecordedEvent]: ...

    def count_after(self, after: Position | None = None) -> int:
        """How many feed events a reader could read after ``after`` now (lag, progress)."""
        return self._count_after(check_after(after) or START)

    def _count_after(self, after: Position) -> int:
        return sum([1 for _ in self._read_all(after, None)])

    def find_event(self, event_id: UUID) -> RecordedEvent | None:
        """The event with this id, as stored; ``None`` when there is none."""
        for event in self._read_all(START, None):
            if event.event_id == event_id:
                return event
        return None

    def correlated_events(
        self, correlation_id: str, *, limit: int = DEFAULT_CORRELATED_LIMIT
    ) -> list[RecordedEvent]:
        """Events whose metadata ``correlation_id`` is this one, in feed order
        (at most ``limit``): what one command, request or message led to."""
        if not isinstance(correlation_id, str) or not correlation_id:
            raise InvalidInputError(FEED, f"invalid correlation id {correlation_id!r}")
        checked = check_limit(limit, correlation_id)
        if checked is None or checked < 1:
            raise InvalidInputError(correlation_id, f"invalid limit {limit!r}: use an int >= 1")
        return self._correlated_events(correlation_id, checked)

    def _correlated_events(self, correlation_id: str, limit: int) -> list[RecordedEvent]:
        found = []
        for event in self._read_all(START, None):
            if event.metadata and event.metadata.get(CORRELATION_ID) == correlation_id:
                found.append(event)
                if len(found) >= limit:
                    break
        return found

    def held_back_count(self) -> int:
        """Committed events the feed does not show yet because an older transaction is open."""
        return 0

    @abc.abstractmethod
    def head(self) -> Position | None:
        """The position of the last event a reader can see now (``None``: empty feed)."""

    @functools.cached_property
    def schemas(self) -> SchemaRegistry:
        """The registry of the event schemas written to this store (see ``_schemas``)."""
        return InMemorySchemaRegistry()

    def stored_schema_versions(self) -> dict[tuple[str, int], int]:
        """How many events are stored per ``(type, schema_version)``."""
        counts: Counter[tuple[str, int]] = Counter()
        for event in self._read_all(START, None):
            counts[event.type, event.schema_version] += 1
        return dict(sorted(counts.items()))

    def sample_events(
        self, per_version: int, *, max_shapes: int = DEFAULT_MAX_SHAPES
    ) -> list[RecordedEvent]:
        """Stored events (as written) for the pre-deploy history check.

        Per ``(type, schema_version)``: the first event of every distinct top-level
        shape of its data (keys and JSON kinds, up to ``max_shapes``), so a rare
        old shape is never left out, plus ``per_version`` events spread over the
        history (lowest hash of the event id: the same sample on every run).
        """
        for name, value in (("per_version", per_version), ("max_shapes", max_shapes)):
            if not _is_version(value) or value < 0:
                raise InvalidInputError(FEED, f"{name} must be an int >= 0, got {value!r}")
        return self._sample_events(per_version, max_shapes)

    def _sample_events(self, per_version: int, max_shapes: int) -> list[RecordedEvent]:
        return pick_sample([e for e in self._read_all(START, None)], per_version, max_shapes)

    @abc.abstractmethod
    def close(self) -> None: ...

    @staticmethod
    def _check_range(stream_id: str, low: int, high: int | None) -> tuple[int, int | None]:
        check_stream_id(stream_id, InvalidInputError)
        return check_version_range(stream_id, low, high)
