"""Any interleaving of redeliveries of a partition's messages, to any of its
members, leaves a Kafka-fed read model as if each message was applied once.

Two members of a group (a stale owner and a new one) receive the partition's
messages the way Kafka hands them out: from where each was last positioned,
onward, in order.  A member may be rewound to an earlier offset (a crash before
the group commit, a restart from an older commit) or be (re)assigned, when it
starts from the offset the read model holds.  Real Redis, real messages.
"""

from __future__ import annotations

import asyncio
import uuid

from hypothesis import given, note
from hypothesis import strategies as st
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
from projections import Projection, RedisReadModel, RedisWrites

TOPIC, PARTITION = "notes", 0

COUNTS: Projection[RedisWrites] = Projection("counts", writes=RedisWrites)


@COUNTS.on(Counted)
def _counted(event: Counted, envelope: RecordedEvent, w: RedisWrites) -> None:
    w.rpush("applied", event.n)  # a list: twice applied shows twice, order shows too
    w.hincrby("sum", "total", event.n)


async def play(redis_url: str, count: int, steps: list[Step]) -> tuple[list[int], int]:
    prefix = f"kp{uuid.uuid4().hex[:8]}:"
    async with await RedisReadModel.connect(redis_url, prefix=prefix) as read_model:
        members = [KafkaProjection(COUNTS, read_model) for _ in range(2)]
        for member in members:
            await member.setup()
        feed = counted_messages(TOPIC, PARTITION, 0, count, "count-1")
        await play_redeliveries(members, feed, steps, TOPIC, PARTITION)
        view = await read_model.view(COUNTS.name)
        listed = [int(v) for v in await view.client.lrange(view.key("applied"), 0, -1)]
        total = int(await view.client.hget(view.key("sum"), "total") or 0)
        await read_model.drop_projection(COUNTS.name)
        return listed, total


@given(count=st.integers(0, 20), steps=redelivery_steps(25))
def test_redeliveries_in_any_interleaving_apply_each_message_once(
    redis_url: str, count: int, steps: list[Step]
) -> None:
    note(f"steps: {steps}")
    listed, total = asyncio.run(play(redis_url, count, steps))
    assert listed == list(range(count))
    assert total == sum(range(count))


def test_a_stale_member_cannot_commit_over_the_new_owner(redis_url: str) -> None:
    """The fence itself: a member whose offset is behind the read model's gets a
    conflict from the commit, not a silent double apply (``process`` then re-reads)."""

    async def scenario() -> None:
        prefix = f"kp{uuid.uuid4().hex[:8]}:"
        async with await RedisReadModel.connect(redis_url, prefix=prefix) as read_model:
            stale, owner = KafkaProjection(COUNTS, read_model), KafkaProjection(COUNTS, read_model)
            for member in (stale, owner):
                await member.setup()
                await member.starting_offsets([(TOPIC, PARTITION)])
            feed = counted_messages(TOPIC, PARTITION, 0, 4, "count-1")
            await owner.process(feed[:3])
            writes = read_model.new_writes(COUNTS.name, stale.slot or "")
            writes.rpush("applied", 99)
            # The stale member still believes nothing was applied (expected: none).
            try:
                await stale.offsets.commit([PartitionMove(TOPIC, PARTITION, None, 1)], writes, [])
            except OffsetConflictError as conflict:
                assert (conflict.expected, conflict.found) == (-1, 3)
            else:
                raise AssertionError("the stale commit was not fenced")
            view = await read_model.view(COUNTS.name)
            assert await view.client.lrange(view.key("applied"), 0, -1) == ["0", "1", "2"]
            await read_model.drop_projection(COUNTS.name)

    asyncio.run(scenario())
