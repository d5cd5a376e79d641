"""The snapshot store contract on real Redis (standalone and as a cache over Postgres),
plus the cache's own behaviour: read-through fill, backing store as the truth,
corrupt entries, an unreachable Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from contracts.snapshot_store import MakeStore, SnapshotStoreContract, new_stream, snap
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from eventstore import PostgresEventStore
from snapshots import (
    InMemorySnapshotStore,
    PostgresSnapshotStore,
    RedisSnapshotCache,
    Snapshot,
    SnapshotCorruptError,
    SnapshotStore,
    SnapshotStoreError,
)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis_client = aioredis.Redis.from_url(redis_url)
    yield redis_client
    await redis_client.aclose()


def fresh_prefix() -> str:
    return f"test:{uuid.uuid4().hex[:8]}:"


class TestRedisSnapshotCacheStandalone(SnapshotStoreContract):
    @pytest.fixture
    def make_store(self, client: aioredis.Redis) -> MakeStore:
        async def make(keep: int = 5) -> SnapshotStore:
            return RedisSnapshotCache(client, keep=keep, prefix=fresh_prefix())

        return make


class TestRedisSnapshotCacheOverPostgres(SnapshotStoreContract):
    @pytest.fixture
    def make_store(self, client: aioredis.Redis, pg_store: PostgresEventStore) -> MakeStore:
        async def make(keep: int = 5) -> SnapshotStore:
            backing = PostgresSnapshotStore.from_event_store(pg_store, keep=keep)
            return RedisSnapshotCache(client, backing=backing, prefix=fresh_prefix())

        return make


@pytest.fixture
def backing() -> InMemorySnapshotStore:
    return InMemorySnapshotStore(keep=5)


@pytest.fixture
def cache(client: aioredis.Redis, backing: InMemorySnapshotStore) -> RedisSnapshotCache:
    return RedisSnapshotCache(client, backing=backing, prefix=fresh_prefix())


async def cached_versions(cache: RedisSnapshotCache, stream: str) -> list[int]:
    pairs = await cache.redis.zrange(cache.key(stream), 0, -1, withscores=True)
    return [int(score) for _, score in pairs]


# -- read-through ------------------------------------------------------------------------


async def test_a_miss_is_filled_from_the_backing_store(
    cache: RedisSnapshotCache, backing: InMemorySnapshotStore
) -> None:
    stream = new_stream()
    for version in (10, 20, 30):
        await backing.save(snap(stream, version))
    assert await cached_versions(cache, stream) == []
    loaded = await cache.load(stream)
    assert loaded is not None and loaded.version == 30
    # Every snapshot the backing store keeps, not only the one asked for.
    assert await cached_versions(cache, stream) == [10, 20, 30]
    # Served from Redis now: the backing store no longer has them.
    await backing.delete(stream)
    again = await cache.load(stream, max_version=25)
    assert again is not None and again.version == 20 and again.state == {"version": 20}


async def test_a_time_travel_miss_does_not_leave_the_cache_answering_stale(
    cache: RedisSnapshotCache, backing: InMemorySnapshotStore
) -> None:
    stream = new_stream()
    for version in (10, 20):
        await backing.save(snap(stream, version))
    older = await cache.load(stream, max_version=15)
    assert older is not None and older.version == 10
    newest = await cache.load(stream)
    assert newest is not None and newest.version == 20


async def test_filled_snapshots_keep_the_backing_stores_recorded_at(
    cache: RedisSnapshotCache, backing: InMemorySnapshotStore
) -> None:
    stream = new_stream()
    await backing.save(snap(stream, 4))
    truth = await backing.load(stream)
    await cache.load(stream)  # fills
    await backing.delete(stream)
    cached = await cache.load(stream)
    assert truth is not None and cached is not None
    assert cached.recorded_at == truth.recorded_at


async def test_a_miss_below_the_cached_snapshots_asks_the_backing_store(
    client: aioredis.Redis, backing: InMemorySnapshotStore
) -> None:
    cache = RedisSnapshotCache(client, backing=backing, prefix=fresh_prefix(), keep=1)
    stream = new_stream()
    for version in (10, 20, 30):
        await cache.save(snap(stream, version))
    assert await cached_versions(cache, stream) == [30]
    loaded = await cache.load(stream, max_version=25)
    assert loaded is not None and loaded.version == 20
    assert await cache.load(stream, max_version=5) is None


async def test_keep_defaults_to_the_backing_stores(client: aioredis.Redis) -> None:
    cache = RedisSnapshotCache(client, backing=InMemorySnapshotStore(keep=7))
    assert cache.keep == 7
    assert RedisSnapshotCache(client).keep == 5


# -- the backing store is the truth -----------------------------------------------------


async def test_save_writes_the_backing_store_and_the_cache(
    cache: RedisSnapshotCache, backing: InMemorySnapshotStore
) -> None:
    stream = new_stream()
    await cache.save(snap(stream, 3, {"balance": "1.00"}))
    truth = await backing.load(stream)
    assert truth is not None and truth.state == {"balance": "1.00"}
    assert await cached_versions(cache, stream) == [3]


class _BrokenStore(InMemorySnapshotStore):
    async def save(self, snapshot: Snapshot) -> None:
        raise SnapshotStoreError("broken test store", "disk on fire", snapshot.stream_id)


async def test_when_the_backing_store_fails_the_cache_is_not_written(
    client: aioredis.Redis,
) -> None:
    cache = RedisSnapshotCache(client, backing=_BrokenStore(), prefix=fresh_prefix())
    stream = new_stream()
    with pytest.raises(SnapshotStoreError, match="disk on fire"):
        await cache.save(snap(stream, 1))
    assert await cached_versions(cache, stream) == []


async def test_bad_input_writes_neither_store(
    cache: RedisSnapshotCache, backing: InMemorySnapshotStore
) -> None:
    stream = new_stream()
    with pytest.raises(ValueError, match="JSON"):
        await cache.save(snap(stream, 1, {"x": object()}))
    assert await backing.load_all(stream) == []
    assert await cached_versions(cache, stream) == []


async def test_delete_removes_from_both_and_counts_the_truth(
    cache: RedisSnapshotCache, backing: InMemorySnapshotStore
) -> None:
    stream = new_stream()
    for version in (1, 2):
        await cache.save(snap(stream, version))
    await backing.save(snap(stream, 3))  # written past the cache
    assert await cache.delete(stream) == 3
    assert await cached_versions(cache, stream) == []
    assert await backing.load_all(stream) == []


async def test_ttl_expires_a_streams_cached_snapshots(
    client: aioredis.Redis, backing: InMemorySnapshotStore
) -> None:
    cache = RedisSnapshotCache(client, backing=backing, prefix=fresh_prefix(), ttl=300)
    stream = new_stream()
    await cache.save(snap(stream, 1))
    assert 0 < await client.ttl(cache.key(stream)) <= 300
    other = new_stream()
    await backing.save(snap(other, 1))
    await cache.load(other)
    assert 0 < await client.ttl(cache.key(other)) <= 300


@pytest.mark.parametrize("ttl", [0, -5, 1.5, True])
def test_ttl_must_be_positive_whole_seconds(client: aioredis.Redis, ttl: Any) -> None:
    with pytest.raises(ValueError, match="ttl"):
        RedisSnapshotCache(client, ttl=ttl)


async def test_entries_are_plain_json_never_pickle(client: aioredis.Redis) -> None:
    cache = RedisSnapshotCache(client, prefix=fresh_prefix())
    stream = new_stream()
    await cache.save(snap(stream, 2, {"balance": "5.00"}, fingerprint="fp-x"))
    [member] = await client.zrange(cache.key(stream), 0, -1)
    payload = json.loads(member)
    assert payload["version"] == 2 and payload["fingerprint"] == "fp-x"
    assert payload["aggregate_type"] == "ledger"
    assert payload["state"] == {"balance": "5.00"}


async def test_works_with_a_client_that_decodes_responses(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        cache = RedisSnapshotCache(client, prefix=fresh_prefix())
        stream = new_stream()
        await cache.save(snap(stream, 1, {"name": "Zoë"}))
        loaded = await cache.load(stream)
        assert loaded is not None and loaded.state == {"name": "Zoë"}
    finally:
        await client.aclose()


# -- corrupt entries ------------------------------------------------------------------

CORRUPT_MEMBERS = [
    b"{not json",
    b"\xff\xfe not utf-8",
    b"[1, 2, 3]",
    b'{"version": 7}',
    b'{"version": 8, "aggregate_type": "ledger", "fingerprint": "f",'
    b' "recorded_at": "2024-01-01T00:00:00+00:00", "state": {}}',
    b'{"version": 7, "aggregate_type": "ledger", "fingerprint": "f",'
    b' "recorded_at": "2024-01-01T00:00:00+00:00", "state": [1]}',
    b'{"version": 7, "aggregate_type": "ledger", "fingerprint": "f",'
    b' "recorded_at": "yesterday", "state": {}}',
]


@pytest.mark.parametrize("member", CORRUPT_MEMBERS)
async def test_a_corrupt_entry_standalone_raises_and_is_removed(
    client: aioredis.Redis, member: bytes
) -> None:
    cache = RedisSnapshotCache(client, prefix=fresh_prefix())
    stream = new_stream()
    await cache.save(snap(stream, 3))
    await client.zadd(cache.key(stream), {member: 7})
    with pytest.raises(SnapshotCorruptError) as caught:
        await cache.load(stream)
    assert (caught.value.stream_id, caught.value.version) == (stream, 7)
    assert stream in str(caught.value) and "version 7" in str(caught.value)
    assert await cached_versions(cache, stream) == [3]
    loaded = await cache.load(stream)
    assert loaded is not None and loaded.version == 3


@pytest.mark.parametrize("member", CORRUPT_MEMBERS)
async def test_a_corrupt_entry_with_a_backing_store_falls_back_to_it(
    cache: RedisSnapshotCache,
    backing: InMemorySnapshotStore,
    member: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = new_stream()
    await cache.save(snap(stream, 7, {"good": True}))
    await client_zadd_replacing(cache, stream, member, 7)
    with caplog.at_level(logging.WARNING, logger="chronik.snapshots"):
        loaded = await cache.load(stream)
    assert loaded is not None and (loaded.version, loaded.state) == (7, {"good": True})
    assert any("corrupt" in record.getMessage() for record in caplog.records)
    # The cache was refilled with the good snapshot from the truth.
    [cached] = await cache.redis.zrange(cache.key(stream), 0, -1)
    assert json.loads(cached)["state"] == {"good": True}


async def client_zadd_replacing(
    cache: RedisSnapshotCache, stream: str, member: bytes, version: int
) -> None:
    key = cache.key(stream)
    await cache.redis.zremrangebyscore(key, version, version)
    await cache.redis.zadd(key, {member: version})


async def test_a_corrupt_entry_fails_load_all_standalone(client: aioredis.Redis) -> None:
    cache = RedisSnapshotCache(client, prefix=fresh_prefix())
    stream = new_stream()
    await cache.save(snap(stream, 1))
    await client.zadd(cache.key(stream), {b"garbage": 2})
    with pytest.raises(SnapshotCorruptError):
        await cache.load_all(stream)
    assert [s.version for s in await cache.load_all(stream)] == [1]


# -- an unreachable Redis ----------------------------------------------------------------


@pytest.fixture
async def dead_client(tmp_path: Path) -> AsyncIterator[aioredis.Redis]:
    # No retries: each would only wait for the same refusal.
    redis_client = aioredis.Redis(
        unix_socket_path=str(tmp_path / "nothing.sock"), retry=Retry(NoBackoff(), 0)
    )
    yield redis_client
    await redis_client.aclose()


async def test_an_unreachable_cache_is_bypassed_on_load(
    dead_client: aioredis.Redis,
    backing: InMemorySnapshotStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = RedisSnapshotCache(dead_client, backing=backing)
    stream = new_stream()
    await backing.save(snap(stream, 4))
    with caplog.at_level(logging.WARNING, logger="chronik.snapshots"):
        loaded = await cache.load(stream)
    assert loaded is not None and loaded.version == 4
    assert any("unavailable" in record.getMessage() for record in caplog.records)


async def test_an_unreachable_cache_fails_save_after_the_truth_is_written(
    dead_client: aioredis.Redis, backing: InMemorySnapshotStore
) -> None:
    cache = RedisSnapshotCache(dead_client, backing=backing)
    stream = new_stream()
    with pytest.raises(SnapshotStoreError, match="backing store has it") as caught:
        await cache.save(snap(stream, 2))
    assert caught.value.stream_id == stream
    assert await backing.load(stream) is not None


async def test_an_unreachable_standalone_store_raises(dead_client: aioredis.Redis) -> None:
    cache = RedisSnapshotCache(dead_client)
    stream = new_stream()
    for call in (cache.load(stream), cache.delete(stream), cache.save(snap(stream, 1))):
        with pytest.raises(SnapshotStoreError) as caught:
            await call
        assert caught.value.stream_id == stream
        assert "nothing.sock" in str(caught.value)


async def test_connect_to_an_unreachable_url_hides_the_password() -> None:
    with pytest.raises(SnapshotStoreError) as caught:
        await RedisSnapshotCache.connect("redis://:hunter2-secret@127.0.0.1:1/0")
    assert "127.0.0.1:1" in str(caught.value)
    assert "hunter2-secret" not in str(caught.value)
    assert "hunter2-secret" not in repr(caught.value.args)


# -- connect ---------------------------------------------------------------------------


async def test_connect_to_a_url_and_close_what_it_opened(
    redis_url: str, client: aioredis.Redis
) -> None:
    name = f"snapcache{uuid.uuid4().hex[:8]}"

    async def names() -> list[str]:
        return [entry.get("name", "") for entry in await client.client_list()]

    url = f"{redis_url}?client_name={name}"
    async with await RedisSnapshotCache.connect(url, prefix=fresh_prefix()) as cache:
        stream = new_stream()
        await cache.save(snap(stream, 1))
        assert await cache.load(stream) is not None
        assert name in await names()
    # The server drops a closed client asynchronously: wait for it (with a deadline),
    # a client that was never closed stays listed and fails the wait.
    async with asyncio.timeout(60):
        while name in await names():  # noqa: ASYNC110 (no event for a server-side close)
            await asyncio.sleep(0.01)


async def test_close_leaves_a_client_passed_in_open(client: aioredis.Redis) -> None:
    async with RedisSnapshotCache(client, prefix=fresh_prefix()) as cache:
        await cache.save(snap(new_stream(), 1))
    assert await client.ping()


async def test_connect_without_a_url_starts_the_embedded_redis(tmp_path: Path) -> None:
    data_dir = tmp_path / "redis"
    cache = await RedisSnapshotCache.connect(data_dir=str(data_dir))
    try:
        stream = new_stream()
        await cache.save(snap(stream, 1, {"embedded": True}))
        loaded = await cache.load(stream)
        assert loaded is not None and loaded.state == {"embedded": True}
        config = await cache.redis.config_get("dir")
        assert config["dir"] == str(data_dir)  # tmp_path is already a real path
        again = await RedisSnapshotCache.connect(data_dir=str(data_dir))
        assert await again.load(stream) is not None  # the same server, reused
        await again.close()
    finally:
        await cache.close()
