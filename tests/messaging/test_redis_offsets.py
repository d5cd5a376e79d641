"""The Kafka-fed Redis commit: one JSON argument carries the batch to the script.

Real Redis.  What JSON cannot carry as is (bytes that are not UTF-8, floats and
integers past 2**53, which Lua would turn into doubles) must land exactly as
redis-py would write them, and a read model in a state the script cannot write
must refuse the batch before anything moves.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from messaging import ConsumerError, OffsetConflictError
from messaging._redis_offsets import PartitionMove, RedisOffsets
from projections import RedisReadModel, RedisScript


@pytest.fixture
async def offsets(redis_url: str) -> AsyncIterator[RedisOffsets]:
    read_model = await RedisReadModel.connect(redis_url, prefix=f"ro{uuid.uuid4().hex[:8]}:")
    slot = (await read_model.create_slot("p", 1)).slot
    yield RedisOffsets(read_model, "p", slot)
    await read_model.drop_projection("p")
    await read_model.close()


async def test_arguments_land_as_redis_py_would_write_them(
    offsets: RedisOffsets, redis_url: str
) -> None:
    read_model = offsets.read_model
    writes = read_model.new_writes("p", offsets.slot)
    writes.begin_event(0, (1, 1))
    raw = b"\xff\x00not utf-8"
    big = 2**60 + 1
    writes.hset("h", {"bytes": raw, "float": 0.1, "big": big, "text": 'é "quoted" ☃'})
    writes.incrby("n", big)
    refused = await offsets.commit([PartitionMove("t", 0, None, 1)], writes, [])
    assert refused == []
    client = read_model.client
    key = writes.key("h")
    # The read model's client decodes replies; a raw connection shows the bytes.
    async with redis.asyncio.Redis.from_url(redis_url) as raw_client:
        assert await raw_client.hget(key, "bytes") == raw
    assert await client.hget(key, "float") == "0.1"
    assert await client.hget(key, "big") == str(big)
    assert await client.hget(key, "text") == 'é "quoted" ☃'
    assert await client.get(writes.key("n")) == str(big)
    assert await offsets.load() == {"t:0": 1}


async def test_refused_writes_and_script_errors_name_their_event(offsets: RedisOffsets) -> None:
    read_model = offsets.read_model
    writes = read_model.new_writes("p", offsets.slot)
    writes.begin_event(0, (1, 1))
    writes.set("s", "text")
    writes.begin_event(1, (1, 2))
    writes.hincrby("s", "f", 1)  # a hash command on a string: refused
    writes.begin_event(2, (1, 3))
    writes.script(RedisScript("return redis.error_reply('no such account')"), ["x"])
    writes.begin_event(3, (1, 4))
    writes.script(RedisScript("error('boom')"), ["x"])
    writes.begin_event(4, (1, 5))
    writes.incrby("after", 2)
    refused = await offsets.commit([PartitionMove("t", 3, None, 5)], writes, [])
    assert [index for index, _ in refused] == [1, 2, 3]
    assert "no such account" in refused[1][1] and "boom" in refused[2][1]
    assert await read_model.client.get(writes.key("after")) == "2"
    assert await offsets.load() == {"t:3": 5}


@pytest.mark.parametrize("which", ["offsets_key", "ids_key"])
async def test_a_corrupt_bookkeeping_key_refuses_the_batch_before_any_write(
    offsets: RedisOffsets, which: str
) -> None:
    client = offsets.read_model.client
    await client.hset(offsets.offsets_key, "t:0", "4")
    await client.delete(offsets.ids_key)
    if which == "offsets_key":
        await client.delete(offsets.offsets_key)
        await client.set(offsets.offsets_key, "not a hash")
    else:
        await client.set(offsets.ids_key, "not a set")
    writes = offsets.read_model.new_writes("p", offsets.slot)
    writes.begin_event(0, (1, 1))
    writes.incrby("n", 1)
    expected = None if which == "offsets_key" else 4
    with pytest.raises(ConsumerError, match=getattr(offsets, which)):
        await offsets.commit([PartitionMove("t", 0, expected, 5)], writes, [(0, str(uuid.uuid4()))])
    assert await client.get(writes.key("n")) is None
    if which == "ids_key":
        assert await offsets.load() == {"t:0": 4}


async def test_a_fenced_batch_writes_nothing(offsets: RedisOffsets) -> None:
    writes = offsets.read_model.new_writes("p", offsets.slot)
    writes.begin_event(0, (1, 1))
    writes.incrby("n", 1)
    await offsets.commit([PartitionMove("t", 0, None, 3)], writes, [])
    with pytest.raises(OffsetConflictError):
        await offsets.commit([PartitionMove("t", 0, 1, 4)], writes, [])
    assert await offsets.read_model.client.get(writes.key("n")) == "1"
    assert await offsets.load() == {"t:0": 3}


async def test_a_write_redis_cannot_take_is_a_consumer_error(offsets: RedisOffsets) -> None:
    writes = offsets.read_model.new_writes("p", offsets.slot)
    writes.begin_event(0, (1, 1))
    writes.command("SET", writes.key("k"), object())
    with pytest.raises(ConsumerError, match="cannot go to Redis"):
        await offsets.commit([PartitionMove("t", 0, None, 1)], writes, [])
    assert await offsets.load() == {}
