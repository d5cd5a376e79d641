"""The projection API without servers: definitions, slot choice, batches, dead letters."""

from __future__ import annotations

import pickle
import types
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

import projections
from eventstore import START, Event, EventCodec, NewEvent, Position, RecordedEvent
from projections import (
    DeadLetter,
    MongoWrites,
    PoisonPolicy,
    Projection,
    ProjectionDefinitionError,
    ProjectionMeta,
    ProjectionSupersededError,
    RedisWrites,
    RetryPolicy,
    SlotInfo,
    SlotState,
    diff_snapshots,
)
from projections._apply import apply_batch
from projections._slots import SlotChoice, choose_slot, position_key
from upcasters import UpcasterChain


class Added(Event):
    event_type: ClassVar[str] = "unit.Added"
    n: int


class Counted(Event):
    """At schema v2; stored v1 events are ``{count: "<digits>"}``."""

    event_type: ClassVar[str] = "unit.Counted"
    event_version: ClassVar[int] = 2
    n: int


class Other(Event):
    event_type: ClassVar[str] = "unit.Other"


def recorded(n: int, event: Event | NewEvent, *, stream: str = "s-1") -> RecordedEvent:
    new = event if isinstance(event, NewEvent) else event.to_new_event()
    return RecordedEvent(
        stream_id=stream,
        version=n,
        position=Position(100 + n, n),
        event_id=uuid.uuid4(),
        type=new.type,
        schema_version=new.schema_version,
        data=dict(new.data),
        metadata={},
        recorded_at=datetime.now(UTC),
    )


def test_the_public_api_is_exactly_all() -> None:
    exported = {
        name
        for name, value in vars(projections).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert exported == set(projections.__all__)
    assert projections.__all__ == sorted(projections.__all__)


@pytest.mark.parametrize("name", ["", "has space", "_private", "a.b", "a:b", "x" * 101, 7])
def test_bad_projection_names_are_refused(name: Any) -> None:
    with pytest.raises(ProjectionDefinitionError):
        Projection(name, writes=RedisWrites)


def test_bad_definitions_are_refused() -> None:
    with pytest.raises(ProjectionDefinitionError, match="version"):
        Projection("p", writes=RedisWrites, version=0)
    with pytest.raises(ProjectionDefinitionError, match="Writes"):
        Projection("p", writes=dict)  # type: ignore[type-var]
    with pytest.raises(ProjectionDefinitionError, match="on_poison"):
        Projection("p", writes=RedisWrites, on_poison="ignore")
    p = Projection("p", writes=RedisWrites)
    p.on(Added)(lambda e, env, w: None)
    with pytest.raises(ProjectionDefinitionError, match="two handlers"):
        p.on(Added)(lambda e, env, w: None)
    shared = Projection("q", writes=RedisWrites, codec=EventCodec([Other]))
    with pytest.raises(ProjectionDefinitionError, match="not registered"):
        shared.on(Added)(lambda e, env, w: None)


def slot(name: str, version: int, generation: int, state: SlotState) -> SlotInfo:
    return SlotInfo(f"v{version}g{generation}", version, generation, state, START)


def test_slot_choice() -> None:
    empty = ProjectionMeta("p")
    assert choose_slot(empty, 1) == (SlotChoice.CREATE, None)
    live = slot("p", 1, 1, SlotState.ACTIVE)
    meta = ProjectionMeta("p", "v1g1", {"v1g1": live})
    assert choose_slot(meta, 1) == (SlotChoice.LIVE, live)
    assert choose_slot(meta, 2) == (SlotChoice.CREATE, None)
    building = slot("p", 2, 3, SlotState.BUILDING)
    meta.slots["v2g3"] = building
    meta.slots["v2g1"] = slot("p", 2, 1, SlotState.ABANDONED)
    assert choose_slot(meta, 2) == (SlotChoice.BUILD, building)
    with pytest.raises(ProjectionSupersededError):
        choose_slot(ProjectionMeta("p", "v2g3", {"v2g3": building}), 1)


positions = st.builds(Position, st.integers(0, 2**62), st.integers(0, 2**62))


@given(a=positions, b=positions)
def test_position_keys_sort_like_positions(a: Position, b: Position) -> None:
    assert (position_key(a) < position_key(b)) == (a < b)
    assert Position.parse(position_key(a)) == a


def test_retry_delays_grow_and_are_capped() -> None:
    policy = RetryPolicy(attempts=5, initial_delay=0.1, max_delay=0.3, multiplier=2)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.3, 0.3]
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def counting(
    fail_on: set[int], *, policy: PoisonPolicy = PoisonPolicy.PARK
) -> Projection[RedisWrites]:
    p = Projection(
        "counting",
        writes=RedisWrites,
        on_poison=policy,
        retry=RetryPolicy(attempts=3, initial_delay=0.01),
    )

    @p.on(Added)
    def added(event: Added, envelope: RecordedEvent, w: RedisWrites) -> None:
        w.incrby("count", event.n)
        if event.n in fail_on:
            raise ValueError(f"no {event.n}")

    return p


