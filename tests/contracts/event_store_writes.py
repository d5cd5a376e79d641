"""The EventStore contract, writing: append and read back, expected versions, atomic
batches, idempotency.
"""

from __future__ import annotations

import dataclasses
import pickle
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from contracts.event_store_support import (
    UPCASTERS,
    ContractBase,
    Deposited,
    Unserializable,
    Withdrawn,
    collect,
    feed_after,
    ids,
    new_events,
    new_stream,
)

from eventstore import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    ChronikError,
    ConcurrencyError,
    DuplicateEventError,
    EventCodec,
    EventStore,
    EventStoreError,
    InvalidAppendError,
    NewEvent,
    Position,
)


class WritesContract(ContractBase):
    """Appends that succeed, conflict, or repeat."""

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
        sent = NewEvent(
            "contract.Opened", data, schema_version=3, event_id=event_id, metadata=metadata
        )
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

    async def test_awkward_type_names_and_metadata_round_trip(self, store: EventStore) -> None:
        # The Postgres store ships a batch as one JSON document: names and
        # metadata must survive its escaping exactly.
        stream = new_stream()
        names = ['q"uote', "back\\slash", "zeilen\numbruch", "ünïcødé ✓", "tab\there"]
        events = [
            NewEvent(name, {"n": index}, metadata={"why": name, "nested": {"k": [name]}})
            for index, name in enumerate(names)
        ]
        await store.append(stream, events)
        recorded = await collect(store.read_stream(stream))
        assert [event.type for event in recorded] == names
        assert [event.metadata["why"] for event in recorded] == names
        assert [event.metadata["nested"] for event in recorded] == [{"k": [n]} for n in names]
        assert [event.data for event in recorded] == [{"n": i} for i in range(len(names))]

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
        await store.append(
            stream,
            [
                typed,
                NewEvent("contract.Note", {"text": "mixed batch"}),
                Withdrawn(amount=Decimal("3")),
                NewEvent("contract.Deposited", {"amount": "2"}),
            ],
        )
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
            stream,
            0,
            1,
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
        batch = [*new_events(2), NewEvent("contract.Bad", {"x": Unserializable()}), *new_events(1)]
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

    @pytest.mark.parametrize(
        "change",
        [
            {"type": "contract.Other"},
            {"data": {"n": 999}},
            {"schema_version": 2},
            {"metadata": {"by": "someone else"}},
        ],
    )
    async def test_an_old_id_with_new_content_is_refused(
        self, store: EventStore, change: dict[str, Any]
    ) -> None:
        # Answering with the original result would drop the new event silently.
        stream = new_stream()
        original = NewEvent("contract.E", {"n": 1}, event_id=uuid.uuid4(), metadata={"by": "me"})
        first = await store.append(stream, [original])
        reused = dataclasses.replace(original, **change)
        with pytest.raises(DuplicateEventError, match="other content"):
            await store.append(stream, [reused])
        [stored] = await collect(store.read_stream(stream))
        assert (stored.type, stored.data) == ("contract.E", {"n": 1})
        # Key order and number spelling are not content.
        same = dataclasses.replace(original, data={"n": 1.0})
        assert await store.append(stream, [same]) == first

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
