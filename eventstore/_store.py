"""The EventStore contract every backend fulfils.

The behaviour is pinned by ``tests/contracts/event_store.py``, which runs
against every backend; this module holds the signatures and the pieces of logic
that are the same for all of them (input checks, the live subscription loop).
"""

from __future__ import annotations

import abc
import functools
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from ._correlation import CORRELATION_ID, current_correlation, stamped
from ._errors import InvalidInputError
from ._events import Event
from ._history import DEFAULT_MAX_SHAPES, pick_sample
from ._lifecycle import AsyncClosing
from ._model import (
    ANY,
    START,
    AppendResult,
    ExpectedVersion,
    NewEvent,
    Position,
    RecordedEvent,
    StreamInfo,
)
from ._schemas import InMemorySchemaRegistry, SchemaRegistry
from ._tracing import TRACEPARENT, current_trace_context, instrumented, span, trace_context_of
from ._validation import (
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_EVENT_BYTES,
    FEED,
    PreparedEvent,
    Stamp,
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

DEFAULT_PAGE_SIZE = 1000
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_CORRELATED_LIMIT = 10_000


class EventStore(AsyncClosing):
    """An append-only store of event streams with a gap-safe global feed."""

    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES

    # -- writing -------------------------------------------------------------

    async def append(
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
            # No tracer and no observer: skip span() (a shared no-op then) and the
            # attributes dict built for it.  Small in a loop, but an append runs
            # between two round trips, with caches cold from the server's turn on
            # the CPU, so every layer costs several times its microbenchmark (with
            # the raw cursor of _pg_append and validation's fast paths: a sync
            # append's client CPU fell from ~108 to ~84 µs; raw psycopg: ~60).
            return await self._prepare_and_append(stream_id, events, expected, connection, None)
        # Mutable: the event count is known after preparing, and observers read it.
        attributes: dict[str, Any] = {"chronik.stream_id": stream_id}
        with span("chronik.append", attributes) as current:
            return await self._prepare_and_append(
                stream_id, events, expected, connection, (attributes, current)
            )

    async def _prepare_and_append(
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
            # Before the append, so a schema is on record before any event of it.
            # Registration takes its own pooled connection even when the append
            # joins a caller's transaction: a rollback there must not undo a
            # registration this process has already cached as done.
            await self.schemas.ensure(m for m in models if issubclass(m, Event))
        return await self._append(stream_id, batch, expected, connection)

    @abc.abstractmethod
    async def _append(
        self,
        stream_id: str,
        batch: Sequence[PreparedEvent],
        expected: ExpectedVersion | int,
        connection: Any,
    ) -> AppendResult: ...

    # -- reading one stream --------------------------------------------------

    def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """The stream's events with ``from_version <= version <= to_version``, oldest first."""
        low, high = self._check_range(stream_id, from_version, to_version)
        return self._read_stream(stream_id, low, high, backwards=False)

    def read_stream_backwards(
        self, stream_id: str, from_version: int | None = None, to_version: int = 1
    ) -> AsyncIterator[RecordedEvent]:
        """Newest first: from ``from_version`` (default: the last) down to ``to_version``."""
        low, high = self._check_range(stream_id, to_version, from_version)
        return self._read_stream(stream_id, low, high, backwards=True)

    @abc.abstractmethod
    def _read_stream(
        self, stream_id: str, low: int, high: int | None, *, backwards: bool
    ) -> AsyncIterator[RecordedEvent]: ...

    async def stream_version(
        self,
        stream_id: str,
        *,
        as_of: datetime | None = None,
        at_position: Position | None = None,
    ) -> int:
        """The stream's version (0 when it does not exist).

        With ``as_of``: the version of the last event recorded at or before that time.
        With ``at_position``: the version of the last event at or before that feed
        position (a consistent cut across streams).
        """
        checked = check_stream_cut(stream_id, as_of, at_position)
        return await self._stream_version(checked, as_of, at_position)

    @abc.abstractmethod
    async def _stream_version(
        self, stream_id: str, as_of: datetime | None, at_position: Position | None
    ) -> int: ...

    def list_streams(
        self, prefix: str | None = None, *, limit: int | None = None
    ) -> AsyncIterator[StreamInfo]:
        """Streams in code-point order of their ids, optionally only those starting with
        ``prefix``."""
        checked_limit = check_limit(limit, prefix if isinstance(prefix, str) else FEED)
        return self._list_streams(check_prefix(prefix) or "", checked_limit)

    @abc.abstractmethod
    def _list_streams(self, prefix: str, limit: int | None) -> AsyncIterator[StreamInfo]: ...

    # -- the global feed -----------------------------------------------------

    def read_all(
        self, after: Position | None = None, limit: int | None = None
    ) -> AsyncIterator[RecordedEvent]:
        """Every committed event after ``after``, in feed order, up to the current end.

        Never skips an event: an event that becomes visible later always has a
        position greater than every position already returned.
        """
        return self._read_all(check_after(after) or START, check_limit(limit, FEED))

    @abc.abstractmethod
    def _read_all(self, after: Position, limit: int | None) -> AsyncIterator[RecordedEvent]: ...

    async def count_after(self, after: Position | None = None) -> int:
        """How many feed events a reader could read after ``after`` now (lag, progress)."""
        return await self._count_after(check_after(after) or START)

    async def _count_after(self, after: Position) -> int:
        return sum([1 async for _ in self._read_all(after, None)])

    async def find_event(self, event_id: UUID) -> RecordedEvent | None:
        """The event with this id, as stored; ``None`` when there is none."""
        async for event in self._read_all(START, None):
            if event.event_id == event_id:
                return event
        return None

    async def correlated_events(
        self, correlation_id: str, *, limit: int = DEFAULT_CORRELATED_LIMIT
    ) -> list[RecordedEvent]:
        """Events whose metadata ``correlation_id`` is this one, in feed order
        (at most ``limit``): what one command, request or message led to."""
        if not isinstance(correlation_id, str) or not correlation_id:
            raise InvalidInputError(FEED, f"invalid correlation id {correlation_id!r}")
        checked = check_limit(limit, correlation_id)
        if checked is None or checked < 1:
            raise InvalidInputError(correlation_id, f"invalid limit {limit!r}: use an int >= 1")
        return await self._correlated_events(correlation_id, checked)

    async def _correlated_events(self, correlation_id: str, limit: int) -> list[RecordedEvent]:
        found = []
        async for event in self._read_all(START, None):
            if event.metadata and event.metadata.get(CORRELATION_ID) == correlation_id:
                found.append(event)
                if len(found) >= limit:
                    break
        return found

    async def held_back_count(self) -> int:
        """Committed events the feed does not show yet because an older transaction is open."""
        return 0

    @abc.abstractmethod
    async def head(self) -> Position | None:
        """The position of the last event a reader can see now (``None``: empty feed)."""

    async def subscribe(
        self,
        after: Position | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> AsyncIterator[RecordedEvent]:
        """Follow the feed live: catch up from ``after``, then wait for new events.

        A wake-up signal (NOTIFY, an in-process event) is only a hint; the loop
        also polls every ``poll_interval`` seconds, so a lost signal costs latency,
        never an event.
        """
        # page_size 0 read nothing and never waited: a silent busy loop.  A bad
        # poll_interval failed only at the first wait, after the catch-up.
        if not _is_version(page_size) or page_size < 1:
            raise InvalidInputError(FEED, f"invalid page_size {page_size!r}: use an int >= 1")
        if (
            not isinstance(poll_interval, (int, float))
            or isinstance(poll_interval, bool)
            or not poll_interval > 0
        ):
            raise InvalidInputError(
                FEED, f"invalid poll_interval {poll_interval!r}: use a number of seconds > 0"
            )
        after = check_after(after)
        async with self._wake_up_listener() as wait_for_append:
            while True:
                got = 0
                async for event in self.read_all(after, limit=page_size):
                    got += 1
                    after = event.position
                    yield event
                if got < page_size:
                    await wait_for_append(poll_interval)

    def listen_for_appends(self) -> Any:
        """``async with store.listen_for_appends() as wait:``; ``await wait(seconds)``
        returns when an append may have happened, or after ``seconds``.

        Only a hint, as in ``subscribe``: a wake-up can find nothing new (an older
        transaction still holds the feed back) and a hint can be missed, so a
        reader re-reads the feed after every wait, timeout or not.
        """
        return self._wake_up_listener()

    @abc.abstractmethod
    def _wake_up_listener(self) -> Any:
        """An async context manager giving ``async wait(timeout)`` for new appends."""

    # -- event schemas ---------------------------------------------------------

    @functools.cached_property
    def schemas(self) -> SchemaRegistry:
        """The registry of the event schemas written to this store (see ``_schemas``)."""
        return InMemorySchemaRegistry()

    async def stored_schema_versions(self) -> dict[tuple[str, int], int]:
        """How many events are stored per ``(type, schema_version)``."""
        counts: Counter[tuple[str, int]] = Counter()
        async for event in self._read_all(START, None):
            counts[(event.type, event.schema_version)] += 1
        return dict(sorted(counts.items()))

    async def sample_events(
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
        return await self._sample_events(per_version, max_shapes)

    async def _sample_events(self, per_version: int, max_shapes: int) -> list[RecordedEvent]:
        return pick_sample([e async for e in self._read_all(START, None)], per_version, max_shapes)

    # -- lifecycle -----------------------------------------------------------

    @abc.abstractmethod
    async def close(self) -> None: ...

    @staticmethod
    def _check_range(stream_id: str, low: int, high: int | None) -> tuple[int, int | None]:
        check_stream_id(stream_id, InvalidInputError)
        return check_version_range(stream_id, low, high)


def _is_version(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _provenance(current_span: Any = None) -> Stamp | None:
    """What every event appended here gets in its metadata, unless it set the key:
    the current correlation (see ``_correlation``) and trace context (of
    ``current_span``, the append's own span, when there is one).

    A ``traceparent`` alone (chronik's own format: hex digits and dashes) comes with
    its JSON text, written here: encoding and checking it like event metadata was
    a quarter of what tracing added to an append whose span is not sampled.
    """
    ids = current_correlation()
    if current_span is None:
        trace_context = current_trace_context()
    else:
        trace_context = trace_context_of(current_span)
    if ids is not None:
        return stamped(trace_context, ids), None
    if not trace_context:
        return None
    if len(trace_context) == 1:
        return trace_context, '{"traceparent":"%s"}' % trace_context[TRACEPARENT]  # noqa: UP031
    return trace_context, None