async def test_a_failing_event_is_retried_then_parked_and_the_batch_goes_on() -> None:
    events = [recorded(n, Added(n=n)) for n in (1, 2, 3)]
    sleeps = Sleeps()
    writes = RedisWrites("ns:")
    batch = await apply_batch(counting({2}), "v1g1", writes, events, START, sleep=sleeps)
    assert sleeps.calls == [0.01, 0.02]
    assert [c[2] for c in writes.commands] == [1, 3]
    assert batch.position == events[-1].position and batch.events == 3
    [letter] = batch.dead_letters
    assert letter.position == events[1].position and letter.attempts == 3
    assert letter.error == "no 2" and "ValueError" in letter.traceback
    assert not letter.blocking and batch.stopped is None


async def test_a_stop_policy_ends_the_batch_before_the_poison_event() -> None:
    events = [recorded(n, Added(n=n)) for n in (1, 2, 3)]
    writes = RedisWrites("ns:")
    p = counting({2}, policy=PoisonPolicy.STOP)
    batch = await apply_batch(p, "v1g1", writes, events, START, sleep=Sleeps())
    assert batch.position == events[0].position and batch.events == 1
    assert batch.stopped is not None and batch.stopped.blocking
    assert batch.stopped.checkpoint_before == events[0].position
    assert [c[2] for c in writes.commands] == [1]


async def test_decode_failures_are_parked_too() -> None:
    chain = UpcasterChain()

    @chain.upcaster("unit.Counted", from_version=1)
    def v1(data: dict[str, Any]) -> dict[str, Any]:
        return {"n": int(data["count"])}

    p = Projection("decoding", writes=RedisWrites, codec=EventCodec([Counted, Other], chain))
    p.on(Counted)(lambda event, envelope, w: w.incrby("count", event.n))
    events = [
        recorded(1, NewEvent("unit.Counted", {"count": "5"}, schema_version=1)),  # upcast
        recorded(2, NewEvent("unit.Counted", {"count": "x"}, schema_version=1)),  # upcast fails
        recorded(3, NewEvent("unit.Counted", {"n": "many"}, schema_version=2)),  # invalid
        recorded(4, NewEvent("unit.Counted", {"n": 1}, schema_version=3)),  # from the future
        recorded(5, Other()),  # not handled: skipped, no letter
        recorded(6, NewEvent("unit.Unknown", {})),  # unknown and not handled: skipped
    ]
    writes = RedisWrites("ns:")
    batch = await apply_batch(p, "v1g1", writes, events, START, sleep=Sleeps())
    assert [c[2] for c in writes.commands] == [5]
    assert [d.position for d in batch.dead_letters] == [e.position for e in events[1:4]]
    assert {d.error_type.rsplit(".", 1)[1] for d in batch.dead_letters} == {
        "UpcastError",
        "EventValidationError",
    }
    assert batch.position == events[-1].position and batch.events == 6


