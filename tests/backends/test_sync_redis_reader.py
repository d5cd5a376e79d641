"""projections.sync.RedisReader: a synchronous view reads what an async projection wrote.

The slot is written by the async ``RedisReadModel`` (as a runner would), then
read back from plain sync code, with decoding and non-decoding clients; every
answer must equal the async read model's own answer.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis
import redis.asyncio as aioredis
from contracts.read_model import pos

from eventstore import START
from projections import CommitBatch, ProjectionNotReadyError, ReadModelError, RedisReadModel
from projections.sync import RedisReader, RedisView


@pytest.fixture
async def written(redis_url: str) -> AsyncIterator[tuple[RedisReadModel, str]]:
    """A projection "carts" with an active slot holding a string, a hash and a set."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    model = RedisReadModel(client, prefix=f"s{uuid.uuid4().hex[:10]}:", close_client=True)
    info = await model.create_slot("carts", 1)
    assert await model.activate("carts", info.slot)
    writes = model.new_writes("carts", info.slot)
    writes.begin_event(0, pos(1))
    writes.set("count", "2")
    writes.hset("cart:c1", {"mug": "1", "tea": "2"})
    writes.sadd("owners", "ann", "bob")
    batch = CommitBatch(
        previous=START, position=pos(1), writes=writes, events=1, event_time=datetime.now(UTC)
    )
    assert await model.commit("carts", info.slot, batch, require_active=True) == []
    yield model, model.prefix
    await model.close()


@pytest.mark.parametrize("decode", [True, False])
async def test_a_sync_view_reads_the_active_slot_like_the_async_one(
    written: tuple[RedisReadModel, str], redis_url: str, decode: bool
) -> None:
    model, prefix = written
    reader = RedisReader(
        redis.Redis.from_url(redis_url, decode_responses=decode), prefix=prefix, close_client=True
    )
    with reader:
        view = reader.view("carts")
        assert isinstance(view, RedisView)
        expected_view = await model.view("carts")
        assert (view.name, view.slot, view.namespace) == (
            expected_view.name,
            expected_view.slot,
            expected_view.namespace,
        )
        cart = view.client.hgetall(view.key("cart", "c1"))
        as_text = {(k.decode() if isinstance(k, bytes) else k): v for k, v in cart.items()}
        assert sorted(as_text) == ["mug", "tea"]
        assert reader.snapshot("carts") == await model.snapshot("carts")
        assert reader.snapshot("carts")["owners"] == ["ann", "bob"]
        assert reader.checkpoint("carts") == await model.checkpoint("carts") == pos(1)


async def test_same_errors_as_the_async_read_model(
    written: tuple[RedisReadModel, str], redis_url: str
) -> None:
    _, prefix = written
    with RedisReader.connect(redis_url, prefix=prefix) as reader:
        with pytest.raises(ProjectionNotReadyError) as raised:
            reader.view("orders")
        assert "orders" in str(raised.value)
        assert reader.checkpoint("orders") is None
    with pytest.raises(ReadModelError, match="cannot reach Redis"):
        RedisReader.connect("redis://127.0.0.1:1/0")
