"""A new version of a Kafka-fed projection is built beside the live one and swapped in.

Real Redis, messages as the relay encodes them, members driven directly (as the
group loop drives them).  Readers keep the complete old version while the new one
builds; the swap happens once the build has applied every partition at least as
far as the live version; the old version's members then stop writing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import ClassVar

import confluent_kafka
import pytest
from support.kafka_members import counted_messages

from eventstore import Event, RecordedEvent
from messaging import KafkaProjection
from projections import Projection, ProjectionSupersededError, RedisReadModel, RedisWrites

TOPIC = "versions"


class Counted(Event):
    event_type: ClassVar[str] = "test.Counted"
    n: int


def _projection(version: int) -> Projection[RedisWrites]:
    projection: Projection[RedisWrites] = Projection("tally", writes=RedisWrites, version=version)

    @projection.on(Counted)
    def counted(event: Counted, envelope: RecordedEvent, w: RedisWrites) -> None:
        # Version 2 counts in tens: which version a reader sees shows in the value.
        w.hincrby("tally", "total", event.n * (10 if version == 2 else 1))

    return projection


def _messages(
    partition: int, first: int, count: int, topic: str = TOPIC
) -> list[confluent_kafka.Message]:
    return counted_messages(topic, partition, first, count, n=1)


@pytest.fixture
async def read_model(redis_url: str) -> AsyncIterator[RedisReadModel]:
    model = await RedisReadModel.connect(redis_url, prefix=f"kv{uuid.uuid4().hex[:8]}:")
    yield model
    await model.drop_projection("tally")
    await model.close()


async def _member(read_model: RedisReadModel, version: int) -> KafkaProjection:
    member = KafkaProjection(_projection(version), read_model)
    await member.setup()
    await member.starting_offsets([(TOPIC, 0), (TOPIC, 1)])
    return member


async def _total(read_model: RedisReadModel) -> int:
    view = await read_model.view("tally")
    return int(await view.client.hget(view.key("tally"), "total") or 0)


async def test_a_new_version_builds_in_a_shadow_slot_and_swaps_when_caught_up(
    read_model: RedisReadModel,
) -> None:
    old = await _member(read_model, 1)
    assert not old.building  # the first version goes live at once
    await old.process(_messages(0, 0, 6) + _messages(1, 0, 4))
    assert await _total(read_model) == 10

    new = await _member(read_model, 2)
    assert new.building and new.slot != old.slot
    assert (await read_model.meta("tally")).active == old.slot
    # Part of the history, and the live version moves on meanwhile: still the old one.
    await new.process(_messages(0, 0, 6))
    await old.process(_messages(1, 4, 2))
    assert new.building
    assert await _total(read_model) == 12
    # Partition 1 reaches where the live version is: the build goes live.
    await new.process(_messages(1, 0, 6))
    assert not new.building
    assert (await read_model.meta("tally")).active == new.slot
    assert await _total(read_model) == 120

    # The old version learns from its next commit that it must stop writing.
    with pytest.raises(ProjectionSupersededError):
        await old.process(_messages(0, 6, 1))
    await new.process(_messages(0, 6, 1))
    assert await _total(read_model) == 130

    # A member of the old version started now refuses at once.
    with pytest.raises(ProjectionSupersededError):
        await _member(read_model, 1)


async def test_a_second_member_of_the_new_version_joins_the_same_build(
    read_model: RedisReadModel,
) -> None:
    old = await _member(read_model, 1)
    await old.process(_messages(0, 0, 3) + _messages(1, 0, 3))
    first, second = await _member(read_model, 2), await _member(read_model, 2)
    assert first.slot == second.slot and first.building and second.building
    await first.process(_messages(0, 0, 3))
    assert first.building  # partition 1 is not there yet
    await second.process(_messages(1, 0, 3))
    assert (await read_model.meta("tally")).active == first.slot
    assert await _total(read_model) == 60
    # The member that did not make the swap learns it went live from its next commit.
    await first.process(_messages(0, 3, 1))
    assert not first.building and await _total(read_model) == 70


async def test_retry_topics_do_not_hold_a_swap_back(read_model: RedisReadModel) -> None:
    """The live version read copies from a retry topic that retention may have emptied
    since: the build is caught up once the main topics are."""
    old = await _member(read_model, 1)
    await old.process(_messages(0, 0, 2) + _messages(1, 0, 2))
    await old.process(_messages(0, 5, 1, topic=f"{TOPIC}.retry.1"))
    new = await _member(read_model, 2)
    await new.process(_messages(0, 0, 2) + _messages(1, 0, 2))
    assert not new.building
    assert (await read_model.meta("tally")).active == new.slot
