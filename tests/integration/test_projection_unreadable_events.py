"""A stored event the store cannot decode must not stop a projection's feed for good.

Rows nested deeper than the decoder allows were accepted before the nesting limit;
the runner used to restart on them forever.  Now it parks them and moves on.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
import redis.asyncio as aioredis
from support.projection_runs import run_until_caught_up
from support.raw_rows import deep_json, insert_raw

from eventstore import Event, PostgresEventStore, RecordedEvent
from projections import (
    Phase,
    PoisonPolicy,
    Projection,
    ProjectionRunner,
    RedisReadModel,
    RedisWrites,
    RunnerOptions,
    StoreFeedSource,
    list_dead_letters,
    replay_dead_letters,
)

FAST = RunnerOptions(batch_size=4, idle_timeout=0.02, standby_poll=0.02)


class Noted(Event):
    event_type: ClassVar[str] = "un.Noted"
    n: int


def noting(name: str, policy: PoisonPolicy = PoisonPolicy.PARK) -> Projection[RedisWrites]:
    projection = Projection(name, writes=RedisWrites, on_poison=policy)

    @projection.on(Noted)
    def noted(event: Noted, envelope: RecordedEvent, w: RedisWrites) -> None:
        w.rpush("seen", str(event.n))

    return projection


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis_client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield redis_client
    await redis_client.aclose()


async def seen(read_model: RedisReadModel, name: str) -> list[str]:
    view = await read_model.view(name)
    return list(await view.client.lrange(view.key("seen"), 0, -1))


async def test_an_unreadable_event_is_parked_and_the_feed_moves_on(
    make_pg_store: Any, client: aioredis.Redis
) -> None:
    store: PostgresEventStore = await make_pg_store()
    for n in range(1, 6):
        await store.append("noted-a", [Noted(n=n)])
    bad = await insert_raw(store, "noted-deep", 1, deep_json(5_000), "un.Noted")
    for n in range(6, 11):
        await store.append("noted-b", [Noted(n=n)])
    read_model = RedisReadModel(client, prefix=f"un{uuid.uuid4().hex[:8]}:")
    projection = noting("unreadable")
    runner = ProjectionRunner(StoreFeedSource(store), [(projection, read_model)], options=FAST)

    await run_until_caught_up(runner, store)

    state = runner.states["unreadable"]
    assert state.restarts == 0
    assert await seen(read_model, "unreadable") == [str(n) for n in range(1, 11)]
    [letter] = await list_dead_letters(read_model, "unreadable")
    assert letter.position == bad and letter.unreadable
    assert (letter.stream_id, letter.version, letter.event_type) == ("noted-deep", 1, "un.Noted")
    assert letter.error_type.endswith("UnreadableEventError")
    assert "cannot be decoded" in letter.error and "noted-deep" in letter.error
    # Nothing to replay it with: it stays parked, reported as failed.
    result = await replay_dead_letters(projection, read_model)
    assert result.replayed == [] and [d.position for d in result.failed] == [bad]
    assert len(await list_dead_letters(read_model, "unreadable")) == 1


async def test_a_stop_policy_stops_at_an_unreadable_event(
    make_pg_store: Any, client: aioredis.Redis
) -> None:
    store: PostgresEventStore = await make_pg_store()
    await store.append("noted-a", [Noted(n=1), Noted(n=2)])
    bad = await insert_raw(store, "noted-deep", 1, deep_json(5_000), "un.Noted")
    await store.append("noted-b", [Noted(n=3)])
    read_model = RedisReadModel(client, prefix=f"un{uuid.uuid4().hex[:8]}:")
    runner = ProjectionRunner(
        StoreFeedSource(store),
        [(noting("strict", PoisonPolicy.STOP), read_model)],
        options=FAST,
    )
    await asyncio.wait_for(runner.run(asyncio.Event()), 60)
    state = runner.states["strict"]
    assert state.phase is Phase.STOPPED and state.restarts == 0
    assert str(bad) in (state.error or "")
    [letter] = await list_dead_letters(read_model, "strict")
    assert letter.blocking and letter.position == bad
