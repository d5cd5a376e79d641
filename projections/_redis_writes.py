"""Writes into a Redis read model: commands queued for the batch's MULTI/EXEC.

Keys given to these methods are *relative*: the slot's namespace is prepended, so
the same handler writes the live slot or a shadow build.  Read through
``RedisReadModel.view(name)``, which resolves the active slot.

Handlers cannot read inside the batch (its writes are sent in one go at commit);
anything that needs the model's current state belongs in a script
(``RedisScript``), which Redis runs inside the commit, after the batch's earlier
writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._writes import Writes

Value = str | int | float | bytes

#: Most arguments one queued command may have (the commit script unpacks each
#: command onto Lua's stack, which holds about 8000 values).
MAX_COMMAND_ARGS = 7000


class RedisScript:
    """A Lua script run inside the batch's commit, after the batch's earlier writes.

    The script gets the slot's namespace as ``ARGV[1]`` (so it can build further
    keys), then the caller's arguments; ``KEYS`` are namespaced like every key.
    Its body becomes a function inside the commit script: it may ``return`` a value
    or ``redis.error_reply(...)`` (which parks the event), and must not define
    globals.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        # SHA1 is what Redis names scripts by; nothing here relies on it for security.
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    def __repr__(self) -> str:
        return f"RedisScript(sha={self.sha[:10]})"


class RedisWrites(Writes):
    """Redis commands queued for one batch; keys are relative to the slot's namespace."""

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self.commands: list[tuple[Any, ...]] = []
        self.owners: list[int] = []
        self.scripts: dict[str, RedisScript] = {}

    def key(self, *parts: object) -> str:
        """The absolute key for relative parts joined by ``:`` as given (not escaped:
        build parts taken from event data with ``projections.key``)."""
        return self.namespace + ":".join(str(part) for part in parts)

    def command(self, *args: Any) -> None:
        """Queue any Redis command as is (keys are *not* namespaced: use ``key()``)."""
        if not args or len(args) > MAX_COMMAND_ARGS:
            raise ValueError(
                f"a queued command takes 1 to {MAX_COMMAND_ARGS} arguments, got {len(args)}"
            )
        self.commands.append(args)
        self.owners.append(self.event_index)

    def _mark(self) -> int:
        return len(self.commands)

    def _rollback(self, mark: int) -> None:
        del self.commands[mark:]
        del self.owners[mark:]

    def event_of(self, write_index: int) -> int:
        return self.owners[write_index]

    # -- strings and keys ----------------------------------------------------

    def set(self, key: str, value: Value) -> None:
        self.command("SET", self.namespace + key, value)

    def delete(self, *keys: str) -> None:
        self.command("DEL", *(self.namespace + k for k in keys))

    def incrby(self, key: str, amount: int) -> None:
        self.command("INCRBY", self.namespace + key, amount)

    def expire(self, key: str, seconds: int) -> None:
        self.command("EXPIRE", self.namespace + key, seconds)

    # -- hashes --------------------------------------------------------------

    def hset(self, key: str, mapping: Mapping[str, Value]) -> None:
        if not mapping:
            raise ValueError(f"hset of {key!r} needs at least one field")
        args: list[Any] = []
        for field, value in mapping.items():
            args.append(field)
            args.append(value)
        self.command("HSET", self.namespace + key, *args)

    def hdel(self, key: str, *fields: str) -> None:
        self.command("HDEL", self.namespace + key, *fields)

    def hincrby(self, key: str, field: str, amount: int) -> None:
        self.command("HINCRBY", self.namespace + key, field, amount)

    # -- sets, sorted sets, lists --------------------------------------------

    def sadd(self, key: str, *members: Value) -> None:
        self.command("SADD", self.namespace + key, *members)

    def srem(self, key: str, *members: Value) -> None:
        self.command("SREM", self.namespace + key, *members)

    def zadd(self, key: str, mapping: Mapping[str, float]) -> None:
        args: list[Any] = []
        for member, score in mapping.items():
            args.append(score)
            args.append(member)
        self.command("ZADD", self.namespace + key, *args)

    def zincrby(self, key: str, amount: float, member: str) -> None:
        self.command("ZINCRBY", self.namespace + key, amount, member)

    def zrem(self, key: str, *members: str) -> None:
        self.command("ZREM", self.namespace + key, *members)

    def rpush(self, key: str, *values: Value) -> None:
        self.command("RPUSH", self.namespace + key, *values)

    def lrem(self, key: str, count: int, value: Value) -> None:
        self.command("LREM", self.namespace + key, count, value)

    # -- scripts -------------------------------------------------------------

    def script(self, script: RedisScript, keys: Sequence[str], args: Iterable[Value] = ()) -> None:
        """Queue ``script`` with namespaced ``keys``; ``ARGV[1]`` is the namespace."""
        self.scripts[script.sha] = script
        self.command(
            "EVALSHA",
            script.sha,
            len(keys),
            *(self.namespace + k for k in keys),
            self.namespace,
            *args,
        )
