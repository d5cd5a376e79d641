"""Generated from projections/_redis_reads.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``projections._redis_reads``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import redis
from redis.exceptions import RedisError

from eventstore import Position
from eventstore.sync import Closing
from projections._errors import ProjectionNotReadyError, ReadModelError
from projections._redis_reads import DEFAULT_PREFIX, SCAN_COUNT, glob_escape, reply_text
from projections._slots import check_name
from projections.sync._redis_embedded import embedded_redis_url


class RedisView:
    """A reader's handle on one projection's active slot, resolved once.

    Read with any redis-py command on :attr:`client`, naming keys with :meth:`key`
    (the same relative parts the handlers gave ``RedisWrites``)::

        view = await read_model.view("cart_contents")
        quantities = await view.client.hgetall(view.key("cart", stream_id))

    Keep using one view for a group of reads: a rebuild that swaps slots meanwhile
    does not change what this view reads (the old slot stays until it is dropped).
    """

    def __init__(self, client: redis.Redis, name: str, slot: str, namespace: str) -> None:
        self.client = client
        self.name = name
        self.slot = slot
        self.namespace = namespace

    def key(self, *parts: object) -> str:
        """The absolute key for relative parts joined by ``:`` as given (not escaped:
        build parts taken from event data with ``projections.key``)."""
        return self.namespace + ":".join(str(part) for part in parts)


class RedisKeys:
    """Where a projection's keys are (see ``_redis_slots`` for the layout)."""

    client: redis.Redis
    prefix: str

    def _meta_key(self, name: str, part: str) -> str:
        return f"{self.prefix}_proj:{name}:{part}"

    def _active_key(self, name: str) -> str:
        return self._meta_key(name, "active")

    def _slots_key(self, name: str) -> str:
        return self._meta_key(name, "slots")

    def _checkpoint_key(self, name: str, slot: str) -> str:
        return self._meta_key(name, f"checkpoint:{slot}")

    def _dead_key(self, name: str, slot: str) -> str:
        return self._meta_key(name, f"dead:{slot}")

    def namespace(self, name: str, slot: str) -> str:
        """The key prefix of a slot's data."""
        return f"{self.prefix}{name}:{slot}:"

    @contextlib.contextmanager
    def _translate(self, name: str) -> Iterator[None]:
        try:
            yield
        except RedisError as error:
            raise ReadModelError(name, f"Redis failed: {error}") from error


class RedisReads(RedisKeys):
    """Reading projections back: active slot, views, checkpoints, whole slots."""

    def view(self, name: str) -> RedisView:
        """The active slot of ``name`` for reading; ``ProjectionNotReadyError`` if none."""
        check_name(name)
        with self._translate(name):
            slot = reply_text(self.client.get(self._active_key(name)))
        if slot is None:
            raise ProjectionNotReadyError(name, "no version of this projection is active yet")
        return RedisView(self.client, name, slot, self.namespace(name, slot))

    def checkpoint(self, name: str, slot: str | None = None) -> Position | None:
        check_name(name)
        with self._translate(name):
            if slot is None:
                slot = reply_text(self.client.get(self._active_key(name)))
                if slot is None:
                    return None
            text = reply_text(self.client.hget(self._checkpoint_key(name, slot), "position"))
        return Position.parse(text) if text else None

    def snapshot(self, name: str, slot: str | None = None) -> dict[str, Any]:
        if slot is None:
            slot = self.view(name).slot
        namespace = self.namespace(name, slot)
        result: dict[str, Any] = {}
        with self._translate(name):
            keys = [
                reply_text(k) or ""
                for k in self.client.scan_iter(match=glob_escape(namespace) + "*", count=SCAN_COUNT)
            ]
            for key in sorted(keys):
                result[key[len(namespace) :]] = self._dump(key)
        return result

    def _dump(self, key: str) -> Any:
        kind = reply_text(self.client.type(key))
        if kind == "string":
            return reply_text(self.client.get(key))
        if kind == "hash":
            raw = self.client.hgetall(key)
            return {reply_text(k): reply_text(v) for k, v in sorted(raw.items())}
        if kind == "set":
            return sorted(reply_text(m) or "" for m in self.client.smembers(key))
        if kind == "zset":
            pairs: list[Any] = self.client.zrange(key, 0, -1, withscores=True)
            return [[reply_text(member), score] for member, score in pairs]
        if kind == "list":
            return [reply_text(v) for v in self.client.lrange(key, 0, -1)]
        return None


class RedisReader(RedisReads, Closing):
    """A read-only handle on the projections in one Redis database, for queries.

    What a web view needs, and nothing that writes: ``view``, ``checkpoint`` and
    ``snapshot`` behave as on ``RedisReadModel``.
    """

    def __init__(
        self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX, close_client: bool = False
    ) -> None:
        self.client = client
        self.prefix = prefix
        self._close_client = close_client

    @classmethod
    def connect(
        cls,
        url: str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> RedisReader:
        """Connect to ``url``, or to the embedded Redis under ``./.chronik/redis`` when None."""
        return cls(connect_client(url, data_dir), prefix=prefix, close_client=True)

    def close(self) -> None:
        if self._close_client:
            self.client.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"


def connect_client(url: str | None, data_dir: str | os.PathLike[str] | None = None) -> redis.Redis:
    """A client for ``url`` (the embedded Redis when None), checked with a ping."""
    if url is None:
        url = embedded_redis_url(data_dir)
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        client.ping()
    except RedisError as error:
        client.close()
        raise ReadModelError("(connect)", f"cannot reach Redis: {error}") from error
    return client
