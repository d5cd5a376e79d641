"""The EventStore contract: one suite, run against every backend.

Subclasses in ``tests/backends/`` provide two fixtures:

- ``store``: a store that may already hold other tests' events (isolate with
  fresh stream ids);
- ``make_store``: an async factory ``make_store(**options)`` returning a new,
  empty store (its own schema in Postgres), closed by the fixture's teardown.

Tests that look at the whole feed use ``fresh_store``; the others use fresh
stream ids in ``store``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import pickle
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from eventstore import (
    ANY,
    NO_STREAM,
    START,
    STREAM_EXISTS,
    ChronikError,
    ConcurrencyError,
    DuplicateEventError,
    Event,
    EventCodec,
    EventStore,
    EventStoreError,
    InvalidAppendError,
    InvalidInputError,
    NewEvent,
    Position,
    RecordedEvent,
)
from upcasters import UpcasterChain

MakeStore = Callable[..., Awaitable[EventStore]]

# Long enough that a lost event or a hung subscription fails the test instead of
# hanging the suite; never an assertion about speed.
HANG_GUARD = 20.0


class Deposited(Event):
    event_type: ClassVar[str] = "contract.Deposited"
    event_version: ClassVar[int] = 2
    account: str
    amount: Decimal


UPCASTERS = UpcasterChain()


@UPCASTERS.upcaster("contract.Deposited", from_version=1)
def _deposited_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "account": "legacy"}


class Withdrawn(Event):
    event_type: ClassVar[str] = "contract.Withdrawn"
    amount: Decimal


# -- helpers -----------------------------------------------------------------


def new_stream(prefix: str = "contract") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def new_events(count: int, kind: str = "contract.Happened", start: int = 0) -> list[NewEvent]:
    return [NewEvent(kind, {"n": start + i}, event_id=uuid.uuid4()) for i in range(count)]


async def collect(events: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in events]


async def feed_after(store: EventStore, after: Position | None) -> list[RecordedEvent]:
    return await collect(store.read_all(after))


def ids(events: Sequence[RecordedEvent | NewEvent]) -> list[Any]:
    return [event.event_id for event in events]


class _Unserializable:
    pass


class EventStoreContract:
    """Behaviour every EventStore backend must show; subclass per backend."""

    @pytest.fixture
    async def fresh_store(self, make_store: MakeStore) -> EventStore:
        return await make_store()

    async def assert_nothing_written(
        self,
        store: EventStore,
        stream_id: str,
        version_before: int,
        head_before: Position | None,
    ) -> None:
        assert await store.stream_version(stream_id) == version_before
        assert len(await collect(store.read_stream(stream_id))) == version_before
        assert await feed_after(store, head_before) == []
        assert await store.head() == head_before

    # -- append and read back -------------------------------------------------

    async def test_append_returns_the_new_version_and_positions(self, store: EventStore) -> None:
        stream = new_stream()
        result = await store.append(stream, new_events(3))
        assert result.stream_id == stream
        assert result.version == 3
        assert result.first_version == 1
        assert len(result.positions) == 3
        assert list(result.positions) == sorted(set(result.positions))
        assert all(isinstance(p, Position) for p in result.positions)

    async def test_read_back_has_every_envelope_field(self, store: EventStore) -> None:
        stream = new_stream()
        event_id = uuid.uuid4()
        data = {"owner": "ada", "nested": {"list": [1, 2.5, "x", None, True]}, "ü": "ß€𝄞"}
        metadata = {"correlation_id": "c-1", "causation": {"by": "test"}}
        sent = NewEvent("contract.Opened", data, schema_version=3, event_id=event_id,
                        metadata=metadata)
        result = await store.append(stream, [sent])
        [recorded] = await collect(store.read_stream(stream))
        assert recorded.stream_id == stream
        assert recorded.version == 1
        assert recorded.position == result.positions[0]
        assert recorded.event_id == event_id
        assert recorded.type == "contract.Opened"
        assert recorded.schema_version == 3
        assert recorded.data == data
        assert recorded.metadata == metadata
        assert isinstance(recorded.recorded_at, datetime)
        assert recorded.recorded_at.utcoffset() is not None

    async def test_missing_event_ids_and_metadata_are_filled_in(self, store: EventStore) -> None:
        stream = new_stream()
        await store.append(stream, [NewEvent("contract.A", {}), NewEvent("contract.B", {"x": 1})])
        events = await collect(store.read_stream(stream))
        assert [e.type for e in events] == ["contract.A", "contract.B"]
        assert all(isinstance(e.event_id, uuid.UUID) for e in events)
        assert events[0].event_id != events[1].event_id
        assert [e.metadata for e in events] == [{}, {}]
        assert [e.schema_version for e in events] == [1, 1]

    async def test_data_round_trips_as_json(self, store: EventStore) -> None:
        stream = new_stream()
        data = {
            "tuple": (1, 2),
            "big": 2**70,
            "negative": -17,
            "escaped_nul_text": "\\u0000 is six characters here",
            "empty": {},
            "flags": [True, False, None],
            "quote": 'he said "hi"\n',
        }
        await store.append(stream, [NewEvent("contract.Data", data)])
        [recorded] = await collect(store.read_stream(stream))
        assert recorded.data == {**data, "tuple": [1, 2]}

    async def test_versions_continue_across_appends(self, store: EventStore) -> None:
        stream = new_stream()
        first = await store.append(stream, new_events(2))
        second = await store.append(stream, new_events(3, start=2))
        assert (first.version, second.version, second.first_version) == (2, 5, 3)
        events = await collect(store.read_stream(stream))
        assert [e.version for e in events] == [1, 2, 3, 4, 5]
        assert [e.data["n"] for e in events] == [0, 1, 2, 3, 4]
        assert [e.position for e in events] == [*first.positions, *second.positions]
        assert first.positions[-1] < second.positions[0]

    async def test_recorded_at_never_goes_backwards_in_a_stream(self, store: EventStore) -> None:
        stream = new_stream()
        for _ in range(3):
            await store.append(stream, new_events(2))
        times = [e.recorded_at for e in await collect(store.read_stream(stream))]
        assert times == sorted(times)

    async def test_streams_are_independent(self, store: EventStore) -> None:
        one, two = new_stream(), new_stream()
        await store.append(one, new_events(2))
        await store.append(two, new_events(1))
        await store.append(one, new_events(1))
        assert await store.stream_version(one) == 3
        assert await store.stream_version(two) == 1
        assert {e.stream_id for e in await collect(store.read_stream(two))} == {two}

    async def test_typed_events_are_accepted(self, store: EventStore) -> None:
        stream = new_stream()
        codec = EventCodec([Deposited, Withdrawn], UPCASTERS)
        typed = Deposited(account="acc-1", amount=Decimal("10.50"))
        await store.append(stream, [typed, NewEvent("contract.Note", {"text": "mixed batch"}),
                                    Withdrawn(amount=Decimal("3")),
                                    NewEvent("contract.Deposited", {"amount": "2"})])
        first, note, last, old = await collect(store.read_stream(stream))
        assert (first.type, first.schema_version) == ("contract.Deposited", 2)
        assert first.data == {"account": "acc-1", "amount": "10.50"}
        assert codec.decode(first) == typed
        assert note.data == {"text": "mixed batch"}
        assert codec.decode(last) == Withdrawn(amount=Decimal("3"))
        assert old.schema_version == 1
        assert codec.decode(old) == Deposited(account="legacy", amount=Decimal(2))

    # -- expected versions ------------------------------------------------------

    async def test_any_appends_whatever_the_version(self, store: EventStore) -> None:
        stream = new_stream()
        assert (await store.append(stream, new_events(1), ANY)).version == 1
        assert (await store.append(stream, new_events(1), ANY)).version == 2

    async def test_no_stream_only_creates(self, store: EventStore) -> None:
        stream = new_stream()
        assert (await store.append(stream, new_events(2), NO_STREAM)).version == 2
        head = await store.head()
        with pytest.raises(ConcurrencyError) as caught:
            await store.append(stream, new_events(1), NO_STREAM)
        error = caught.value
        assert (error.stream_id, error.expected, error.actual) == (stream, NO_STREAM, 2)
        assert stream in str(error)
        await self.assert_nothing_written(store, stream, 2, head)

    async def test_zero_means_no_stream(self, store: EventStore) -> None:
        stream = new_stream()
        assert (await store.append(stream, new_events(1), 0)).version == 1
        head = await store.head()
        with pytest.raises(ConcurrencyError) as caught:
            await store.append(stream, new_events(1), 0)
        assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == (
            stream, 0, 1,
        )
        await self.assert_nothing_written(store, stream, 1, head)

    async def test_stream_exists_needs_a_stream(self, store: EventStore) -> None:
        stream = new_stream()
        head = await store.head()
        with pytest.raises(ConcurrencyError) as caught:
            await store.append(stream, new_events(1), STREAM_EXISTS)
        error = caught.value
        assert (error.stream_id, error.expected, error.actual) == (stream, STREAM_EXISTS, 0)
        await self.assert_nothing_written(store, stream, 0, head)
        await store.append(stream, new_events(1))
        assert (await store.append(stream, new_events(2), STREAM_EXISTS)).version == 3

    async def test_exact_version_must_match(self, store: EventStore) -> None:
        stream = new_stream()
        await store.append(stream, new_events(2))
        assert (await store.append(stream, new_events(1), 2)).version == 3
        head = await store.head()
        for wrong in (1, 2, 4, 10):
            with pytest.raises(ConcurrencyError) as caught:
                await store.append(stream, new_events(1), wrong)
            error = caught.value
            assert (error.stream_id, error.expected, error.actual) == (stream, wrong, 3)
            assert str(wrong) in str(error) and "3" in str(error)
        await self.assert_nothing_written(store, stream, 3, head)

    async def test_exact_version_on_a_missing_stream(self, store: EventStore) -> None:
        stream = new_stream()
        with pytest.raises(ConcurrencyError) as caught:
            await store.append(stream, new_events(1), 1)
        assert (caught.value.expected, caught.value.actual) == (1, 0)
        assert await store.stream_version(stream) == 0

    async def test_concurrency_error_is_a_picklable_store_error(self, store: EventStore) -> None:
        stream = new_stream()
        await store.append(stream, new_events(1))
        with pytest.raises(ConcurrencyError) as caught:
            await store.append(stream, new_events(1), NO_STREAM)
        assert isinstance(caught.value, EventStoreError)
        assert isinstance(caught.value, ChronikError)
        copy = pickle.loads(pickle.dumps(caught.value))
        assert (copy.stream_id, copy.expected, copy.actual) == (stream, NO_STREAM, 1)

    # -- atomic batches -----------------------------------------------------------

    async def test_a_batch_with_one_bad_event_writes_nothing(self, store: EventStore) -> None:
        stream = new_stream()
        await store.append(stream, new_events(1))
        head = await store.head()
        batch = [*new_events(2), NewEvent("contract.Bad", {"x": _Unserializable()}),
                 *new_events(1)]
        with pytest.raises(InvalidAppendError, match="event 2"):
            await store.append(stream, batch)
        await self.assert_nothing_written(store, stream, 1, head)
        # The good ids were not consumed: the same events append fine on their own.
        assert (await store.append(stream, [batch[0], batch[1], batch[3]])).version == 4

    async def test_a_batch_is_all_or_nothing_in_the_feed(self, fresh_store: EventStore) -> None:
        stream = new_stream()
        await fresh_store.append(stream, new_events(2))
        with pytest.raises(ConcurrencyError):
            await fresh_store.append(stream, new_events(5), 1)
        with pytest.raises(InvalidAppendError):
            await fresh_store.append(stream, [*new_events(3), NewEvent("", {})])
        feed = await feed_after(fresh_store, None)
        assert [(e.stream_id, e.version) for e in feed] == [(stream, 1), (stream, 2)]

    # -- idempotency --------------------------------------------------------------

    async def test_re_appending_a_batch_returns_the_original_result(
        self, fresh_store: EventStore
    ) -> None:
        stream = new_stream()
        batch = new_events(3)
        original = await fresh_store.append(stream, batch, NO_STREAM)
        again = await fresh_store.append(stream, batch, NO_STREAM)
        assert again == original
        assert await fresh_store.append(stream, batch, ANY) == original
        assert await fresh_store.append(stream, batch, 0) == original
        assert await fresh_store.append(stream, batch, 3) == original
        assert await fresh_store.stream_version(stream) == 3
        assert ids(await feed_after(fresh_store, None)) == ids(batch)

    async def test_re_appending_an_earlier_batch_after_later_ones(self, store: EventStore) -> None:
        stream = new_stream()
        first, second, third = new_events(2), new_events(1), new_events(2)
        results = [await store.append(stream, batch) for batch in (first, second, third)]
        head = await store.head()
        for expected in (ANY, STREAM_EXISTS, NO_STREAM, 0, 2, 5, 9):
            assert await store.append(stream, second, expected) == results[1]
            assert await store.append(stream, first, expected) == results[0]
        await self.assert_nothing_written(store, stream, 5, head)

    @pytest.mark.parametrize(
        "shape", ["old+new", "new+old", "prefix", "suffix", "reordered", "two batches"]
    )
    async def test_a_partial_overlap_is_an_error(self, store: EventStore, shape: str) -> None:
        stream = new_stream()
        first, second = new_events(3), new_events(2)
        await store.append(stream, first)
        await store.append(stream, second)
        fresh = new_events(1)
        batch = {
            "old+new": [first[2], *fresh],
            "new+old": [*fresh, second[0]],
            "prefix": first[:2],
            "suffix": first[1:],
            "reordered": [second[1], second[0]],
            "two batches": [*first, *second],
        }[shape]
        head = await store.head()
        with pytest.raises(DuplicateEventError) as caught:
            await store.append(stream, batch)
        assert caught.value.stream_id == stream
        assert caught.value.event_ids == tuple(str(e.event_id) for e in batch)
        assert stream in str(caught.value)
        await self.assert_nothing_written(store, stream, 5, head)
        # The new id was not consumed either.
        assert (await store.append(stream, fresh)).version == 6

    @pytest.mark.parametrize("expected", [ANY, NO_STREAM, 0])
    async def test_the_same_ids_in_another_stream_are_an_error(
        self, store: EventStore, expected: Any
    ) -> None:
        stream, other = new_stream(), new_stream()
        batch = new_events(2)
        await store.append(stream, batch)
        head = await store.head()
        with pytest.raises(DuplicateEventError) as caught:
            await store.append(other, batch, expected)
        assert caught.value.stream_id == other
        await self.assert_nothing_written(store, other, 0, head)
        assert [s async for s in store.list_streams(other)] == []

    # -- bad input ------------------------------------------------------------

    @pytest.mark.parametrize(
        ("stream_id", "problem"),
        [
            ("", "empty"),
            ("   ", "empty"),
            ("\t\n", "empty"),
            ("x" * 256, "256 characters"),
            (123, "must be a string"),
            (None, "must be a string"),
            (b"bytes", "must be a string"),
            ("nul\x00inside", "NUL"),
        ],
    )
    async def test_bad_stream_ids_are_rejected(
        self, store: EventStore, stream_id: Any, problem: str
    ) -> None:
        head = await store.head()
        with pytest.raises(InvalidAppendError, match=problem):
            await store.append(stream_id, new_events(1))
        assert await feed_after(store, head) == []

    async def test_a_stream_id_of_255_characters_is_fine(self, store: EventStore) -> None:
        stream = new_stream()
        stream += "x" * (255 - len(stream))
        assert (await store.append(stream, new_events(1))).version == 1
        assert [e.stream_id for e in await collect(store.read_stream(stream))] == [stream]

    @pytest.mark.parametrize(
        ("events", "problem"),
        [
            ([], "no events"),
            ((), "no events"),
            (iter([]), "no events"),
            (NewEvent("contract.Single", {}), "single"),
            (Deposited(account="a", amount=Decimal(1)), "single"),
            ({"type": "contract.Dict"}, "single"),
            ("contract.Text", "single"),
            (None, "list of events"),
            (42, "list of events"),
            ([{"type": "contract.Dict", "data": {}}], "expected a NewEvent"),
        ],
    )
    async def test_the_batch_itself_must_be_a_list_of_events(
        self, store: EventStore, events: Any, problem: str
    ) -> None:
        stream = new_stream()
        await store.append(stream, new_events(1))
        head = await store.head()
        with pytest.raises(InvalidAppendError, match=problem):
            await store.append(stream, events)
        await self.assert_nothing_written(store, stream, 1, head)

    @pytest.mark.parametrize(
        ("event", "problem"),
        [
            (NewEvent("contract.Bad", {"x": _Unserializable()}), "not JSON-serializable"),
            (NewEvent("contract.Bad", {"x": {1, 2}}), "not JSON-serializable"),
            (NewEvent("contract.Bad", {"x": datetime.now(UTC)}), "not JSON-serializable"),
            (NewEvent("contract.Bad", {"x": Decimal("1.5")}), "not JSON-serializable"),
            (NewEvent("contract.Bad", {"x": math.nan}), "not JSON-serializable"),
            (NewEvent("contract.Bad", {"x": math.inf}), "not JSON-serializable"),
            (NewEvent("contract.Bad", {"x": "nul\x00here"}), "NUL"),
            (NewEvent("contract.Bad", {"nul\x00key": 1}), "NUL"),
            (NewEvent("contract.Bad", {"x": ["deep", {"y": "\x00"}]}), "NUL"),
            (NewEvent("contract.Bad", {}, metadata={"m": "\x00"}), "NUL"),
            (NewEvent("contract.Bad\x00", {}), "NUL"),
            (NewEvent("contract.Bad", {"x": "\ud800"}), "surrogate"),
            (NewEvent("contract.Bad\udfff", {}), "surrogate"),
            (NewEvent("contract.Bad", [1, 2]), "JSON object"),  # type: ignore[arg-type]
            (NewEvent("contract.Bad", "text"), "JSON object"),  # type: ignore[arg-type]
            (NewEvent("contract.Bad", None), "JSON object"),  # type: ignore[arg-type]
            (NewEvent("contract.Bad", {}, metadata=[1]), "JSON object"),  # type: ignore[arg-type]
            (NewEvent("contract.Bad", {}, schema_version=0), "schema_version"),
            (NewEvent("contract.Bad", {}, schema_version=-1), "schema_version"),
            (NewEvent("contract.Bad", {}, schema_version=True), "schema_version"),
            (NewEvent("contract.Bad", {}, schema_version="1"), "schema_version"),  # type: ignore[arg-type]
            (NewEvent("", {}), "type must be"),
            (NewEvent("t" * 256, {}), "type must be"),
            (NewEvent(7, {}), "type must be"),  # type: ignore[arg-type]
            (NewEvent("contract.Bad", {}, event_id="not-a-uuid"), "invalid event id"),  # type: ignore[arg-type]
        ],
    )
    async def test_bad_events_are_rejected(
        self, store: EventStore, event: NewEvent, problem: str
    ) -> None:
        stream = new_stream()
        await store.append(stream, new_events(1))
        head = await store.head()
        with pytest.raises(InvalidAppendError, match=problem) as caught:
            await store.append(stream, [*new_events(1), event])
        assert caught.value.stream_id == stream
        assert "event 1" in str(caught.value)
        await self.assert_nothing_written(store, stream, 1, head)

    async def test_a_nul_in_escaped_text_is_fine(self, store: EventStore) -> None:
        stream = new_stream()
        data = {"backslash_u": "\\u0000", "double": "\\\\u0000", "key\\u0000": 1}
        await store.append(stream, [NewEvent("contract.Text", data)])
        [recorded] = await collect(store.read_stream(stream))
        assert recorded.data == data

    @pytest.mark.parametrize("expected", [-1, True, False, "3", None, 1.0, "ANY"])
    async def test_bad_expected_versions_are_rejected(
        self, store: EventStore, expected: Any
    ) -> None:
        stream = new_stream()
        await store.append(stream, new_events(1))
        head = await store.head()
        with pytest.raises(InvalidAppendError, match="invalid expected version"):
            await store.append(stream, new_events(1), expected)
        await self.assert_nothing_written(store, stream, 1, head)

    async def test_duplicate_ids_within_one_batch_are_rejected(self, store: EventStore) -> None:
        stream = new_stream()
        [event] = new_events(1)
        head = await store.head()
        with pytest.raises(InvalidAppendError, match="appears twice"):
            await store.append(stream, [event, *new_events(1), event])
        await self.assert_nothing_written(store, stream, 0, head)

    async def test_events_over_the_size_limit_are_rejected(self, make_store: MakeStore) -> None:
        store = await make_store(max_event_bytes=100)
        stream = new_stream()
        # '{"x":"' + k + '"}' is 8 + k bytes and metadata '{}' is 2: k = 90 fits exactly.
        fits = NewEvent("contract.Big", {"x": "a" * 90})
        assert (await store.append(stream, [fits])).version == 1
        head = await store.head()
        for data, metadata in (({"x": "a" * 91}, None), ({"x": "é" * 46}, None),
                               ({"x": "a" * 80}, {"m": "b" * 10})):
            with pytest.raises(InvalidAppendError, match="limit is 100") as caught:
                await store.append(stream, [NewEvent("contract.Big", data, metadata=metadata)])
            assert "bytes" in str(caught.value)
        await self.assert_nothing_written(store, stream, 1, head)

    async def test_the_default_size_limit_is_one_mebibyte(self, store: EventStore) -> None:
        stream = new_stream()
        head = await store.head()
        with pytest.raises(InvalidAppendError, match="limit is 1048576"):
            await store.append(stream, [NewEvent("contract.Big", {"x": "a" * (1024 * 1024)})])
        await self.assert_nothing_written(store, stream, 0, head)

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
        ("low", "high"), [(0, None), (-1, None), (1, 0), (1, -5), ("1", None), (1, "2"),
                          (None, None), (True, None), (1.0, None)]
    )
    async def test_bad_ranges_are_rejected(self, store: EventStore, low: Any, high: Any) -> None:
        with pytest.raises(InvalidInputError, match="invalid version range"):
            store.read_stream("contract-any", low, high)
        with pytest.raises(InvalidInputError, match="invalid version range"):
            store.read_stream_backwards("contract-any", high, low)

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
            (one, 1), (one, 2), (two, 1), (two, 2), (two, 3), (one, 3)
        ]
        positions = [p for result in results for p in result.positions]
        assert [e.position for e in feed] == positions
        assert positions == sorted(set(positions))
        assert await store.head() == positions[-1]
        assert await feed_after(store, START) == feed
        for index, event in enumerate(feed):
            assert await feed_after(store, event.position) == feed[index + 1:]
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

    @pytest.mark.parametrize(("after", "limit"), [("1:2", None), (5, None), (None, -1),
                                                  (None, True), (None, "10")])
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
            caught_up = [await asyncio.wait_for(anext(subscription), HANG_GUARD)
                         for _ in range(3)]
            assert [e.position for e in caught_up] == list(history.positions)
            live = await store.append(stream, new_events(3))
            other = await store.append(new_stream(), new_events(1))
            followed = [await asyncio.wait_for(anext(subscription), HANG_GUARD)
                        for _ in range(4)]
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
            await asyncio.sleep(0.2)  # let it reach its wait (not needed for correctness)
            assert not pending.done()
            result = await store.append(stream, new_events(1))
            event = await asyncio.wait_for(pending, HANG_GUARD)
        finally:
            pending.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await pending
            await subscription.aclose()
        assert (event.stream_id, event.version, event.position) == (
            stream, 2, result.positions[0]
        )


    @pytest.mark.parametrize(
        "arguments",
        [{"page_size": 0}, {"page_size": -1}, {"page_size": True}, {"page_size": "5"},
         {"poll_interval": 0}, {"poll_interval": -1.0}, {"poll_interval": math.nan},
         {"poll_interval": "1"}, {"after": "1:2"}],
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
