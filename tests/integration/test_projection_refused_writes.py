"""Writes Redis refuses after the rest of their batch landed, on the in-memory store
and real Redis: the event is parked even when parking it fails or the process dies
right after the commit, and its dead letter, being partial, is not replayed by
default (its other writes would apply twice)."""

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
    CommitBatch,
    DeadLetter,
    FailedWrite,
    LocalLocks,
    PartialDeadLetterError,
    PendingFailures,
    Projection,
    ProjectionRunner,
    ReadModelError,
    RedisReadModel,
    RedisWrites,
    RetryPolicy,
    RunnerOptions,
    StoreFeedSource,
    list_dead_letters,
    replay_dead_letters,
)

OPTIONS = RunnerOptions(batch_size=10, idle_timeout=0.02, restart_delay=0.01)
NAME = "paid"


class Paid(Event):
    event_type: ClassVar[str] = "refused.Paid"
    amount: int


class Crash(BaseException):
    """A process dying: not an Exception, so nothing in the runner handles it."""


def paid() -> Projection[RedisWrites]:
    projection = Projection(NAME, writes=RedisWrites, retry=RetryPolicy(attempts=1))

    @projection.on(Paid)
    def on_paid(event: Paid, envelope: RecordedEvent, w: RedisWrites) -> None:
        w.incrby("total", event.amount)  # lands
        w.incrby(f"by_stream:{envelope.stream_id}", event.amount)  # refused for "bad"

    return projection


