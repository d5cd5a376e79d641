"""The EventStore contract, reading: streams, versions, listings, the feed and subscriptions."""

from __future__ import annotations

import asyncio
import contextlib
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from contracts.event_store_support import (
    HANG_GUARD,
    ContractBase,
    collect,
    feed_after,
    new_events,
    new_stream,
)

from eventstore import (
    START,
    EventStore,
    InvalidInputError,
    Position,
    RecordedEvent,
)


class ReadsContract(ContractBase):
    """Everything that reads, one stream or the whole feed."""

    # -- reading one stream ---------------------------------------------------------

    async def test_read_stream_ranges(self, store: EventStore) -> None:
        stream = new_stream()
        await store.append(stream, new_events(5))

        async def versions(low: int = 1, high: int | None = None) -> list[int]:
            return [e.version for e in await collect(store.read_stream(stream, low, high))]

        assert await versions() == [1, 2, 3, 4, 5]
        assert await versions(2) == [2, 3, 4, 5]
        assert await versions(2, 4) == [2, 3, 4]
        assert await versions(3, 3) == [3]
        assert await versions(4, 99) == [4, 5]
        assert await versions(6) == []
        assert await versions(4, 2) == []
        assert await collect(store.read_stream(new_stream())) == []

    async def test_read_stream_backwards(self, store: EventStore) -> None:
        stream = new_stream()
        await store.append(stream, new_events(5))

        async def versions(high: int | None = None, low: int = 1) -> list[int]:
            backwards = store.read_stream_backwards(stream, high, low)
            return [e.version for e in await collect(backwards)]

        assert await versions() == [5, 4, 3, 2, 1]
        assert await versions(3) == [3, 2, 1]
        assert await versions(4, 2) == [4, 3, 2]
        assert await versions(None, 4) == [5, 4]
        assert await versions(99, 5) == [5]
        assert await versions(2, 4) == []
        assert await collect(store.read_stream_backwards(new_stream())) == []

    async def test_long_streams_read_across_pages(self, store: EventStore) -> None:
        stream = new_stream()
        for start in range(0, 2500, 500):
            await store.append(stream, new_events(500, start=start))
        forward = await collect(store.read_stream(stream))
        assert [e.version for e in forward] == list(range(1, 2501))
        assert [e.data["n"] for e in forward] == list(range(2500))
        backward = await collect(store.read_stream_backwards(stream))
        assert [e.version for e in backward] == list(range(2500, 0, -1))
        middle = await collect(store.read_stream(stream, 999, 2001))
        assert [e.version for e in middle] == list(range(999, 2002))
        middle_back = await collect(store.read_stream_backwards(stream, 2001, 999))
        assert [e.version for e in middle_back] == list(range(2001, 998, -1))

    @pytest.mark.parametrize(
        ("low", "high"),
        [
            (0, None),
            (-1, None),
            (1, 0),
            (1, -5),
            ("1", None),
            (1, "2"),
            (None, None),
            (True, None),
            (1.0, None),
            (2**63, None),
            (2**70, 2**71),
        ],
    )
    async def test_bad_ranges_are_rejected(self, store: EventStore, low: Any, high: Any) -> None:
        with pytest.raises(InvalidInputError, match="invalid version range"):
            store.read_stream("contract-any", low, high)
        with pytest.raises(InvalidInputError, match="invalid version range"):
            store.read_stream_backwards("contract-any", high, low)

    async def test_an_upper_bound_past_the_last_version_reads_to_the_end(
        self, store: EventStore
    ) -> None:
        # Longer than one page: the later pages used to fail with UndefinedFunction
        # (a numeric parameter for the bigint read function).
        stream = new_stream()
        await store.append(stream, new_events(1001))
        for high in (2**63 - 1, 2**63, 2**70):
            forward = [e.version for e in await collect(store.read_stream(stream, 1, high))]
            assert forward == list(range(1, 1002))
            backward = await collect(store.read_stream_backwards(stream, high, 990))
            assert [e.version for e in backward] == list(range(1001, 989, -1))

    @pytest.mark.parametrize("stream_id", ["", " ", "x" * 256, 5, None, "a\x00"])
    async def test_reads_reject_bad_stream_ids(self, store: EventStore, stream_id: Any) -> None:
        with pytest.raises(InvalidInputError):
            store.read_stream(stream_id)
        with pytest.raises(InvalidInputError):
            store.read_stream_backwards(stream_id)
        with pytest.raises(InvalidInputError):
            await store.stream_version(stream_id)

    # -- stream versions ------------------------------------------------------------

    async def test_stream_version(self, store: EventStore) -> None:
        stream = new_stream()
        assert await store.stream_version(stream) == 0
        await store.append(stream, new_events(2))
        assert await store.stream_version(stream) == 2
        await store.append(stream, new_events(1))
        assert await store.stream_version(stream) == 3

    async def test_stream_version_as_of_a_time(self, store: EventStore) -> None:
        stream = new_stream()
        for _ in range(3):
            await store.append(stream, new_events(2))
        events = await collect(store.read_stream(stream))
        first = events[0].recorded_at
        assert await store.stream_version(stream, as_of=first - timedelta(seconds=1)) == 0
        assert await store.stream_version(stream, as_of=first + timedelta(days=1)) == 6
        for event in events:
            expected = max(e.version for e in events if e.recorded_at <= event.recorded_at)
            assert await store.stream_version(stream, as_of=event.recorded_at) == expected
            # Any time zone names the same instant.
            shifted = event.recorded_at.astimezone(timezone(timedelta(hours=-7)))
            assert await store.stream_version(stream, as_of=shifted) == expected
        assert await store.stream_version(new_stream(), as_of=first) == 0

    async def test_stream_version_at_a_feed_position(self, store: EventStore) -> None:
        stream, other = new_stream(), new_stream()
        a = await store.append(stream, new_events(2))
        b = await store.append(other, new_events(1))
        c = await store.append(stream, new_events(1))
        assert await store.stream_version(stream, at_position=START) == 0
        assert await store.stream_version(stream, at_position=a.positions[0]) == 1
        assert await store.stream_version(stream, at_position=a.positions[1]) == 2
        assert await store.stream_version(stream, at_position=b.positions[0]) == 2
        assert await store.stream_version(other, at_position=a.positions[1]) == 0
        assert await store.stream_version(other, at_position=b.positions[0]) == 1
        assert await store.stream_version(stream, at_position=c.positions[0]) == 3
        far = Position(c.positions[0].transaction_id + 10**6, 0)
        assert await store.stream_version(stream, at_position=far) == 3

    async def test_stream_version_rejects_bad_cuts(self, store: EventStore) -> None:
        stream = new_stream()
        await store.append(stream, new_events(1))
        with pytest.raises(InvalidInputError, match="timezone"):
            await store.stream_version(stream, as_of=datetime(2030, 1, 1))
        with pytest.raises(InvalidInputError, match="not both"):
            await store.stream_version(stream, as_of=datetime.now(UTC), at_position=START)
        with pytest.raises(InvalidInputError, match="as_of"):
            await store.stream_version(stream, as_of="2030-01-01")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="at_position"):
            await store.stream_version(stream, at_position="1:2")  # type: ignore[arg-type]

    # -- listing streams --------------------------------------------------------------

    async def test_list_streams_with_prefix_and_limit(self, store: EventStore) -> None:
        prefix = new_stream("list") + "/"
        names = [f"{prefix}{i:02d}" for i in range(12)]
        for index, name in enumerate(reversed(names)):
            await store.append(name, new_events(1 + index % 3))
        listed = await collect(store.list_streams(prefix))
        assert [s.stream_id for s in listed] == names
        versions = {name: 1 + index % 3 for index, name in enumerate(reversed(names))}
        assert {s.stream_id: s.version for s in listed} == versions
        limited = await collect(store.list_streams(prefix, limit=5))
        assert [s.stream_id for s in limited] == names[:5]
        assert await collect(store.list_streams(prefix, limit=0)) == []
        assert await collect(store.list_streams(prefix + "1")) == [listed[10], listed[11]]
        assert await collect(store.list_streams(prefix + "99")) == []

    async def test_list_streams_timestamps(self, store: EventStore) -> None:
        stream = new_stream("list")
        await store.append(stream, new_events(1))
        await store.append(stream, new_events(1))
        [info] = await collect(store.list_streams(stream))
        events = await collect(store.read_stream(stream))
        assert info.created_at.utcoffset() is not None
        assert info.created_at <= events[0].recorded_at
        assert info.created_at <= info.updated_at <= events[-1].recorded_at

    async def test_list_streams_prefix_is_literal(self, store: EventStore) -> None:
        base = new_stream("list")
        for suffix in ("%a", "_b", "xc", "\\d"):
            await store.append(base + suffix, new_events(1))
        assert [s.stream_id async for s in store.list_streams(base + "%")] == [base + "%a"]
        assert [s.stream_id async for s in store.list_streams(base + "_")] == [base + "_b"]
        assert [s.stream_id async for s in store.list_streams(base + "\\")] == [base + "\\d"]

    async def test_list_streams_in_code_point_order(self, store: EventStore) -> None:
        # Every backend and every server locale lists in the same order.
        base = new_stream("list") + "/"
        suffixes = ["a", "B", "_", "ä", "Z", "aa", "~", "\U0001f600", "0"]
        for suffix in suffixes:
            await store.append(base + suffix, new_events(1))
        listed = [s.stream_id async for s in store.list_streams(base)]
        assert listed == sorted(base + suffix for suffix in suffixes)
        assert [s.stream_id async for s in store.list_streams(base + "a")] == [
            base + "a",
            base + "aa",
        ]

    async def test_list_streams_without_prefix(self, fresh_store: EventStore) -> None:
        names = [f"s-{i:04d}" for i in range(1005)]
        for name in names:
            await fresh_store.append(name, new_events(1))
        listed = [s.stream_id async for s in fresh_store.list_streams()]
        assert listed == names
        assert [s.stream_id async for s in fresh_store.list_streams(limit=1001)] == names[:1001]
        assert [s.stream_id async for s in fresh_store.list_streams(None, limit=2)] == names[:2]

    @pytest.mark.parametrize("limit", [-1, True, 1.5, "3"])
    async def test_list_streams_rejects_bad_limits(self, store: EventStore, limit: Any) -> None:
        with pytest.raises(InvalidInputError, match="limit"):
            await collect(store.list_streams("contract", limit=limit))

    # -- the global feed --------------------------------------------------------------

    async def test_read_all_in_append_order(self, fresh_store: EventStore) -> None:
        store = fresh_store
        assert await feed_after(store, None) == []
        assert await store.head() is None
        one, two = new_stream(), new_stream()
        results = [
            await store.append(one, new_events(2)),
            await store.append(two, new_events(3)),
            await store.append(one, new_events(1)),
        ]
        feed = await feed_after(store, None)
        assert [(e.stream_id, e.version) for e in feed] == [
            (one, 1),
            (one, 2),
            (two, 1),
            (two, 2),
            (two, 3),
            (one, 3),
        ]
        positions = [p for result in results for p in result.positions]
        assert [e.position for e in feed] == positions
        assert positions == sorted(set(positions))
        assert await store.head() == positions[-1]
        assert await feed_after(store, START) == feed
        for index, event in enumerate(feed):
            assert await feed_after(store, event.position) == feed[index + 1 :]
        assert await feed_after(store, positions[-1]) == []
        assert await feed_after(store, Position(positions[-1].transaction_id + 1, 0)) == []

    async def test_read_all_with_limits(self, fresh_store: EventStore) -> None:
        store = fresh_store
        for _ in range(4):
            await store.append(new_stream(), new_events(3))
        feed = await feed_after(store, None)
        assert len(feed) == 12
        assert await collect(store.read_all(limit=5)) == feed[:5]
        assert await collect(store.read_all(feed[4].position, limit=5)) == feed[5:10]
        assert await collect(store.read_all(feed[9].position, limit=5)) == feed[10:]
        assert await collect(store.read_all(limit=0)) == []
        # Paging by position reaches every event exactly once.
        paged: list[RecordedEvent] = []
        after: Position | None = None
        while page := await collect(store.read_all(after, limit=2)):
            paged.extend(page)
            after = page[-1].position
        assert paged == feed

    async def test_count_after_counts_what_read_all_returns(self, fresh_store: EventStore) -> None:
        store = fresh_store
        assert await store.count_after() == 0
        for size in (1, 4, 2):
            await store.append(new_stream(), new_events(size))
        feed = await feed_after(store, None)
        assert await store.count_after() == 7
        for index, event in enumerate(feed):
            assert await store.count_after(event.position) == len(feed) - index - 1
        assert await store.held_back_count() == 0

    async def test_read_all_across_pages(self, fresh_store: EventStore) -> None:
        streams = [new_stream() for _ in range(3)]
        for round_ in range(5):
            for stream in streams:
                await fresh_store.append(stream, new_events(100, start=round_ * 100))
        feed = await feed_after(fresh_store, None)
        assert len(feed) == 1500
        assert len({e.event_id for e in feed}) == 1500
        assert [e.position for e in feed] == sorted(e.position for e in feed)
        assert await collect(fresh_store.read_all(limit=1200)) == feed[:1200]
        assert await collect(fresh_store.read_all(feed[99].position, limit=1001)) == feed[100:1101]

    @pytest.mark.parametrize(
        ("after", "limit"), [("1:2", None), (5, None), (None, -1), (None, True), (None, "10")]
    )
    async def test_read_all_rejects_bad_arguments(
        self, store: EventStore, after: Any, limit: Any
    ) -> None:
        with pytest.raises(InvalidInputError):
            await collect(store.read_all(after, limit))

    # -- live subscription --------------------------------------------------------------

    async def test_subscribe_catches_up_then_follows(self, fresh_store: EventStore) -> None:
        store = fresh_store
        stream = new_stream()
        history = await store.append(stream, new_events(3))
        subscription = store.subscribe(page_size=2, poll_interval=0.05)
        try:
            caught_up = [await asyncio.wait_for(anext(subscription), HANG_GUARD) for _ in range(3)]
            assert [e.position for e in caught_up] == list(history.positions)
            live = await store.append(stream, new_events(3))
            other = await store.append(new_stream(), new_events(1))
            followed = [await asyncio.wait_for(anext(subscription), HANG_GUARD) for _ in range(4)]
        finally:
            await subscription.aclose()
        assert [e.position for e in followed] == [*live.positions, *other.positions]
        assert [e.version for e in followed[:3]] == [4, 5, 6]

    async def test_subscribe_from_a_position(self, fresh_store: EventStore) -> None:
        store = fresh_store
        first = await store.append(new_stream(), new_events(2))
        second = await store.append(new_stream(), new_events(2))
        subscription = store.subscribe(after=first.positions[-1], poll_interval=0.05)
        try:
            got = [await asyncio.wait_for(anext(subscription), HANG_GUARD) for _ in range(2)]
        finally:
            await subscription.aclose()
        assert [e.position for e in got] == list(second.positions)

    async def test_subscribe_is_woken_by_an_append(self, fresh_store: EventStore) -> None:
        store = fresh_store
        stream = new_stream()
        await store.append(stream, new_events(1))
        # A poll interval far beyond the hang guard: only the wake-up signal (or the
        # catch-up read, if the append lands first) can deliver the event in time.
        subscription = store.subscribe(after=await store.head(), poll_interval=3600)
        pending = asyncio.ensure_future(anext(subscription))
        try:
            await self.until_subscriber_waits(store)
            assert not pending.done()
            result = await store.append(stream, new_events(1))
            event = await asyncio.wait_for(pending, HANG_GUARD)
        finally:
            pending.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await pending
            await subscription.aclose()
        assert (event.stream_id, event.version, event.position) == (stream, 2, result.positions[0])

    @pytest.mark.parametrize(
        "arguments",
        [
            {"page_size": 0},
            {"page_size": -1},
            {"page_size": True},
            {"page_size": "5"},
            {"poll_interval": 0},
            {"poll_interval": -1.0},
            {"poll_interval": math.nan},
            {"poll_interval": "1"},
            {"after": "1:2"},
        ],
    )
    async def test_subscribe_rejects_bad_arguments(
        self, store: EventStore, arguments: dict[str, Any]
    ) -> None:
        subscription = store.subscribe(**arguments)
        try:
            with pytest.raises(InvalidInputError):
                # page_size=0 used to spin forever here: bound it.
                await asyncio.wait_for(anext(subscription), HANG_GUARD)
        finally:
            await subscription.aclose()