async def test_async_handlers_get_the_upcast_envelope_and_resolve_blocking_letters() -> None:
    seen: list[tuple[str, int]] = []
    chain = UpcasterChain()
    chain.upcaster("unit.Counted", from_version=1)(lambda data: {"n": int(data["count"])})
    p = Projection("async", writes=MongoWrites, codec=EventCodec([Counted], chain))

    @p.on(Counted)
    async def counted(event: Counted, envelope: RecordedEvent, w: MongoWrites) -> None:
        seen.append((envelope.type, envelope.schema_version))
        w.upsert("c", envelope.stream_id, {"$inc": {"n": event.n}})

    events = [
        recorded(1, NewEvent("unit.Counted", {"count": "5"}, schema_version=1)),
        recorded(2, Counted(n=2)),
    ]
    batch = await apply_batch(
        p, "v1g1", MongoWrites("ns."), events, START, blocking={events[1].position}
    )
    assert seen == [("unit.Counted", 2), ("unit.Counted", 2)]
    assert batch.resolved == [events[1].position]


dead_letters = st.builds(
    DeadLetter,
    projection=st.just("p"),
    slot=st.just("v1g1"),
    position=positions,
    event=st.builds(
        recorded,
        st.integers(1, 1000),
        st.builds(Added, n=st.integers(-(2**40), 2**40)),
        stream=st.text(min_size=1, max_size=20),
    ),
    error_type=st.text(max_size=30),
    error=st.text(max_size=50),
    traceback=st.text(max_size=100),
    attempts=st.integers(1, 10),
    failed_at=st.datetimes(timezones=st.just(UTC)),
    blocking=st.booleans(),
    checkpoint_before=st.none() | positions,
    replays=st.integers(0, 5),
    partial=st.booleans(),
)


@given(letter=dead_letters)
def test_dead_letters_round_trip_through_json(letter: DeadLetter) -> None:
    assert DeadLetter.from_json(letter.to_json()) == letter


@given(letter=dead_letters)
def test_dead_letters_stored_before_the_partial_flag_read_as_not_partial(
    letter: DeadLetter,
) -> None:
    record = letter.to_record()
    del record["partial"]
    assert DeadLetter.from_record(record).partial is False


def test_mongo_writes_refuse_what_a_guard_cannot_protect() -> None:
    writes = MongoWrites("ns.")
    with pytest.raises(RuntimeError):
        writes.upsert("c", 1, {"$set": {"a": 1}})
    writes.begin_event(0, Position(1, 1))
    with pytest.raises(ValueError, match="operators"):
        writes.upsert("c", 1, {"a": 1})
    with pytest.raises(ValueError, match="own fields"):
        writes.upsert("c", 1, {"$set": {"_last_position": "x"}})
    with pytest.raises(ValueError, match="collection"):
        writes.upsert("bad.name", 1, {"$set": {"a": 1}})
    with pytest.raises(ValueError, match="upsert"):
        writes.replace("c", 1, {"$set": 1})


def test_diff_snapshots() -> None:
    left = {"a": 1, "b": {"x": 1}, "c": [1]}
    right = {"b": {"x": 2}, "c": [1], "d": 0}
    assert diff_snapshots(left, right) == ({"a": 1}, {"d": 0}, {"b": ({"x": 1}, {"x": 2})})


@pytest.mark.parametrize(
    "error",
    [
        projections.ProjectionError("p", "why"),
        projections.ProjectionDefinitionError("p", "why"),
        projections.ProjectionNotReadyError("p", "why"),
        projections.ProjectionStoppedError("p", "why", Position(1, 2)),
        projections.ProjectionSupersededError("p", 1, 2),
        projections.CheckpointConflictError("p", "v1g1", Position(1, 2), None),
        projections.SlotNotActiveError("p", "v1g1", "v1g2"),
        projections.ReadModelError("p", "why"),
        projections.WriteRejectedError("p", "why", 3),
        projections.DeadLetterNotFoundError("p", Position(1, 2)),
    ],
)
def test_errors_name_their_projection_and_survive_pickling(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
    assert "'p'" in str(error)
    assert isinstance(error, projections.ProjectionError)
