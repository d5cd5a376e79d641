"""The EventStore contract, bad input: a clear InvalidAppendError and nothing written."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from contracts.event_store_support import (
    ContractBase,
    Deposited,
    MakeStore,
    Unserializable,
    collect,
    feed_after,
    new_events,
    new_stream,
)

from eventstore import (
    DEFAULT_MAX_BATCH_BYTES,
    EventStore,
    InvalidAppendError,
    InvalidConfigurationError,
    InvalidInputError,
    NewEvent,
    Position,
)


class BadInputContract(ContractBase):
    """Every kind of bad append is refused before anything is written."""

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
            (NewEvent("contract.Bad", {"x": Unserializable()}), "not JSON-serializable"),
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
            (NewEvent("contract.Bad", {}, schema_version=2**31), "schema_version"),
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

    @pytest.mark.parametrize("expected", [-1, True, False, "3", None, 1.0, "ANY", 2**63, 2**70])
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
        for data, metadata in (
            ({"x": "a" * 91}, None),
            ({"x": "é" * 46}, None),
            ({"x": "a" * 80}, {"m": "b" * 10}),
        ):
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

    async def test_batches_over_the_batch_limit_are_rejected(self, make_store: MakeStore) -> None:
        # Each event is under max_event_bytes; together they are not.  Postgres used
        # to fail such a batch with a raw ProgramLimitExceeded (jsonb over 256 MiB).
        store = await make_store(max_event_bytes=100, max_batch_bytes=250)
        stream = new_stream()
        event = NewEvent("contract.Big", {"x": "a" * 90})  # 100 bytes with its metadata
        assert (await store.append(stream, [event, NewEvent("contract.Big", {})])).version == 2
        head = await store.head()
        with pytest.raises(InvalidAppendError, match="limit for one append is 250") as caught:
            await store.append(stream, [NewEvent("contract.Big", {"x": "a" * 90})] * 3)
        assert "event 2 ('contract.Big') brings the batch to 300 bytes" in str(caught.value)
        await self.assert_nothing_written(store, stream, 2, head)

    async def test_the_default_batch_limit_is_40_mebibytes(self, store: EventStore) -> None:
        assert store.max_batch_bytes == DEFAULT_MAX_BATCH_BYTES == 40 * 1024 * 1024
        stream = new_stream()
        head = await store.head()
        under_each = [NewEvent("contract.Big", {"x": "a" * 1_000_000}) for _ in range(42)]
        with pytest.raises(
            InvalidAppendError, match=r"event 41 .* limit for one append is 41943040"
        ):
            await store.append(stream, under_each)
        await self.assert_nothing_written(store, stream, 0, head)

    @pytest.mark.parametrize("setting", ["max_event_bytes", "max_batch_bytes"])
    @pytest.mark.parametrize("value", [0, -1, True, "1000", None])
    async def test_bad_size_settings_are_refused(
        self, make_store: MakeStore, setting: str, value: Any
    ) -> None:
        with pytest.raises(InvalidConfigurationError, match=setting):
            await make_store(**{setting: value})

    @pytest.mark.parametrize(
        "position",
        [
            Position(-1, 0),
            Position(0, -5),
            Position(2**64, 0),
            Position(1.5, 2),  # type: ignore[arg-type]
            Position("1", "2"),  # type: ignore[arg-type]
            Position(True, 1),
            (1, 2),
        ],
    )
    async def test_bad_feed_positions_are_rejected(self, store: EventStore, position: Any) -> None:
        # A negative transaction id read as an unsigned xid8 once skipped the whole feed.
        with pytest.raises(InvalidInputError, match="position"):
            await collect(store.read_all(position))
        with pytest.raises(InvalidInputError, match="position"):
            await store.count_after(position)
        with pytest.raises(InvalidInputError, match="position"):
            await store.stream_version(new_stream(), at_position=position)

    @pytest.mark.parametrize("prefix", ["nul\x00", "lone\ud800"])
    async def test_bad_prefixes_are_rejected(self, store: EventStore, prefix: str) -> None:
        with pytest.raises(InvalidInputError, match="prefix"):
            await collect(store.list_streams(prefix))
