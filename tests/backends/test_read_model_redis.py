"""The read-model contract on real Redis, plus what only the Redis read model does."""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
from contracts.read_model import ReadModelContract, letter, pos

from eventstore import START
from projections import (
    CommitBatch,
    PendingFailures,
    ProjectionNotReadyError,
    ReadModelError,
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


class _Colour(str, enum.Enum):  # noqa: UP042 (its str() is not its text, unlike StrEnum)
    RED = "red"


# Values as redis-py itself would send them: the batch travels as one JSON string,
# and none of these may change on the way (bytes that are not UTF-8, a NUL, an
# integer beyond a double's 53 bits, a float's repr, a str subclass).
_AWKWARD = {
    "binary": b"\xff\x00\xfe raw",
    "nul": "a\x00b",
    "accents": "d\u00e9j\u00e0 \u2713 \U0001f600",
    "big": 2**63 + 1,
    "float": 0.1,
    "negative": -17,
    "view": memoryview(b"\x80view"),
    "enum": _Colour.RED,
}


async def test_values_reach_redis_exactly_as_redis_py_would_send_them(
    read_model: RedisReadModel, redis_url: str
) -> None:
    slot = await _active(read_model)
    writes = read_model.new_writes("things", slot)
    writes.begin_event(0, pos(1))
    for field, value in _AWKWARD.items():
        writes.set(field, value)
    writes.hset("hash", {"\xe9": b"\xc3", "k": 5})
    writes.begin_event(1, pos(2))
    writes.script(RedisScript("redis.call('SET', KEYS[1], ARGV[2]); return 1"), ["echo"], [b"\xfe"])
    failed = await read_model.commit(
        "things", slot, CommitBatch(START, pos(2), writes, 2), require_active=True
    )
    assert failed == []
    plain = aioredis.Redis.from_url(redis_url)
    try:
        expected = aioredis.Redis.from_url(redis_url)
        reference = f"{read_model.prefix}reference:"
        for field, value in _AWKWARD.items():
            await expected.set(reference + field, value)
            stored = await plain.get(writes.key(field))
            assert stored == await plain.get(reference + field), field
        assert await plain.hgetall(writes.key("hash")) == {"\xe9".encode(): b"\xc3", b"k": b"5"}
        assert await plain.get(writes.key("echo")) == b"\xfe"
        await expected.delete(*(reference + field for field in _AWKWARD))
        await expected.aclose()
    finally:
        await plain.aclose()


@pytest.mark.parametrize("value", [True, None, 1.5j])
async def test_a_value_redis_cannot_take_fails_the_commit_before_anything_is_written(
    read_model: RedisReadModel, value: Any
) -> None:
    slot = await _active(read_model)
    writes = read_model.new_writes("things", slot)
    writes.begin_event(0, pos(1))
    writes.incrby("n", 1)
    writes.begin_event(1, pos(2))
    writes.set("bad", value)
    with pytest.raises(ReadModelError, match=r"things.*Invalid input of type"):
        await read_model.commit(
            "things", slot, CommitBatch(START, pos(2), writes, 2), require_active=True
        )
    assert await read_model.snapshot("things") == {}
    assert await read_model.checkpoint("things") == START


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


def _refused_batch(read_model: RedisReadModel, slot: str) -> CommitBatch[RedisWrites]:
    """Three events; the second's second write is refused after its first landed."""
    writes = read_model.new_writes("things", slot)
    writes.begin_event(0, pos(1))
    writes.set("text", "x")
    writes.begin_event(1, pos(2))
    writes.incrby("counted", 1)
    writes.incrby("text", 1)  # not an integer: refused inside the commit
    writes.begin_event(2, pos(3))
    writes.incrby("fine", 1)
    return CommitBatch(START, pos(3), writes, 3)


async def test_refused_writes_are_recorded_with_the_checkpoint_until_settled(
    read_model: RedisReadModel,
) -> None:
    slot = await _active(read_model)
    batch = _refused_batch(read_model, slot)
    failed = await read_model.commit("things", slot, batch, require_active=True)
    assert [f.event_index for f in failed] == [1]
    # Recorded in the commit itself: nothing is lost if the caller never parks them.
    pending = await read_model.pending_failures("things", slot)
    assert pending == PendingFailures(START, pos(3), failed)
    # A lost reply: committing the same batch again reports them again.
    again = await read_model.commit("things", slot, batch, require_active=True)
    assert again == failed
    assert (await read_model.snapshot("things"))["counted"] == "1"
    # Until they are parked the slot takes no further commit.
    later = read_model.new_writes("things", slot)
    later.begin_event(0, pos(4))
    later.incrby("fine", 1)
    with pytest.raises(ReadModelError, match="not parked yet"):
        await read_model.commit(
            "things", slot, CommitBatch(pos(3), pos(4), later, 1), require_active=True
        )
    parked = replace(letter("things", slot, 2), partial=True)
    await read_model.settle("things", slot, pending, [parked])
    assert await read_model.pending_failures("things", slot) is None
    assert await read_model.dead_letters("things", slot) == [parked]
    # Settling twice parks nothing twice (a replay may have unparked it meanwhile).
    await read_model.commit_replay("things", slot, parked, read_model.new_writes("things", slot))
    await read_model.settle("things", slot, pending, [parked])
    assert await read_model.dead_letters("things", slot) == []
    await read_model.commit(
        "things", slot, CommitBatch(pos(3), pos(4), later, 1), require_active=True
    )
    assert await read_model.checkpoint("things") == pos(4)


async def test_a_replay_with_a_refused_write_stays_parked_as_partial(
    read_model: RedisReadModel,
) -> None:
    slot = await _active(read_model)
    blocked = letter("things", slot, 2, blocking=True)
    prepare = read_model.new_writes("things", slot)
    prepare.begin_event(0, pos(1))
    prepare.set("text", "x")
    await read_model.commit(
        "things",
        slot,
        CommitBatch(START, pos(1), prepare, 1, dead_letters=[blocked]),
        require_active=True,
    )
    writes = read_model.new_writes("things", slot)
    writes.begin_event(0, pos(2))
    writes.incrby("counted", 1)
    writes.incrby("text", 1)  # refused
    with pytest.raises(WriteRejectedError, match="stays parked"):
        await read_model.commit_replay("things", slot, blocked, writes)
    [kept] = await read_model.dead_letters("things", slot)
    assert kept.position == pos(2) and kept.partial and not kept.blocking
    assert "not an integer" in kept.error and kept.replays == 1
    # Its other write landed, and the checkpoint moved past it.
    assert (await read_model.snapshot("things"))["counted"] == "1"
    assert await read_model.checkpoint("things") == pos(2)
