"""The read-model contract on real Redis, plus what only the Redis read model does."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from contracts.read_model import ReadModelContract, pos

from eventstore import START
from projections import (
    CommitBatch,
    ProjectionNotReadyError,
    RedisReadModel,
    RedisScript,
    RedisWrites,
    WriteRejectedError,
)


@pytest.fixture(params=["text", "bytes"])
async def read_model(
    redis_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[RedisReadModel]:
    # Applications may hand in a client of their own, decoding replies or not.
    client = aioredis.Redis.from_url(redis_url, decode_responses=request.param == "text")
    model = RedisReadModel(client, prefix=f"t{uuid.uuid4().hex[:10]}:", close_client=True)
    yield model
    await model.close()


class TestRedisReadModel(ReadModelContract[RedisWrites]):
    def put(self, writes: RedisWrites, key: str, value: str) -> None:
        writes.set(key, value)

    def add(self, writes: RedisWrites, key: str, amount: int) -> None:
        writes.incrby(key, amount)

    def value(self, snapshot: dict[str, Any], key: str) -> tuple[str | None, int]:
        raw: str | None = snapshot.get(key)
        return raw, int(raw) if raw is not None and raw.lstrip("-").isdigit() else 0


async def _active(read_model: RedisReadModel, name: str = "things") -> str:
    info = await read_model.create_slot(name, 1)
    assert await read_model.activate(name, info.slot)
    return info.slot


async def test_readers_resolve_the_active_slot_once_per_view(read_model: RedisReadModel) -> None:
    with pytest.raises(ProjectionNotReadyError):
        await read_model.view("things")
    slot = await _active(read_model)
    view = await read_model.view("things")
    assert view.slot == slot
    assert view.key("a", 1) == f"{read_model.prefix}things:{slot}:a:1"


async def test_scripts_run_inside_the_batch_and_see_its_earlier_writes(
    read_model: RedisReadModel,
) -> None:
    slot = await _active(read_model)
    # A fresh script body each run: it must be loaded on demand, not assumed present.
    double = RedisScript(
        f"-- {uuid.uuid4()}\n"
        "local v = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
        "redis.call('SET', ARGV[1] .. 'double', v * ARGV[2])\nreturn 1"
    )
    writes = read_model.new_writes("things", slot)
    writes.begin_event(0, pos(1))
    writes.incrby("n", 21)
    writes.script(double, ["n"], [2])
    await read_model.commit(
        "things", slot, CommitBatch(START, pos(1), writes, 1), require_active=True
    )
    assert (await read_model.snapshot("things"))["double"] == "42"


async def test_a_write_refused_inside_exec_is_reported_for_its_event(
    read_model: RedisReadModel,
) -> None:
    slot = await _active(read_model)
    writes = read_model.new_writes("things", slot)
    writes.begin_event(0, pos(1))
    writes.set("text", "x")
    writes.begin_event(1, pos(2))
    writes.incrby("text", 1)  # WRONGTYPE-like: not an integer
    writes.begin_event(2, pos(3))
    writes.incrby("fine", 1)
    failed = await read_model.commit(
        "things", slot, CommitBatch(START, pos(3), writes, 3), require_active=True
    )
    assert [f.event_index for f in failed] == [1]
    assert "not an integer" in failed[0].error
    assert await read_model.checkpoint("things") == pos(3)


async def test_an_unknown_command_fails_alone(read_model: RedisReadModel) -> None:
    slot = await _active(read_model)
    writes = read_model.new_writes("things", slot)
    writes.begin_event(0, pos(1))
    writes.command("NOSUCHCOMMAND", "x")
    writes.begin_event(1, pos(2))
    writes.incrby("n", 1)
    failed = await read_model.commit(
        "things", slot, CommitBatch(START, pos(2), writes, 2), require_active=True
    )
    assert [f.event_index for f in failed] == [0]
    assert (await read_model.snapshot("things"))["n"] == "1"


async def test_a_script_that_does_not_compile_rejects_the_whole_batch(
    read_model: RedisReadModel,
) -> None:
    slot = await _active(read_model)
    writes = read_model.new_writes("things", slot)
    writes.begin_event(0, pos(1))
    writes.incrby("n", 1)
    writes.begin_event(1, pos(2))
    writes.script(RedisScript("this is not lua ("), ["n"])
    with pytest.raises(WriteRejectedError):
        await read_model.commit(
            "things", slot, CommitBatch(START, pos(2), writes, 2), require_active=True
        )
    assert await read_model.snapshot("things") == {}
    assert await read_model.checkpoint("things") == START


async def test_a_script_error_fails_its_event_alone(read_model: RedisReadModel) -> None:
    slot = await _active(read_model)
    refuse = RedisScript("return redis.error_reply('no thanks')")
    explode = RedisScript("return redis.call('INCRBY', KEYS[1], 'not a number')")
    writes = read_model.new_writes("things", slot)
    for index, script in enumerate([refuse, explode]):
        writes.begin_event(index, pos(index + 1))
        writes.script(script, ["n"])
    writes.begin_event(2, pos(3))
    writes.incrby("n", 5)
    failed = await read_model.commit(
        "things", slot, CommitBatch(START, pos(3), writes, 3), require_active=True
    )
    assert [f.event_index for f in failed] == [0, 1]
    assert "no thanks" in failed[0].error and "not an integer" in failed[1].error
    assert (await read_model.snapshot("things"))["n"] == "5"


def test_commands_with_too_many_arguments_are_refused_when_queued() -> None:
    writes = RedisWrites("ns:")
    writes.begin_event(0, pos(1))
    with pytest.raises(ValueError, match="arguments"):
        writes.sadd("big", *range(8000))


async def test_projection_names_do_not_leak_across_prefixes(redis_url: str) -> None:
    one = await RedisReadModel.connect(redis_url, prefix=f"a{uuid.uuid4().hex[:8]}:")
    two = await RedisReadModel.connect(redis_url, prefix=f"b{uuid.uuid4().hex[:8]}:")
    try:
        await one.create_slot("alpha", 1)
        await two.create_slot("beta", 1)
        assert await one.projection_names() == ["alpha"]
        assert await two.projection_names() == ["beta"]
    finally:
        await one.close()
        await two.close()


async def test_connect_without_url_starts_the_embedded_redis(tmp_path: Any) -> None:
    model = await RedisReadModel.connect(data_dir=tmp_path / "redis")
    try:
        info = await model.create_slot("things", 1)
        assert info.slot == "v1g1"
        assert (tmp_path / "redis").is_dir()
    finally:
        await model.close()
