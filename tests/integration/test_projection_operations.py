"""Operations around the runner, on the in-memory store and real Redis: in-process
locks, writes the read model refuses, rebuilding from a position, status of every
projection, and dropping retired slots."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
import redis.asyncio as aioredis
from support.projection_runs import run_until_caught_up

from eventstore import Event, InMemoryEventStore, RecordedEvent
from projections import (
    LocalLocks,
    MongoWrites,
    Projection,
    ProjectionDefinitionError,
    ProjectionRunner,
    RedisReadModel,
    RedisScript,
    RedisWrites,
    RetryPolicy,
    RunnerOptions,
    StoreFeedSource,
    drop_inactive_slots,
    list_dead_letters,
    rebuild,
    status_all,
)

OPTIONS = RunnerOptions(batch_size=4, idle_timeout=0.02, standby_poll=0.02)
BROKEN = RedisScript("this does not compile (")


class Noted(Event):
    event_type: ClassVar[str] = "ops.Noted"
    text: str


@pytest.fixture
async def read_model(redis_url: str) -> AsyncIterator[RedisReadModel]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield RedisReadModel(client, prefix=f"ops{uuid.uuid4().hex[:10]}:")
    await client.aclose()


def notes(name: str = "notes") -> Projection[RedisWrites]:
    projection = Projection(
        name, writes=RedisWrites, retry=RetryPolicy(attempts=1, initial_delay=0)
    )

    @projection.on(Noted)
    def noted(event: Noted, envelope: RecordedEvent, w: RedisWrites) -> None:
        if event.text == "broken-script":
            w.script(BROKEN, ["x"])
        elif event.text == "wrong-type":
            w.incrby("list", 1)  # "list" is a list: Redis refuses it inside the commit
        else:
            w.rpush("list", event.text)

    return projection


async def run_to_head(
    store: InMemoryEventStore, targets: list[tuple[Projection[RedisWrites], RedisReadModel]]
) -> ProjectionRunner:
    runner = ProjectionRunner(StoreFeedSource(store), targets, locks=LocalLocks(), options=OPTIONS)
    await run_until_caught_up(runner, store)
    return runner


async def listed(read_model: RedisReadModel, name: str = "notes") -> list[str]:
    view = await read_model.view(name)
    return list(await view.client.lrange(view.key("list"), 0, -1))


async def test_refused_writes_park_their_event_and_the_rest_applies(
    read_model: RedisReadModel,
) -> None:
    store = InMemoryEventStore()
    texts = ["a", "b", "broken-script", "c", "wrong-type", "d"]
    for text in texts:
        await store.append(f"note-{uuid.uuid4().hex[:6]}", [Noted(text=text)])
    await run_to_head(store, [(notes(), read_model)])
    assert await listed(read_model) == ["a", "b", "c", "d"]
    letters = await list_dead_letters(read_model, "notes")
    assert [d.event.data["text"] for d in letters] == ["broken-script", "wrong-type"]
    assert "WRONGTYPE" in letters[1].error


async def test_two_runners_in_one_process_share_in_process_locks(
    read_model: RedisReadModel,
) -> None:
    store = InMemoryEventStore()
    await store.append("note-1", [Noted(text="x")])
    locks = LocalLocks()
    first = ProjectionRunner(
        StoreFeedSource(store), [(notes(), read_model)], locks=locks, options=OPTIONS
    )
    second = ProjectionRunner(
        StoreFeedSource(store), [(notes(), read_model)], locks=locks, options=OPTIONS
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in (first, second)]

    async def one_leads() -> None:
        while True:
            phases = sorted(r.states["notes"].phase.value for r in (first, second))
            if phases == ["live", "standby"]:
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(one_leads(), 60)
    stop.set()
    await asyncio.gather(*tasks)
    assert await listed(read_model) == ["x"]


async def test_a_rebuild_from_a_position_skips_what_came_before(
    read_model: RedisReadModel,
) -> None:
    store = InMemoryEventStore()
    for text in "abcdef":
        await store.append("note-1", [Noted(text=text)])
    projection = notes()
    await run_to_head(store, [(projection, read_model)])
    events = [e async for e in store.read_all()]
    result = await rebuild(
        projection, read_model, StoreFeedSource(store), from_position=events[2].position
    )
    assert result.previous_slot == "v1g1" and result.slot == "v1g2"
    assert await listed(read_model) == ["d", "e", "f"]
    assert await drop_inactive_slots(read_model, "notes") == ["v1g1"]
    assert await read_model.snapshot("notes", "v1g1") == {}


async def test_status_of_every_projection(read_model: RedisReadModel) -> None:
    store = InMemoryEventStore()
    await store.append("note-1", [Noted(text="a"), Noted(text="wrong-type")])
    await run_to_head(store, [(notes("first"), read_model), (notes("second"), read_model)])
    await store.append("note-1", [Noted(text="later")])
    reports = await status_all(read_model, store)
    assert [r.name for r in reports] == ["first", "second"]
    for report in reports:
        assert report.active and report.slot == "v1g1"
        assert report.lag_events == 1 and report.dead_letters == 1
        assert report.held_back_by is None


async def test_a_projection_for_another_read_model_is_refused(read_model: RedisReadModel) -> None:
    wrong = Projection("mongo-shaped", writes=MongoWrites)
    with pytest.raises(ProjectionDefinitionError, match="MongoWrites"):
        ProjectionRunner(StoreFeedSource(InMemoryEventStore()), [(wrong, read_model)])
