"""An in-process event store for tests and examples.

It follows the same contract as the Postgres store (the contract suite runs
against both) and stores what Postgres would: data is round-tripped through
JSON, so a tuple comes back as a list here too, and numbers come back as jsonb
gives them (see ``_jsonb_number``).  Each append is one
"transaction": its events share a transaction id, as they do in Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ._errors import ConcurrencyError, DuplicateEventError, InvalidInputError
from ._model import (
    AppendResult,
    ExpectedVersion,
    Position,
    RecordedEvent,
    StreamInfo,
    version_matches,
)
from ._store import EventStore
from ._validation import (
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_EVENT_BYTES,
    PreparedEvent,
    check_byte_limits,
    check_replayed_content,
)


class InMemoryEventStore(EventStore):
    """Events in a Python list; safe for many tasks on one event loop."""

    def __init__(
        self,
        *,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        check_byte_limits(max_event_bytes, max_batch_bytes)
        self.max_event_bytes = max_event_bytes
        self.max_batch_bytes = max_batch_bytes
        self._clock = clock or (lambda: datetime.now(UTC))
        self._feed: list[RecordedEvent] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._created: dict[str, datetime] = {}
        self._by_event_id: dict[Any, RecordedEvent] = {}
        self._transactions = 0
        self._appended = asyncio.Event()

    async def _append(
        self,
        stream_id: str,
        batch: Sequence[PreparedEvent],
        expected: ExpectedVersion | int,
        connection: Any,
    ) -> AppendResult:
        if connection is not None:
            raise InvalidInputError(stream_id, "the in-memory store cannot join a transaction")
        existing = [self._by_event_id.get(event.event_id) for event in batch]
        if any(found is not None for found in existing):
            return self._replayed_batch(stream_id, batch, existing)
        stream = self._streams.get(stream_id, [])
        actual = len(stream)
        if not version_matches(expected, actual):
            raise ConcurrencyError(stream_id, expected, actual)
        self._transactions += 1
        now = self._clock()
        recorded = [
            RecordedEvent(
                stream_id=stream_id,
                version=actual + offset,
                position=Position(self._transactions, len(self._feed) + offset),
                event_id=event.event_id,
                type=event.type,
                schema_version=event.schema_version,
                data=json.loads(event.data_json, parse_float=_jsonb_number),
                metadata=json.loads(event.metadata_json, parse_float=_jsonb_number),
                recorded_at=now,
            )
            for offset, event in enumerate(batch, start=1)
        ]
        self._streams.setdefault(stream_id, stream).extend(recorded)
        self._created.setdefault(stream_id, now)
        self._feed.extend(recorded)
        self._by_event_id.update((event.event_id, event) for event in recorded)
        self._appended.set()
        self._appended = asyncio.Event()
        return AppendResult(stream_id, actual + len(batch), tuple(e.position for e in recorded))

    def _replayed_batch(
        self,
        stream_id: str,
        batch: Sequence[PreparedEvent],
        existing: Sequence[RecordedEvent | None],
    ) -> AppendResult:
        found = [event for event in existing if event is not None]
        ids = tuple(str(event.event_id) for event in batch)
        if len(found) != len(batch):
            raise DuplicateEventError(stream_id, ids, "some of these events were appended before")
        if not self._is_same_batch(stream_id, found):
            raise DuplicateEventError(
                stream_id, ids, "these event ids were appended before in another stream or batch"
            )
        check_replayed_content(
            stream_id, batch, [(e.type, e.schema_version, e.data, e.metadata) for e in found]
        )
        return AppendResult(stream_id, found[-1].version, tuple(e.position for e in found))

    def _is_same_batch(self, stream_id: str, found: Sequence[RecordedEvent]) -> bool:
        # The same batch means the whole of one earlier append, in order: not a
        # part of it, and not a run that lines up with ids from several appends.
        first = found[0]
        in_transaction = [
            event
            for event in self._streams.get(stream_id, [])
            if event.position.transaction_id == first.position.transaction_id
        ]
        return [event.event_id for event in in_transaction] == [e.event_id for e in found]

    async def _read_stream(
        self, stream_id: str, low: int, high: int | None, *, backwards: bool
    ) -> AsyncIterator[RecordedEvent]:
        stream = self._streams.get(stream_id, [])
        selected = stream[low - 1 : high]
        for event in reversed(selected) if backwards else selected:
            yield event

    async def _stream_version(
        self, stream_id: str, as_of: datetime | None, at_position: Position | None
    ) -> int:
        version = 0
        for event in self._streams.get(stream_id, []):
            if as_of is not None and event.recorded_at > as_of:
                break
            if at_position is not None and event.position > at_position:
                break
            version = event.version
        return version

    async def _list_streams(self, prefix: str, limit: int | None) -> AsyncIterator[StreamInfo]:
        names = sorted(s for s in self._streams if s.startswith(prefix))
        for stream_id in names[:limit]:
            events = self._streams[stream_id]
            yield StreamInfo(
                stream_id, len(events), self._created[stream_id], events[-1].recorded_at
            )

    async def _read_all(self, after: Position, limit: int | None) -> AsyncIterator[RecordedEvent]:
        start = _first_index_after(self._feed, after)
        end = len(self._feed) if limit is None else start + limit
        for event in self._feed[start:end]:
            yield event

    async def head(self) -> Position | None:
        return self._feed[-1].position if self._feed else None

    @contextlib.asynccontextmanager
    async def _wake_up_listener(
        self,
    ) -> AsyncIterator[Callable[[float], Coroutine[Any, Any, None]]]:
        async def wait(seconds: float) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._appended.wait(), seconds)

        yield wait

    async def close(self) -> None:
        """Nothing to release; kept for the shared lifecycle."""


def _jsonb_number(text: str) -> float | int:
    """A JSON float as it reads back from PostgreSQL's jsonb (a ``numeric``).

    Python writes a float of magnitude 1e16 or more in exponent form ("1.5e+16");
    numeric keeps no exponent and prints it as an integer, so it reads back as
    the int those decimal digits spell (``int(Decimal("1.5e+16"))``):
    ``float()`` of it is the float written.  Numeric has no negative zero: -0.0
    reads back as 0.0.  Every other finite float reads back exactly.
    """
    value = float(text)
    if abs(value) >= 1e16:
        return int(Decimal(text))
    return value + 0.0  # -0.0 + 0.0 == 0.0


def _first_index_after(feed: Sequence[RecordedEvent], after: Position) -> int:
    low, high = 0, len(feed)
    while low < high:
        middle = (low + high) // 2
        if feed[middle].position <= after:
            low = middle + 1
        else:
            high = middle
    return low
