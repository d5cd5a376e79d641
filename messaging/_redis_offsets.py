"""A Kafka-fed Redis read model: per-(topic, partition) offsets committed with the view.

A projection fed by a consumer group has one writer per partition, not one per
projection, so its checkpoint is one offset per (topic, partition): the next
offset to apply, kept in the hash ``<prefix>_proj:<name>:kafka:<slot>``.  One Lua
script checks that every partition of the batch is still at the offset this
member last saw there (the fence: a member that lost a partition in a rebalance
finds it moved and writes nothing), then applies the batch's writes and moves the
offsets, all at once.  A redelivered message is below its partition's offset and
never reaches the script: exactly-once in effect.

Messages that come back through a retry topic or a dead-letter replay live at
other offsets than the first copy, so for them the script also records the event
id (``...:kafka-ids:<slot>``) and skips the writes of an id it has applied before:
a copy sent twice lands once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError, ResponseError

from projections import RedisReadModel, RedisScript, RedisWrites

from ._consume_errors import ConsumerError, OffsetConflictError

_COMMIT = """
local i = 1
local parts = tonumber(ARGV[i])
i = i + 1
for _ = 1, parts do
  local found = redis.call('HGET', KEYS[1], ARGV[i]) or ''
  if found ~= ARGV[i + 1] then return {'conflict', ARGV[i], found} end
  i = i + 3
end
local j = 2
for _ = 1, parts do
  redis.call('HSET', KEYS[1], ARGV[j], ARGV[j + 2])
  j = j + 3
end
local skip = {}
local guarded = tonumber(ARGV[i])
i = i + 1
for _ = 1, guarded do
  if redis.call('SADD', KEYS[2], ARGV[i + 1]) == 0 then skip[ARGV[i]] = true end
  i = i + 2
end
local failed = {}
local commands = tonumber(ARGV[i])
i = i + 1
for c = 1, commands do
  local owner = ARGV[i]
  local argc = tonumber(ARGV[i + 1])
  local s = i + 2
  if not skip[owner] then
    local result
    if ARGV[s] == 'EVALSHA' then
      local script = handler_scripts[ARGV[s + 1]]
      local nkeys = tonumber(ARGV[s + 2])
      if script == nil then
        result = {err = 'unknown script ' .. ARGV[s + 1]}
      else
        local ok, value = pcall(
          script,
          {unpack(ARGV, s + 3, s + 2 + nkeys)},
          {unpack(ARGV, s + 3 + nkeys, s + argc - 1)})
        if ok then result = value else result = {err = tostring(value)} end
      end
    else
      result = redis.pcall(unpack(ARGV, s, s + argc - 1))
    end
    if type(result) == 'table' and result.err then
      failed[#failed + 1] = owner
      failed[#failed + 1] = tostring(result.err)
    end
  end
  i = s + argc
end
return {'ok', failed}
"""


@dataclass(frozen=True, slots=True)
class PartitionMove:
    """One partition's offset move in a batch: from ``expected`` to ``next``."""

    topic: str
    partition: int
    expected: int | None
    next: int

    @property
    def field(self) -> str:
        return offset_field(self.topic, self.partition)


def offset_field(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


class RedisOffsets:
    """The per-partition offsets of one projection slot in a ``RedisReadModel``."""

    def __init__(self, read_model: RedisReadModel, name: str, slot: str) -> None:
        self.read_model = read_model
        self.name = name
        self.slot = slot
        base = f"{read_model.prefix}_proj:{name}"
        self.offsets_key = f"{base}:kafka:{slot}"
        self.ids_key = f"{base}:kafka-ids:{slot}"
        self._scripts: dict[tuple[str, ...], Any] = {}

    async def load(self, partitions: Sequence[tuple[str, int]] | None = None) -> dict[str, int]:
        """Stored next offsets by ``topic:partition`` (all of them when ``partitions`` is None)."""
        client = self.read_model.client
        try:
            if partitions is None:
                raw = await client.hgetall(self.offsets_key)
                return {_text(k): int(v) for k, v in raw.items()}
            fields = [offset_field(t, p) for t, p in partitions]
            if not fields:
                return {}
            values = await client.hmget(self.offsets_key, fields)
        except RedisError as error:
            raise ConsumerError(self.name, f"Redis failed reading offsets: {error}") from error
        return {f: int(v) for f, v in zip(fields, values, strict=True) if v is not None}

    async def commit(
        self,
        moves: Sequence[PartitionMove],
        writes: RedisWrites,
        guarded: Sequence[tuple[int, str]],
    ) -> list[tuple[int, str]]:
        """Apply ``writes`` and the offset ``moves`` atomically; the refused writes by event.

        ``guarded`` are (event index, event id) pairs applied at most once by id.
        ``OffsetConflictError`` when a partition is not at its expected offset.
        """
        args: list[Any] = [len(moves)]
        for move in moves:
            args += [move.field, "" if move.expected is None else str(move.expected), move.next]
        args.append(len(guarded))
        for index, event_id in guarded:
            args += [index, event_id]
        args.append(len(writes.commands))
        for owner, command in zip(writes.owners, writes.commands, strict=True):
            args += [owner, len(command), *command]
        script = self._script(writes.scripts.values())
        try:
            reply = await script(keys=[self.offsets_key, self.ids_key], args=args)
        except ResponseError as error:
            raise ConsumerError(self.name, f"the read model refused the batch: {error}") from error
        except RedisError as error:
            raise ConsumerError(self.name, f"Redis failed: {error}") from error
        outcome = _text(reply[0])
        if outcome == "conflict":
            field, found = _text(reply[1]), _text(reply[2])
            topic, _, partition = field.rpartition(":")
            expected = next((m.expected for m in moves if m.field == field), None)
            raise OffsetConflictError(
                self.name,
                topic,
                int(partition),
                -1 if expected is None else expected,
                int(found) if found else -1,
            )
        pairs = [_text(item) for item in reply[1]]
        return [(int(i), e) for i, e in zip(pairs[::2], pairs[1::2], strict=True)]

    def _script(self, scripts: Any) -> Any:
        handlers = tuple(sorted(scripts, key=lambda s: s.sha))
        key = tuple(s.sha for s in handlers)
        compiled = self._scripts.get(key)
        if compiled is None:
            compiled = self.read_model.client.register_script(_handler_table(handlers) + _COMMIT)
            self._scripts[key] = compiled
        return compiled


def _handler_table(scripts: Sequence[RedisScript]) -> str:
    # A handler script's body sees its own KEYS and ARGV as function parameters.
    entries = [f"  ['{s.sha}'] = function(KEYS, ARGV)\n{s.source}\n  end," for s in scripts]
    return "local handler_scripts = {\n" + "\n".join(entries) + "\n}\n"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def partition_offsets(read_model: RedisReadModel, name: str) -> dict[str, int]:
    """The active slot's next offset per ``topic:partition`` ({} when none is active)."""
    meta = await read_model.meta(name)
    if meta.active is None:
        return {}
    return await RedisOffsets(read_model, name, meta.active).load()
