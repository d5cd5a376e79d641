"""The event stores against a plain Python model, driven by a hypothesis state machine.

Random appends (every kind of expected version, random batch sizes), re-appends of
earlier batches, partial overlaps and the same ids in another stream, interleaved
with reads of streams, versions (also at feed positions), listings and the feed.
Whatever the store answers must be what the model predicts.

The state machine is synchronous; the stores are async and bound to the event loop
they were created on.  So they live on a background thread's loop of their own,
away from pytest-asyncio's session loop, and every call hops over to it.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from eventstore import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    ConcurrencyError,
    DuplicateEventError,
    EventStore,
    ExpectedVersion,
    InMemoryEventStore,
    NewEvent,
    Position,
    PostgresEventStore,
    RecordedEvent,
)

T = TypeVar("T")

# -- a loop of our own on a background thread -----------------------------------

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="store-model-loop", daemon=True).start()
        return _loop


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    # The timeout only turns a hang into a failure; it asserts nothing about speed.
    return asyncio.run_coroutine_threadsafe(coroutine, _background_loop()).result(timeout=60)


async def _collect(events: Any) -> list[Any]:
    return [event async for event in events]


# -- the model -------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    stream_id: str
    events: tuple[NewEvent, ...]
    result: AppendResult


@dataclass
class Model:
    """What a correct store holds: streams as lists of events, the feed in append order."""

    streams: dict[str, list[NewEvent]] = field(default_factory=dict)
    feed: list[tuple[str, int, NewEvent, Position]] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)
    known_ids: set[uuid.UUID] = field(default_factory=set)

    def version(self, stream_id: str) -> int:
        return len(self.streams.get(stream_id, []))

    def record(self, stream_id: str, events: list[NewEvent], result: AppendResult) -> None:
        stream = self.streams.setdefault(stream_id, [])
        for event, position in zip(events, result.positions, strict=True):
            stream.append(event)
            self.feed.append((stream_id, len(stream), event, position))
            assert event.event_id is not None
            self.known_ids.add(event.event_id)
        self.batches.append(Batch(stream_id, tuple(events), result))


def matches(expected: ExpectedVersion | int, current: int) -> bool:
    """The model's own reading of an expected version (not the library's helper)."""
    if expected is ANY:
        return True
    if expected is NO_STREAM or expected == 0:
        return current == 0
    if expected is STREAM_EXISTS:
        return current > 0
    return expected == current


KINDS = ["any", "no stream", "stream exists", "exact right", "exact wrong", "zero"]
keys = st.text(alphabet="abcxyz_", min_size=1, max_size=4)
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=6,
)
event_data = st.dictionaries(keys, values, max_size=3)
batches = st.lists(event_data, min_size=1, max_size=4)
streams = st.integers(0, 2)


class StoreMachine(RuleBasedStateMachine):
    """One run: fresh stream ids in a store, compared with the model step by step."""

    make_store: Callable[[], Awaitable[EventStore]]

    def __init__(self) -> None:
        super().__init__()
        self.store = run(type(self).make_store())
        self.model = Model()
        prefix = f"model-{uuid.uuid4().hex[:10]}"
        self.stream_ids = [f"{prefix}-{name}" for name in ("a", "b", "c")]
        self.prefix = prefix
        self.start: Position | None = None

    @initialize()
    def remember_where_the_feed_was(self) -> None:
        # Only this machine writes to this store while it runs.
        self.start = run(self.store.head())

    # -- appends ----------------------------------------------------------------

    def _expected(self, stream_id: str, kind: str, wrong: int) -> ExpectedVersion | int:
        current = self.model.version(stream_id)
        if kind == "exact right":
            return current
        if kind == "exact wrong":
            return current + wrong if current + wrong >= 0 else current + abs(wrong)
        return {"any": ANY, "no stream": NO_STREAM, "stream exists": STREAM_EXISTS, "zero": 0}[kind]

    def _append(self, stream: int, kind: str, wrong: int, data: list[dict[str, Any]]) -> None:
        stream_id = self.stream_ids[stream]
        expected = self._expected(stream_id, kind, wrong)
        events = [
            NewEvent(
                f"model.E{i}", d, schema_version=1 + i % 2, event_id=uuid.uuid4(), metadata={"i": i}
            )
            for i, d in enumerate(data)
        ]
        current = self.model.version(stream_id)
        if matches(expected, current):
            result = run(self.store.append(stream_id, events, expected))
            assert result.stream_id == stream_id
            assert result.version == current + len(events)
            assert len(result.positions) == len(events)
            if self.model.feed:
                assert result.positions[0] > self.model.feed[-1][3]
            assert list(result.positions) == sorted(set(result.positions))
            self.model.record(stream_id, events, result)
        else:
            with pytest.raises(ConcurrencyError) as caught:
                run(self.store.append(stream_id, events, expected))
            assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == (
                stream_id,
                expected,
                current,
            )

    # Hypothesis picks among rules evenly, so appends get one rule per kind of
    # expected version: most steps then write, and the reads have history to check.
    @rule(stream=streams, data=batches)
    def append_any(self, stream: int, data: list[dict[str, Any]]) -> None:
        self._append(stream, "any", 0, data)

    @rule(stream=streams, data=batches, zero=st.booleans())
    def append_no_stream(self, stream: int, data: list[dict[str, Any]], zero: bool) -> None:
        self._append(stream, "zero" if zero else "no stream", 0, data)

    @rule(stream=streams, data=batches)
    def append_stream_exists(self, stream: int, data: list[dict[str, Any]]) -> None:
        self._append(stream, "stream exists", 0, data)

    @rule(stream=streams, data=batches)
    def append_exact_right(self, stream: int, data: list[dict[str, Any]]) -> None:
        self._append(stream, "exact right", 0, data)

    @rule(stream=streams, data=batches, wrong=st.integers(-3, 3).filter(bool))
    def append_exact_wrong(self, stream: int, data: list[dict[str, Any]], wrong: int) -> None:
        self._append(stream, "exact wrong", wrong, data)

    @precondition(lambda self: self.model.batches)
    @rule(
        pick=st.integers(0, 10**6),
        kind=st.sampled_from(KINDS),
        wrong=st.integers(-3, 3).filter(bool),
    )
    def re_append_a_batch(self, pick: int, kind: str, wrong: int) -> None:
        batch = self.model.batches[pick % len(self.model.batches)]
        expected = self._expected(batch.stream_id, kind, wrong)
        assert run(self.store.append(batch.stream_id, list(batch.events), expected)) == (
            batch.result
        )

    @precondition(lambda self: self.model.batches)
    @rule(
        pick=st.integers(0, 10**6),
        shape=st.sampled_from(
            ["old+new", "new+old", "prefix", "suffix", "reversed", "another stream", "two batches"]
        ),
    )
    def overlap_a_batch(self, pick: int, shape: str) -> None:
        batch = self.model.batches[pick % len(self.model.batches)]
        old = list(batch.events)
        fresh = [NewEvent("model.Fresh", {}, event_id=uuid.uuid4())]
        stream_id = batch.stream_id
        if shape == "old+new":
            events = [*old, *fresh]
        elif shape == "new+old":
            events = [*fresh, old[-1]]
        elif shape in ("prefix", "suffix", "reversed"):
            if len(old) < 2:
                return
            events = {"prefix": old[:-1], "suffix": old[1:], "reversed": old[::-1]}[shape]
        elif shape == "another stream":
            stream_id = next(s for s in self.stream_ids if s != batch.stream_id)
            events = old
        else:
            later = [
                b
                for b in self.model.batches
                if b.stream_id == batch.stream_id and b.result.version > batch.result.version
            ]
            if not later:
                return
            events = [*old, *later[0].events]
        with pytest.raises(DuplicateEventError) as caught:
            run(self.store.append(stream_id, events, ANY))
        assert caught.value.stream_id == stream_id
        self.check_versions()

    # -- reads ------------------------------------------------------------------

    @rule(stream=st.integers(0, 2), low=st.integers(1, 12), span=st.none() | st.integers(-2, 12))
    def read_a_range(self, stream: int, low: int, span: int | None) -> None:
        stream_id = self.stream_ids[stream]
        high = None if span is None else max(1, low + span)
        model = self.model.streams.get(stream_id, [])
        wanted = model[low - 1 : high]
        forward = run(_collect(self.store.read_stream(stream_id, low, high)))
        assert [e.event_id for e in forward] == [e.event_id for e in wanted]
        assert [e.version for e in forward] == list(range(low, low + len(wanted)))
        for recorded, sent in zip(forward, wanted, strict=True):
            assert (recorded.type, recorded.data, recorded.schema_version, recorded.metadata) == (
                sent.type,
                sent.data,
                sent.schema_version,
                sent.metadata,
            )
        backward = run(_collect(self.store.read_stream_backwards(stream_id, high, low)))
        assert backward == forward[::-1]

    @rule()
    def check_versions(self) -> None:
        for stream_id in self.stream_ids:
            assert run(self.store.stream_version(stream_id)) == self.model.version(stream_id)
        listed = run(_collect(self.store.list_streams(self.prefix)))
        assert [(s.stream_id, s.version) for s in listed] == sorted(
            (s, len(events)) for s, events in self.model.streams.items()
        )

    @precondition(lambda self: self.model.feed)
    @rule(pick=st.integers(0, 10**6), stream=st.integers(0, 2))
    def version_at_a_position(self, pick: int, stream: int) -> None:
        stream_id = self.stream_ids[stream]
        cut = self.model.feed[pick % len(self.model.feed)][3]
        expected = sum(1 for s, _, _, p in self.model.feed if s == stream_id and p <= cut)
        assert run(self.store.stream_version(stream_id, at_position=cut)) == expected

    @rule(pick=st.integers(0, 10**6), limit=st.none() | st.integers(0, 8))
    def read_the_feed(self, pick: int, limit: int | None) -> None:
        feed = self.model.feed
        start = pick % (len(feed) + 1)
        after = self.start if start == 0 else feed[start - 1][3]
        wanted = feed[start:] if limit is None else feed[start : start + limit]
        got: list[RecordedEvent] = run(_collect(self.store.read_all(after, limit)))
        assert [(e.stream_id, e.version, e.event_id, e.position) for e in got] == [
            (s, v, event.event_id, p) for s, v, event, p in wanted
        ]
        assert run(self.store.head()) == (feed[-1][3] if feed else self.start)


@pytest.fixture
def postgres_store(pg_dsn: str) -> Iterator[PostgresEventStore]:
    # One fresh schema per test; each run inside it uses fresh stream ids.
    store = run(
        PostgresEventStore.connect(pg_dsn, schema=f"t_{uuid.uuid4().hex[:12]}", pool_size=2)
    )
    yield store
    run(store.close())


def _machine(make: Callable[[], Awaitable[EventStore]]) -> type[StoreMachine]:
    return type("Machine", (StoreMachine,), {"make_store": staticmethod(make)})


def test_postgres_store_matches_the_model(postgres_store: PostgresEventStore) -> None:
    async def make() -> EventStore:
        return postgres_store

    run_state_machine_as_test(_machine(make), settings=settings(stateful_step_count=50))


def test_in_memory_store_matches_the_model() -> None:
    async def make() -> EventStore:
        return InMemoryEventStore()

    run_state_machine_as_test(_machine(make), settings=settings(stateful_step_count=50))
