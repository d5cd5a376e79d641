"""Where a runner's events come from: the event source seam.

A runner does not read the store directly.  It opens an ``EventSource`` after its
checkpoint and takes batches from the resulting ``EventFeed``; once a batch is
committed to the read model it tells the source (``acknowledge``), which a Kafka
consumer uses to commit offsets only after the read model has the events.  The
store's own feed is one source (``StoreFeedSource``); a Kafka consumer is another.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

from eventstore import EventStore, Position, RecordedEvent


class EventFeed(abc.ABC):
    """An open, live read of a source from some position on."""

    @abc.abstractmethod
    async def next_batch(self, max_events: int, max_wait: float) -> list[RecordedEvent]:
        """Up to ``max_events`` next events in feed order; ``[]`` if none came in ``max_wait`` s."""


class EventSource(abc.ABC):
    """A feed of recorded events in the global order of the event store."""

    @abc.abstractmethod
    def open(self, after: Position | None) -> contextlib.AbstractAsyncContextManager[EventFeed]:
        """Follow the feed live from just after ``after`` (None: from the start)."""

    @abc.abstractmethod
    async def head(self) -> Position | None:
        """The position of the last event available now (None: no events)."""

    async def acknowledge(self, position: Position) -> None:
        """Everything up to ``position`` is in the read model (a Kafka source commits here)."""
        return None


class StoreFeedSource(EventSource):
    """The event store's gap-safe feed: catch up with ``read_all``, then follow live.

    A background task reads pages ahead (``store.subscribe``: a page read per query,
    a NOTIFY wake-up, a poll as fallback) while the runner handles and commits the
    previous batch, so reading from PostgreSQL and writing the read model overlap.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        page_size: int = 1000,
        poll_interval: float = 1.0,
        read_ahead: int = 5000,
    ) -> None:
        if page_size < 1 or read_ahead < 1 or poll_interval <= 0:
            raise ValueError("page_size and read_ahead must be >= 1, poll_interval > 0")
        self.store = store
        self.page_size = page_size
        self.poll_interval = poll_interval
        self.read_ahead = read_ahead

    @contextlib.asynccontextmanager
    async def open(self, after: Position | None) -> AsyncIterator[EventFeed]:
        feed = _StoreFeed(self, after)
        try:
            yield feed
        finally:
            await feed.close()

    async def head(self) -> Position | None:
        return await self.store.head()

    def __repr__(self) -> str:
        return f"StoreFeedSource({self.store!r})"


class _StoreFeed(EventFeed):
    def __init__(self, source: StoreFeedSource, after: Position | None) -> None:
        self._source = source
        self._buffer: collections.deque[RecordedEvent] = collections.deque()
        self._arrived = asyncio.Event()
        self._drained = asyncio.Event()
        self._failure: BaseException | None = None
        self._task = asyncio.create_task(self._pump(after), name=f"chronik-feed-{after}")

    async def _pump(self, after: Position | None) -> None:
        source = self._source
        try:
            async for event in source.store.subscribe(
                after, page_size=source.page_size, poll_interval=source.poll_interval
            ):
                self._buffer.append(event)
                self._arrived.set()
                if len(self._buffer) >= source.read_ahead:
                    self._drained.clear()
                    await self._drained.wait()
        except Exception as error:
            # Handed to the reader: the runner decides (restart from its checkpoint).
            self._failure = error
            self._arrived.set()

    async def next_batch(self, max_events: int, max_wait: float) -> list[RecordedEvent]:
        if not self._buffer and self._failure is None:
            self._arrived.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives as the wait ends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max_wait):
                    await self._arrived.wait()
        if not self._buffer and self._failure is not None:
            raise self._failure
        buffer = self._buffer
        count = min(max_events, len(buffer))
        batch = [buffer.popleft() for _ in range(count)]
        if len(buffer) < self._source.read_ahead:
            self._drained.set()
        return batch

    async def close(self) -> None:
        # Cancel until it is done: on Python 3.11 a library's wait_for can swallow
        # one cancellation, and a pump that survives it would be waited on forever.
        # wait(), not await: the pump's own cancellation must not read as ours.
        while not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task], timeout=0.5)