class FailingPark(RedisReadModel):
    """Whatever stores the dead letters of refused writes fails once (a Redis blip)."""

    failures = 1

    def _blip(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ReadModelError(NAME, "Redis failed: Connection reset by peer (simulated)")

    async def park(self, name: str, slot: str, dead_letters: list[DeadLetter]) -> None:
        self._blip()
        await super().park(name, slot, dead_letters)

    async def settle(
        self, name: str, slot: str, pending: PendingFailures, dead_letters: list[DeadLetter]
    ) -> None:
        self._blip()
        await super().settle(name, slot, pending, dead_letters)


class DiesAfterCommit(RedisReadModel):
    """The process dies once a commit with refused writes returned."""

    async def commit(
        self, name: str, slot: str, batch: CommitBatch[RedisWrites], *, require_active: bool
    ) -> list[FailedWrite]:
        failed = await super().commit(name, slot, batch, require_active=require_active)
        if failed:
            raise Crash
        return failed


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis_client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield redis_client
    await redis_client.aclose()


async def prepared(model: RedisReadModel) -> InMemoryEventStore:
    """A store of three payments; the "bad" stream's key holds a string already."""
    info = await model.create_slot(NAME, 1)
    assert await model.activate(NAME, info.slot)
    await model.client.set(model.namespace(NAME, info.slot) + "by_stream:bad", "oops")
    store = InMemoryEventStore()
    for stream, amount in [("good", 1), ("bad", 10), ("good", 100)]:
        await store.append(stream, [Paid(amount=amount)])
    return store


async def run_to_head(store: InMemoryEventStore, model: RedisReadModel) -> ProjectionRunner:
    runner = ProjectionRunner(
        StoreFeedSource(store), [(paid(), model)], locks=LocalLocks(), options=OPTIONS
    )
    await run_until_caught_up(runner, store, names=[NAME])
    return runner


async def total(model: RedisReadModel) -> str | None:
    view = await model.view(NAME)
    value = await model.client.get(view.key("total"))
    return None if value is None else str(value)


async def assert_parked_once(model: RedisReadModel, store: InMemoryEventStore) -> DeadLetter:
    [letter] = await list_dead_letters(model, NAME)
    assert letter.stream_id == "bad" and letter.partial and not letter.blocking
    assert "WRONGTYPE" in letter.error or "not an integer" in letter.error
    assert await model.checkpoint(NAME) == await store.head()
    assert await model.pending_failures(NAME, letter.slot) is None
    assert await total(model) == "111"
    return letter


async def test_an_event_is_parked_when_parking_it_fails_once(client: aioredis.Redis) -> None:
    model = FailingPark(client, prefix=f"rw{uuid.uuid4().hex[:10]}:")
    store = await prepared(model)
    runner = await run_to_head(store, model)
    assert model.failures == 0  # the blip happened
    assert runner.states[NAME].restarts == 1
    await assert_parked_once(model, store)


async def test_an_event_is_parked_when_the_process_dies_after_the_commit(
    client: aioredis.Redis,
) -> None:
    prefix = f"rw{uuid.uuid4().hex[:10]}:"
    dying = DiesAfterCommit(client, prefix=prefix)
    store = await prepared(dying)
    runner = ProjectionRunner(
        StoreFeedSource(store), [(paid(), dying)], locks=LocalLocks(), options=OPTIONS
    )
    with pytest.raises(Crash):
        await asyncio.wait_for(runner.run(asyncio.Event()), 60)
    # The checkpoint is past the event already; a new process must still park it.
    model = RedisReadModel(client, prefix=prefix)
    assert await model.checkpoint(NAME) == await store.head()
    await run_to_head(store, model)
    await assert_parked_once(model, store)


async def test_a_partial_dead_letter_is_not_replayed_unless_forced(
    client: aioredis.Redis,
) -> None:
    model = RedisReadModel(client, prefix=f"rw{uuid.uuid4().hex[:10]}:")
    store = await prepared(model)
    await run_to_head(store, model)
    letter = await assert_parked_once(model, store)
    await client.delete(model.namespace(NAME, letter.slot) + "by_stream:bad")  # the fix

    with pytest.raises(PartialDeadLetterError) as refused:
        await replay_dead_letters(paid(), model)
    assert refused.value.projection == NAME and refused.value.position == letter.position
    assert str(letter.position) in str(refused.value) and "rebuild" in str(refused.value)
    with pytest.raises(PartialDeadLetterError):
        await replay_dead_letters(paid(), model, positions=[letter.position])
    assert await total(model) == "111"  # nothing applied
    assert await list_dead_letters(model, NAME) == [letter]

    result = await replay_dead_letters(paid(), model, force=True)
    assert result.replayed == [letter.position] and result.failed == []
    assert await list_dead_letters(model, NAME) == []
    # Forced, as documented: the write that had landed lands a second time.
    assert await total(model) == "121"
    view = await model.view(NAME)
    assert await client.get(view.key("by_stream:bad")) == "10"


def paid_or_poison() -> Projection[RedisWrites]:
    """Adds each payment to the total; an amount of 13 is poison (parked)."""
    projection = Projection("batch", writes=RedisWrites, retry=RetryPolicy(attempts=1))

    @projection.on(Paid)
    def on_paid(event: Paid, envelope: RecordedEvent, w: RedisWrites) -> None:
        if event.amount == 13:
            raise ValueError("13 is unlucky")
        w.incrby("total", event.amount)
        w.rpush("log", str(envelope.position))

    return projection


class BreaksDeadLettersOnce(RedisReadModel):
    """During one commit that parks an event, the dead-letter hash is not a hash
    (another writer's mistake, repaired right after): the commit script fails after
    the batch's first writes unless it checks before writing."""

    breaks = 1

    async def commit(
        self, name: str, slot: str, batch: CommitBatch[RedisWrites], *, require_active: bool
    ) -> list[FailedWrite]:
        if not (batch.dead_letters and self.breaks):
            return await super().commit(name, slot, batch, require_active=require_active)
        self.breaks -= 1
        dead_key = self._dead_key(name, slot)
        await self.client.set(dead_key, "not a hash")
        try:
            return await super().commit(name, slot, batch, require_active=require_active)
        finally:
            await self.client.delete(dead_key)


async def test_a_commit_that_fails_mid_batch_applies_nothing_then_all_once(
    client: aioredis.Redis,
) -> None:
    # It used to fail after the good events' writes, and the runner re-ran the batch
    # event by event from the old checkpoint, applying those writes a second time.
    model = BreaksDeadLettersOnce(client, prefix=f"rw{uuid.uuid4().hex[:10]}:")
    store = InMemoryEventStore()
    for amount in (1, 13, 100):
        await store.append(f"pay-{amount}", [Paid(amount=amount)])
    runner = ProjectionRunner(
        StoreFeedSource(store), [(paid_or_poison(), model)], locks=LocalLocks(), options=OPTIONS
    )
    await run_until_caught_up(runner, store, names=["batch"])
    assert model.breaks == 0  # the failure was injected
    view = await model.view("batch")
    events = [e async for e in store.read_all()]
    assert await client.lrange(view.key("log"), 0, -1) == [
        str(events[0].position),
        str(events[2].position),
    ]
    assert await client.get(view.key("total")) == "101"
    # The failed commit, as a whole, then a clean retry from the same checkpoint.
    assert runner.states["batch"].restarts == 1
    assert await model.checkpoint("batch") == events[2].position
    [letter] = await list_dead_letters(model, "batch")
    assert letter.position == events[1].position and not letter.partial
