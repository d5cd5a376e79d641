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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.exceptions import RedisError, ResponseError

from projections import MongoReadModel, RedisReadModel, RedisScript, RedisWrites

from ._consume_errors import ConsumerError, OffsetConflictError

# ARGV[1] is the whole batch as one JSON array, decoded here with cjson:
#   [[[field, expected, next], ...],      partition moves ('' expected: none yet)
#    [[event index, event id], ...],      copies applied at most once by id
#    [[event index, [arg, ...]], ...]]    the queued commands, every arg a string
# except that an argument JSON cannot carry (bytes that are not UTF-8) is
# [n]: ARGV[n].  Why one string: redis-py packing ~3,000 separate arguments per
# batch was a fifth of a consumer's CPU; one JSON string costs one call of orjson.
_COMMIT = """
local batch = cjson.decode(ARGV[1])
local moves, guarded, commands = batch[1], batch[2], batch[3]
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'hash' and kind ~= 'none' then
  return {'corrupt', KEYS[1] .. ' (the offsets) is a ' .. kind .. ', not a hash'}
end
kind = redis.call('TYPE', KEYS[2])['ok']
if kind ~= 'set' and kind ~= 'none' then
  return {'corrupt', KEYS[2] .. ' (the applied copies) is a ' .. kind .. ', not a set'}
end
for m = 1, #moves do
  local found = redis.call('HGET', KEYS[1], moves[m][1]) or ''
  if found ~= moves[m][2] then return {'conflict', moves[m][1], found} end
end
-- Nothing above wrote anything, and nothing below can fail: every command and
-- handler script runs under pcall, so the offsets never move without the writes.
for m = 1, #moves do
  redis.call('HSET', KEYS[1], moves[m][1], moves[m][3])
end
local skip = {}
for g = 1, #guarded do
  if redis.call('SADD', KEYS[2], guarded[g][2]) == 0 then skip[guarded[g][1]] = true end
end
local function run_script(args)
  local script = handler_scripts[args[2]]
  if script == nil then return {err = 'unknown script ' .. args[2]} end
  local nkeys = tonumber(args[3])
  return script({unpack(args, 4, 3 + nkeys)}, {unpack(args, 4 + nkeys, #args)})
end
local raw = #ARGV > 1
local failed = {}
for c = 1, #commands do
  local owner = commands[c][1]
  if not skip[owner] then
    local args = commands[c][2]
    if raw then
      for a = 1, #args do
        if type(args[a]) == 'table' then args[a] = ARGV[args[a][1]] end
      end
    end
    -- Under pcall: a handler script may raise (error()), and so may a command
    -- Redis cannot even parse; either is that command's refused write.
    local ok, result
    if args[1] == 'EVALSHA' then
      ok, result = pcall(run_script, args)
    else
      ok, result = pcall(redis.pcall, unpack(args))
    end
    if not ok then result = {err = tostring(result)} end
    if type(result) == 'table' and result.err then
      failed[#failed + 1] = tostring(owner)
      failed[#failed + 1] = tostring(result.err)
    end
  end
end
-- The active slot, so a member learns in this same reply that a newer version
-- took over (and a shadow build that it went live).
return {'ok', failed, redis.call('GET', KEYS[3]) or ''}
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
        self.active_key = f"{base}:active"
        #: The projection's active slot as of the last commit ("" when none).
        self.active: str = ""
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
        sources: Mapping[int, tuple[str, int, int]] | None = None,
    ) -> list[tuple[int, str]]:
        """Apply ``writes`` and the offset ``moves`` atomically; the refused writes by event.

        ``guarded`` are (event index, event id) pairs applied at most once by id.
        ``sources`` (where each event came from) is not needed here: the script's
        fence makes the whole batch one step.
        ``OffsetConflictError`` when a partition is not at its expected offset.
        """
        extra: list[bytes] = []
        try:
            batch = self._batch(moves, writes, guarded, extra)
            args: list[Any] = [orjson.dumps(batch), *extra]
        except TypeError as error:  # orjson.JSONEncodeError is one too
            raise ConsumerError(self.name, f"a queued write cannot go to Redis: {error}") from None
        script = self._script(writes.scripts.values())
        try:
            reply = await script(keys=[self.offsets_key, self.ids_key, self.active_key], args=args)
        except ResponseError as error:
            raise ConsumerError(self.name, f"the read model refused the batch: {error}") from error
        except RedisError as error:
            raise ConsumerError(self.name, f"Redis failed: {error}") from error
        outcome = _text(reply[0])
        if outcome == "corrupt":
            raise ConsumerError(self.name, f"the read model refused the batch: {_text(reply[1])}")
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
        self.active = _text(reply[2])
        pairs = [_text(item) for item in reply[1]]
        return [(int(i), e) for i, e in zip(pairs[::2], pairs[1::2], strict=True)]

    @staticmethod
    def _batch(
        moves: Sequence[PartitionMove],
        writes: RedisWrites,
        guarded: Sequence[tuple[int, str]],
        extra: list[bytes],
    ) -> list[Any]:
        return [
            [[m.field, "" if m.expected is None else str(m.expected), str(m.next)] for m in moves],
            [[index, event_id] for index, event_id in guarded],
            [
                [owner, [a if type(a) is str else _argument(a, extra) for a in command]]
                for owner, command in zip(writes.owners, writes.commands, strict=True)
            ],
        ]

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


def _argument(value: Any, extra: list[bytes]) -> Any:
    """One command argument as JSON carries it to the script: a string, or [ARGV index]."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            # JSON strings are text; raw bytes travel as an argument of their own.
            extra.append(value)
            return [len(extra) + 1]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"a Redis argument must be str, bytes, int or float, not {value!r}")
    # Numbers as redis-py writes them (repr for floats): as JSON numbers, Lua would
    # turn them into doubles and back, changing 0.1 and integers past 2**53.
    return repr(value) if isinstance(value, float) else str(value)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def partition_offsets(
    read_model: RedisReadModel | MongoReadModel, name: str
) -> dict[str, int]:
    """The active slot's next offset per ``topic:partition`` ({} when none is active);
    ``read_model`` a ``RedisReadModel`` or a ``MongoReadModel``."""
    if not isinstance(read_model, RedisReadModel):
        from ._mongo_offsets import mongo_partition_offsets

        return await mongo_partition_offsets(read_model, name)
    meta = await read_model.meta(name)
    if meta.active is None:
        return {}
    return await RedisOffsets(read_model, name, meta.active).load()
