"""The Kafka-fed projection contract, on every read model: Redis and MongoDB.

One set of tests, run per backend (mongomock always, a real MongoDB when
``MONGO_URL`` is set): any interleaving of redeliveries applies each message
once, a stale member is fenced, a new version builds beside the live one and
swaps in when caught up.  Members are driven directly, with messages as the
relay encodes them, as the group loop drives them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import confluent_kafka
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from mongomock_motor import AsyncMongoMockClient
from support.kafka_members import (
    Counted,
    Step,
    counted_messages,
    play_redeliveries,
    redelivery_steps,
)

from eventstore import RecordedEvent
from messaging import KafkaProjection, OffsetConflictError
from messaging._redis_offsets import PartitionMove
from projections import (
    MongoReadModel,
    MongoWrites,
    Projection,
    ProjectionSupersededError,
    RedisReadModel,
    RedisWrites,
)

TOPIC = "kafka.contract"
MONGO_URL = os.environ.get("MONGO_URL")
BACKENDS = ["redis", "mongomock"] + (["mongodb"] if MONGO_URL else [])


@dataclass
class Backend:
    """A fresh read model of one kind, the projection written for it, and its reads."""

    #: ``connect(True)``: closed by the fixture; ``connect(False)``: by the caller
    #: (``release``), for a test that runs its own event loop.
    connect: Callable[[bool], Awaitable[Any]]
    release: Callable[[Any], Awaitable[None]]
    projection: Callable[[int], Projection[Any]]
    applied: Callable[[Any], Awaitable[list[int]]]
    total: Callable[[Any], Awaitable[int]]


def _redis_projection(version: int) -> Projection[RedisWrites]:
    projection: Projection[RedisWrites] = Projection("tally", writes=RedisWrites, version=version)

    @projection.on(Counted)
    def counted(event: Counted, envelope: RecordedEvent, w: RedisWrites) -> None:
        w.rpush(f"applied:{envelope.stream_id}", event.n)  # twice applied shows twice
        w.hincrby("tally", "total", event.n * (10 if version == 2 else 1))

    return projection


def _mongo_projection(version: int) -> Projection[MongoWrites]:
    projection: Projection[MongoWrites] = Projection("tally", writes=MongoWrites, version=version)

    @projection.on(Counted)
    def counted(event: Counted, envelope: RecordedEvent, w: MongoWrites) -> None:
        w.upsert("applied", envelope.stream_id, {"$push": {"n": event.n}})
        # One document fed by every partition: each partition keeps its own guard.
        w.upsert("tally", "total", {"$inc": {"total": event.n * (10 if version == 2 else 1)}})

    return projection


async def _redis_applied(model: RedisReadModel) -> list[int]:
    view = await model.view("tally")
    found: list[int] = []
    for partition in range(2):
        found += [
            int(v) for v in await view.client.lrange(view.key(f"applied:s-{partition}"), 0, -1)
        ]
    return found


async def _redis_total(model: RedisReadModel) -> int:
    view = await model.view("tally")
    return int(await view.client.hget(view.key("tally"), "total") or 0)


async def _mongo_applied(model: MongoReadModel) -> list[int]:
    view = await model.view("tally")
    found: list[int] = []
    for partition in range(2):
        doc = await view.collection("applied").find_one({"_id": f"s-{partition}"})
        found += list((doc or {}).get("n", []))
    return found


async def _mongo_total(model: MongoReadModel) -> int:
    view = await model.view("tally")
    doc = await view.collection("tally").find_one({"_id": "total"})
    return int((doc or {}).get("total", 0))


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Backend]:
    opened: list[Any] = []

    async def release(model: Any) -> None:
        await model.drop_projection("tally")
        if request.param == "mongodb":
            await model.client.drop_database(model.database.name)
        await model.close()

    async def connect(tracked: bool = True) -> Any:
        if request.param == "redis":
            model: Any = await RedisReadModel.connect(
                redis_url, prefix=f"kr{uuid.uuid4().hex[:8]}:"
            )
        elif request.param == "mongomock":
            model = MongoReadModel(
                AsyncMongoMockClient(), database=f"t{uuid.uuid4().hex[:10]}", bulk_writes=False
            )
        else:
            assert MONGO_URL is not None
            model = await MongoReadModel.connect(MONGO_URL, database=f"t{uuid.uuid4().hex[:10]}")
        if tracked:
            opened.append(model)
        return model

    if request.param == "redis":
        yield Backend(connect, release, _redis_projection, _redis_applied, _redis_total)
    else:
        yield Backend(connect, release, _mongo_projection, _mongo_applied, _mongo_total)
    for model in opened:
        await release(model)


def messages(partition: int, first: int, count: int) -> list[confluent_kafka.Message]:
    return counted_messages(TOPIC, partition, first, count)


async def member(backend: Backend, model: Any, version: int = 1) -> KafkaProjection:
    processor = KafkaProjection(backend.projection(version), model)
    await processor.setup()
    await processor.starting_offsets([(TOPIC, 0), (TOPIC, 1)])
    return processor


# -- redelivery -------------------------------------------------------------


async def play(backend: Backend, count: int, steps: list[Step]) -> tuple[list[int], int]:
    """Two members (a stale owner and a new one) get partition 0 the way Kafka hands it
    out: onward from where each was positioned, rewound by crashes, reassigned."""
    model = await backend.connect(False)
    try:
        return await _play(backend, model, count, steps)
    finally:
        await backend.release(model)


async def _play(
    backend: Backend, model: Any, count: int, steps: list[Step]
) -> tuple[list[int], int]:
    members = [await member(backend, model) for _ in range(2)]
    await play_redeliveries(members, messages(0, 0, count), steps, TOPIC, 0)
    return await backend.applied(model), await backend.total(model)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(count=st.integers(0, 15), steps=redelivery_steps(20))
def test_redeliveries_in_any_interleaving_apply_each_message_once(
    backend: Backend, count: int, steps: list[Step]
) -> None:
    note(f"steps: {steps}")
    applied, total = asyncio.run(play(backend, count, steps))
    assert applied == list(range(count))
    assert total == sum(range(count))


async def test_a_stale_member_is_fenced(backend: Backend) -> None:
    model = await backend.connect(True)
    stale, owner = await member(backend, model), await member(backend, model)
    await owner.process(messages(0, 0, 3))
    writes = model.new_writes("tally", stale.slot or "")
    with pytest.raises(OffsetConflictError):
        await stale.offsets.commit([PartitionMove(TOPIC, 0, None, 1)], writes, [])
    # process() re-reads the offset after a conflict: the redelivery is a no-op.
    await stale.process(messages(0, 0, 4))
    assert await backend.applied(model) == [0, 1, 2, 3]


# -- versions ---------------------------------------------------------------


async def test_a_new_version_builds_beside_the_live_one_and_swaps_when_caught_up(
    backend: Backend,
) -> None:
    model = await backend.connect(True)
    old = await member(backend, model, 1)
    assert not old.building  # the first version goes live at once
    await old.process(messages(0, 0, 4) + messages(1, 0, 3))
    live = sum(range(4)) + sum(range(3))
    assert await backend.total(model) == live

    new = await member(backend, model, 2)
    assert new.building and new.slot != old.slot
    await new.process(messages(0, 0, 4))
    await old.process(messages(1, 3, 2))  # the live version moves on meanwhile
    assert new.building and await backend.total(model) == live + 3 + 4
    await new.process(messages(1, 0, 5))
    assert not new.building
    assert (await model.meta("tally")).active == new.slot
    assert await backend.total(model) == 10 * (sum(range(4)) + sum(range(5)))

    with pytest.raises(ProjectionSupersededError):
        await old.process(messages(0, 4, 1))
    with pytest.raises(ProjectionSupersededError):
        await member(backend, model, 1)


async def test_without_transactions_a_lost_offsets_move_applies_nothing_twice(
    backend: Backend,
) -> None:
    """MongoDB without transactions writes the documents before it moves the offsets;
    a crash between the two leaves writes whose offsets did not move.  The documents'
    per-partition guard marks make the redelivered batch a no-op where it landed,
    also for a document that several partitions feed."""
    model = await backend.connect(True)
    if not isinstance(model, MongoReadModel) or await model.uses_transactions():
        pytest.skip("the Redis commit and a Mongo transaction are one step")
    processor = await member(backend, model)
    await processor.process(messages(0, 0, 3) + messages(1, 0, 2))
    saved = await processor.offsets.load()
    await processor.process(messages(0, 3, 2) + messages(1, 2, 2))
    # The crash: the second batch's offsets move is lost.
    offsets = model.database[f"{model.prefix}_projection_kafka"]
    await offsets.delete_one({"_id": f"tally/{processor.slot}"})
    restarted = await member(backend, model)
    assert await restarted.offsets.load() == {}
    await restarted.offsets.commit(
        [PartitionMove(TOPIC, p, None, saved[f"{TOPIC}:{p}"]) for p in (0, 1)],
        model.new_writes("tally", processor.slot or ""),
        [],
    )
    await restarted.starting_offsets([(TOPIC, 0), (TOPIC, 1)])
    await restarted.process(messages(0, 3, 3) + messages(1, 2, 3))
    assert sorted(await backend.applied(model)) == sorted([*range(6), *range(5)])
    assert await backend.total(model) == sum(range(6)) + sum(range(5))
