"""Row changes as a projection's event source: a read model from a legacy table, no Kafka.

``ChangeEventSource`` plugs a CDC connector into the event-source seam
(``projections.EventSource``).  Each change becomes a ``RecordedEvent`` whose

- ``type`` is ``"<schema>.<table>"`` (declare a ``RowChange`` subclass with that
  ``event_type`` and register handlers on it),
- ``data`` is the Debezium envelope (``before``, ``after``, ``op``, ``source``,
  ``ts_ms``, ``transaction``); tombstones are Kafka's business and not passed,
- ``stream_id`` is ``"<schema>.<table>:<key as JSON>"``, ``version`` 0,
- ``position`` is ``Position(end LSN of the transaction, index in it)``: the
  snapshot rows sit at the slot's consistent point, every streamed transaction
  after it, in commit order,
- ``event_id`` a UUID derived from the slot and the position (stable on replay).

The slot moves only in ``acknowledge``, i.e. once the runner committed the
read model, and only to the end of a transaction fully acknowledged.  After a
crash the runner reopens after its checkpoint; changes up to it that the slot
still holds are skipped, so nothing is applied twice or lost.

One slot has one reader: give each projection its own connector ``name``.  A
slot cannot go back in time, so a projection rebuilt from the start needs a new
connector name (a new snapshot).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from eventstore import Event, Position, RecordedEvent
from projections import EventFeed, EventSource

from ._cdc_capture import CdcOptions, ChangeCapture
from ._cdc_envelope import ChangeEvent

_NAMESPACE = uuid.UUID("6f1c1f4e-2b8a-4c53-9d0b-6a0f1c2d3e4f")


class RowChange(Event):
    """A row change as a typed event: subclass with ``event_type = "schema.table"``."""

    before: dict[str, Any] | None
    after: dict[str, Any] | None
    op: str
    source: dict[str, Any]
    ts_ms: int
    transaction: dict[str, Any] | None = None


class ChangeEventSource(EventSource):
    """The changes of one CDC connector, for a ``ProjectionRunner``."""

    def __init__(self, dsn: str, options: CdcOptions, *, poll_interval: float = 0.2) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be > 0")
        self.dsn = dsn
        self.options = options
        self.poll_interval = poll_interval
        self._feed: _ChangeFeed | None = None
        self._head: Position | None = None

    @contextlib.asynccontextmanager
    async def open(self, after: Position | None) -> AsyncIterator[EventFeed]:
        async with ChangeCapture(self.dsn, self.options) as capture:
            feed = _ChangeFeed(self, capture, after)
            self._feed = feed
            try:
                yield feed
            finally:
                self._feed = None

    async def head(self) -> Position | None:
        """The last change read so far (the slot cannot tell what it holds without decoding)."""
        return self._head

    async def acknowledge(self, position: Position) -> None:
        if self._feed is not None:
            await self._feed.acknowledge(position)

    def __repr__(self) -> str:
        return f"ChangeEventSource({self.options.name!r}, tables={list(self.options.tables)})"


class _ChangeFeed(EventFeed):
    def __init__(
        self, source: ChangeEventSource, capture: ChangeCapture, after: Position | None
    ) -> None:
        self._source = source
        self._capture = capture
        self._after = after
        self._buffer: collections.deque[RecordedEvent] = collections.deque()
        self._snapshot: AsyncIterator[list[ChangeEvent]] | None = None
        self._snapshot_end: Position | None = None
        self._snapshot_read = False
        self._acknowledged: Position | None = None
        # Transactions read, not yet confirmed: end LSN -> index of its last event.
        self._open_ends: dict[int, int] = {}

    async def next_batch(self, max_events: int, max_wait: float) -> list[RecordedEvent]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        while not self._buffer:
            read_any = await self._fill()
            if self._buffer or loop.time() >= deadline:
                break
            if not read_any:
                await asyncio.sleep(min(self._source.poll_interval, deadline - loop.time()))
        count = min(max_events, len(self._buffer))
        return [self._buffer.popleft() for _ in range(count)]

    async def _fill(self) -> bool:
        """Read more changes into the buffer; False when the slot had nothing."""
        capture = self._capture
        if capture.snapshot_due and not self._snapshot_read:
            if self._snapshot is None:
                self._snapshot = aiter(capture.snapshot())
            try:
                page = await anext(self._snapshot)
            except StopAsyncIteration:
                self._snapshot_read = True
                await self._finish_snapshot()
                return True
            for change in page:
                self._snapshot_end = Position(*change.position)
            self._take(page)
            return True
        if capture.snapshot_due:
            return False  # the runner has not acknowledged the snapshot's rows yet
        batch = await capture.read()
        if not batch.events and batch.confirm_lsn is not None and not self._open_ends:
            await capture.confirm(batch.confirm_lsn)  # nothing of ours: release the WAL
        self._take(batch.events)
        return bool(batch.messages)

    def _take(self, changes: list[ChangeEvent]) -> None:
        name = self._capture.names.slot
        for change in changes:
            if change.value is None:
                continue  # a tombstone
            position = Position(*change.position)
            if self._after is not None and position <= self._after:
                continue
            self._after = position
            self._open_ends[change.commit_lsn] = change.sequence
            key = json.dumps(change.key, separators=(",", ":"), sort_keys=True)
            self._buffer.append(
                RecordedEvent(
                    stream_id=f"{change.schema}.{change.table}:{key}",
                    version=0,
                    position=position,
                    event_id=uuid.uuid5(_NAMESPACE, f"{name}:{position}"),
                    type=f"{change.schema}.{change.table}",
                    schema_version=1,
                    data=change.value,
                    metadata={"topic": change.topic, "key": change.key},
                    recorded_at=change.commit_time,
                )
            )
            self._source._head = position

    async def acknowledge(self, position: Position) -> None:
        self._acknowledged = position
        if self._capture.snapshot_due:
            await self._finish_snapshot()
            return
        done = [
            end
            for end, last in self._open_ends.items()
            if end < position.transaction_id
            or (end == position.transaction_id and position.global_position >= last)
        ]
        if done:
            for end in done:
                del self._open_ends[end]
            await self._capture.confirm(max(done))

    async def _finish_snapshot(self) -> None:
        """Mark the snapshot delivered once it was all read and the runner has it all."""
        end, acknowledged = self._snapshot_end, self._acknowledged
        if not self._snapshot_read:
            return
        if end is None or (acknowledged is not None and acknowledged >= end):
            self._open_ends.clear()
            await self._capture.snapshot_delivered()
