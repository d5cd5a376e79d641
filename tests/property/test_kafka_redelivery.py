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
from datetime import UTC, datetime
from typing import ClassVar

import confluent_kafka
from hypothesis import given, note
from hypothesis import strategies as st

from eventstore import Event, RecordedEvent
from messaging import KafkaProjection, OffsetConflictError, encode_event
from messaging._redis_offsets import PartitionMove
from projections import Projection, RedisReadModel, RedisWrites

TOPIC, PARTITION = "notes", 0


class Counted(Event):
    event_type: ClassVar[str] = "test.Counted"
    n: int


COUNTS: Projection[RedisWrites] = Projection("counts", writes=RedisWrites)


@COUNTS.on(Counted)
def _counted(event: Counted, envelope: RecordedEvent, w: RedisWrites) -> None:
    w.rpush("applied", event.n)  # a list: twice applied shows twice, order shows too
    w.hincrby("sum", "total", event.n)


def messages(count: int) -> list[confluent_kafka.Message]:
    found = []
    for offset in range(count):
        event = RecordedEvent(
            "count-1", offset + 1, (1, offset + 1), uuid.uuid4(), "test.Counted", 1,
            {"n": offset}, {}, datetime.now(UTC),
        )  # fmt: skip
        record = encode_event(event, TOPIC, "tests")
        found.append(
            confluent_kafka.Message(
                topic=TOPIC,
                partition=PARTITION,
                offset=offset,
                key=record.key,
                value=record.value,
                headers=record.headers,
            )
        )
    return found


Step = tuple[str, int, int]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.integers(0, 1), st.integers(1, 6)),
        st.tuples(st.just("rewind"), st.integers(0, 1), st.integers(0, 30)),
        st.tuples(st.just("assign"), st.integers(0, 1), st.just(0)),
    ),
    max_size=25,
)


async def play(redis_url: str, count: int, steps: list[Step]) -> tuple[list[int], int]:
    prefix = f"kp{uuid.uuid4().hex[:8]}:"
    async with await RedisReadModel.connect(redis_url, prefix=prefix) as read_model:
        members = [KafkaProjection(COUNTS, read_model) for _ in range(2)]
        for member in members:
            await member.setup()
        feed = messages(count)
        positions = [0, 0]

        async def assign(m: int) -> None:
            start = (await members[m].starting_offsets([(TOPIC, PARTITION)]))[(TOPIC, PARTITION)]
            positions[m] = max(start, 0)  # OFFSET_BEGINNING is negative

        async def deliver(m: int, size: int) -> None:
            batch = feed[positions[m] : positions[m] + size]
            if batch:
                await members[m].process(batch)
                positions[m] += len(batch)

        for action, m, arg in steps:
            if action == "deliver":
                await deliver(m, arg)
            elif action == "rewind":
                positions[m] = min(positions[m], arg)
            else:
                await assign(m)
        # Whoever owns the partition in the end catches up.
        await assign(0)
        while positions[0] < count:
            await deliver(0, 5)
        view = await read_model.view(COUNTS.name)
        listed = [int(v) for v in await view.client.lrange(view.key("applied"), 0, -1)]
        total = int(await view.client.hget(view.key("sum"), "total") or 0)
        await read_model.drop_projection(COUNTS.name)
        return listed, total


@given(count=st.integers(0, 20), steps=STEPS)
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
            feed = messages(4)
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
