"""Snapshots in Redis: a read-through cache in front of a backing store, or standalone.

Layout: one sorted set per stream, ``<prefix><stream id>``, scored by version, each
member the snapshot encoded as JSON (version included, so members never collide).
One key per stream makes every operation a single atomic MULTI/EXEC on one key
(also on a cluster), and "newest version <= n" is one ZREVRANGEBYSCORE that
returns the snapshot itself: no second lookup that a concurrent trim could race.

With a backing store the backing store is the truth: ``save`` writes it first,
then the cache; ``load`` asks Redis first and, on a miss, copies every snapshot
the backing store keeps for the stream into Redis, so the cache always holds
the newest snapshots of a stream and "newest <= n" from the cache is the true
answer whenever the cache has any snapshot <= n.  Writers that bypass the cache
(saving straight to the backing store) make it stale until ``ttl`` expires it.

Unreadable entries: a member that does not decode is removed from Redis; with a
backing store the load then falls back to it, standalone it raises
``SnapshotCorruptError`` (callers treat that as "no snapshot").  Redis being
unreachable during a backed ``load`` is logged and served by the backing store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ._errors import InvalidSnapshotError, SnapshotCorruptError, SnapshotStoreError
from ._model import (
    DEFAULT_KEEP,
    PreparedSnapshot,
    Snapshot,
    check_keep,
    check_stream_id,
    prepare_snapshot,
)
from ._redis_embedded import describe_redis_url, embedded_redis_url
from ._store import SnapshotStore, check_load_arguments

log = logging.getLogger("chronik.snapshots")

DEFAULT_PREFIX = "chronik:snap:"


class RedisSnapshotCache(SnapshotStore):
    """Snapshots in Redis (``redis.asyncio``), as a cache over ``backing`` or on their own.

    ``ttl`` (seconds) expires a stream's cached snapshots that many seconds after
    its last save or fill; ``keep`` defaults to the backing store's.  ``close``
    releases only what the cache created (the client made by :meth:`connect`),
    never a client or backing store passed in.
    """

    def __init__(
        self,
        redis_client: aioredis.Redis,
        *,
        backing: SnapshotStore | None = None,
        ttl: int | None = None,
        prefix: str = DEFAULT_PREFIX,
        keep: int | None = None,
    ) -> None:
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 1):
            raise ValueError(f"ttl must be None or an int >= 1 (seconds), got {ttl!r}")
        if not isinstance(prefix, str):
            raise ValueError(f"prefix must be a string, got {type(prefix).__name__}")
        default_keep = backing.keep if backing is not None else DEFAULT_KEEP
        self.keep = check_keep(default_keep if keep is None else keep)
        self.redis = redis_client
        self.backing = backing
        self.ttl = ttl
        self.prefix = prefix
        self.target = _describe_client(redis_client)
        self._owns_client = False

    @classmethod
    async def connect(
        cls,
        url: str | None = None,
        *,
        backing: SnapshotStore | None = None,
        ttl: int | None = None,
        prefix: str = DEFAULT_PREFIX,
        keep: int | None = None,
        data_dir: str | None = None,
    ) -> RedisSnapshotCache:
        """Connect to ``url``, or start/reuse the embedded Redis (``./.chronik/redis``)."""
        if url is None:
            url = await embedded_redis_url(data_dir)
        client = aioredis.Redis.from_url(url)
        try:
            await _call(client.ping())
        except (RedisError, OSError) as error:
            await client.aclose()
            raise SnapshotStoreError(describe_redis_url(url), _reason(error)) from None
        cache = cls(client, backing=backing, ttl=ttl, prefix=prefix, keep=keep)
        cache.target = describe_redis_url(url)
        cache._owns_client = True
        return cache

    def key(self, stream_id: str) -> str:
        """The Redis key holding the stream's snapshots."""
        return self.prefix + stream_id

    # -- operations ------------------------------------------------------------

    async def save(self, snapshot: Snapshot) -> None:
        prepared = prepare_snapshot(snapshot)
        stream_id = prepared.snapshot.stream_id
        if self.backing is not None:
            await self.backing.save(snapshot)
        try:
            await self._put(stream_id, [(prepared, datetime.now(UTC))])
        except (RedisError, OSError) as error:
            stored = " (the backing store has it; the cache may be stale)" if self.backing else ""
            raise SnapshotStoreError(
                self.target, f"cannot write the snapshot{stored}: {_reason(error)}", stream_id
            ) from error

    async def load(self, stream_id: str, *, max_version: int | None = None) -> Snapshot | None:
        stream_id, bound = check_load_arguments(stream_id, max_version)
        try:
            cached = await self._newest_cached(stream_id, bound)
        except (RedisError, OSError) as error:
            if self.backing is None:
                raise SnapshotStoreError(self.target, _reason(error), stream_id) from error
            log.warning(
                "snapshot cache %s unavailable, loading %r from the backing store: %s",
                self.target,
                stream_id,
                _reason(error),
            )
            return await self.backing.load(stream_id, max_version=bound)
        except SnapshotCorruptError as error:
            if self.backing is None:
                raise
            log.warning("%s; loading from the backing store", error)
            cached = None
        if cached is not None or self.backing is None:
            return cached
        return await self._fill(stream_id, bound)

    async def load_all(self, stream_id: str) -> list[Snapshot]:
        stream_id = check_stream_id(stream_id)
        if self.backing is not None:
            # The backing store may keep more than the cache does.
            return await self.backing.load_all(stream_id)
        try:
            members: list[tuple[Any, float]] = await _call(
                self.redis.zrangebyscore(self.key(stream_id), "-inf", "+inf", withscores=True)
            )
        except (RedisError, OSError) as error:
            raise SnapshotStoreError(self.target, _reason(error), stream_id) from error
        return [await self._decode_or_evict(stream_id, m, s) for m, s in members]

    async def delete(self, stream_id: str) -> int:
        stream_id = check_stream_id(stream_id)
        removed = 0 if self.backing is None else await self.backing.delete(stream_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zcard(self.key(stream_id))
                pipe.delete(self.key(stream_id))
                cached, _ = await pipe.execute()
        except (RedisError, OSError) as error:
            raise SnapshotStoreError(
                self.target, f"cannot delete the cached snapshots: {_reason(error)}", stream_id
            ) from error
        return removed if self.backing is not None else int(cached)

    async def close(self) -> None:
        if self._owns_client:
            await self.redis.aclose()

    # -- plumbing --------------------------------------------------------------

    async def _newest_cached(self, stream_id: str, bound: int | None) -> Snapshot | None:
        members: list[tuple[Any, float]] = await _call(
            self.redis.zrevrangebyscore(
                self.key(stream_id),
                "+inf" if bound is None else bound,
                "-inf",
                start=0,
                num=1,
                withscores=True,
            )
        )
        if not members:
            return None
        member, score = members[0]
        return await self._decode_or_evict(stream_id, member, score)

    async def _decode_or_evict(self, stream_id: str, member: Any, score: Any) -> Snapshot:
        try:
            return _decode(stream_id, member, int(score))
        except SnapshotCorruptError:
            # ZREM of the exact bytes: a good snapshot written meanwhile at the
            # same version is a different member and stays.
            await _call(self.redis.zrem(self.key(stream_id), member))
            raise

    async def _fill(self, stream_id: str, bound: int | None) -> Snapshot | None:
        assert self.backing is not None
        snapshots = await self.backing.load_all(stream_id)
        if snapshots:
            try:
                entries = [
                    (prepare_snapshot(s), s.recorded_at or datetime.now(UTC)) for s in snapshots
                ]
                await self._put(stream_id, entries)
            except (RedisError, OSError, InvalidSnapshotError) as error:
                log.warning(
                    "cannot fill the snapshot cache %s for %r (served from the backing store): %s",
                    self.target,
                    stream_id,
                    _reason(error),
                )
        eligible = [s for s in snapshots if bound is None or s.version <= bound]
        return eligible[-1] if eligible else None

    async def _put(
        self, stream_id: str, entries: Sequence[tuple[PreparedSnapshot, datetime]]
    ) -> None:
        key = self.key(stream_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            for prepared, recorded_at in entries:
                version = prepared.snapshot.version
                # Replace, never add beside: one member per version.
                pipe.zremrangebyscore(key, version, version)
                pipe.zadd(key, {_encode(prepared, recorded_at): version})
            pipe.zremrangebyrank(key, 0, -(self.keep + 1))
            if self.ttl is not None:
                pipe.expire(key, self.ttl)
            await pipe.execute()

    def __repr__(self) -> str:
        return (
            f"RedisSnapshotCache({self.target}, prefix={self.prefix!r}, keep={self.keep}, "
            f"backing={self.backing!r})"
        )


def _encode(prepared: PreparedSnapshot, recorded_at: datetime) -> str:
    s = prepared.snapshot
    head = json.dumps(
        {
            "version": s.version,
            "aggregate_type": s.aggregate_type,
            "fingerprint": s.fingerprint,
            "recorded_at": recorded_at.isoformat(),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    # The state is already JSON text: splice it in instead of encoding it twice.
    return f'{head[:-1]},"state":{prepared.state_json}}}'


def _decode(stream_id: str, member: Any, version: int) -> Snapshot:
    try:
        text = member.decode() if isinstance(member, bytes) else member
        payload = json.loads(text)
    except (UnicodeDecodeError, ValueError, TypeError) as error:
        raise SnapshotCorruptError(stream_id, version, f"undecodable JSON: {error}") from error
    if not isinstance(payload, dict):
        raise SnapshotCorruptError(stream_id, version, "the entry is not a JSON object")
    fields = ("version", "aggregate_type", "fingerprint", "recorded_at", "state")
    missing = [name for name in fields if name not in payload]
    if missing:
        raise SnapshotCorruptError(stream_id, version, f"missing fields {missing}")
    if payload["version"] != version:
        raise SnapshotCorruptError(
            stream_id, version, f"the entry says version {payload['version']!r}"
        )
    state, kind, fingerprint = payload["state"], payload["aggregate_type"], payload["fingerprint"]
    if not isinstance(state, dict) or not isinstance(kind, str) or not isinstance(fingerprint, str):
        raise SnapshotCorruptError(stream_id, version, "state, type or fingerprint has a bad type")
    try:
        recorded_at = datetime.fromisoformat(payload["recorded_at"])
    except (TypeError, ValueError) as error:
        raise SnapshotCorruptError(stream_id, version, f"bad recorded_at: {error}") from error
    return Snapshot(stream_id, kind, version, fingerprint, state, recorded_at)


async def _call(result: Any) -> Any:
    # redis-py types each command as "value or awaitable" (one class hierarchy
    # serves sync and async); on the asyncio client it is always awaitable.
    return await cast(Awaitable[Any], result)


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".strip()


def _describe_client(client: aioredis.Redis) -> str:
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    if "path" in kwargs:
        return f"redis at unix socket {kwargs['path']}"
    host, port, db = kwargs.get("host", "localhost"), kwargs.get("port", 6379), kwargs.get("db", 0)
    return f"redis {host}:{port}/{db}"
