"""Generated from eventstore/_memory.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``eventstore._memory``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from eventstore._errors import ConcurrencyError, DuplicateEventError, InvalidInputError
from eventstore._memory import _first_index_after, _jsonb_number
from eventstore._model import (
    AppendResult,
    ExpectedVersion,
    Position,
    RecordedEvent,
    StreamInfo,
    version_matches,
)
from eventstore._validation import (
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_EVENT_BYTES,
    PreparedEvent,
    check_byte_limits,
    check_replayed_content,
)
from eventstore.sync._store import EventStore


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
        self._appended = threading.Event()

    def _append(
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
        self._appended = threading.Event()
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
        first = found[0]
        in_transaction = [
            event
            for event in self._streams.get(stream_id, [])
            if event.position.transaction_id == first.position.transaction_id
        ]
        return [event.event_id for event in in_transaction] == [e.event_id for e in found]

    def _read_stream(
        self, stream_id: str, low: int, high: int | None, *, backwards: bool
    ) -> Iterator[RecordedEvent]:
        stream = self._streams.get(stream_id, [])
        selected = stream[low - 1 : high]
        for event in reversed(selected) if backwards else selected:
            yield event

    def _stream_version(
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

    def _list_streams(self, prefix: str, limit: int | None) -> Iterator[StreamInfo]:
        names = sorted(s for s in self._streams if s.startswith(prefix))
        for stream_id in names[:limit]:
            events = self._streams[stream_id]
            yield StreamInfo(
                stream_id, len(events), self._created[stream_id], events[-1].recorded_at
            )

    def _read_all(self, after: Position, limit: int | None) -> Iterator[RecordedEvent]:
        start = _first_index_after(self._feed, after)
        end = len(self._feed) if limit is None else start + limit
        for event in self._feed[start:end]:
            yield event

    def head(self) -> Position | None:
        return self._feed[-1].position if self._feed else None

    def close(self) -> None:
        """Nothing to release; kept for the shared lifecycle."""
