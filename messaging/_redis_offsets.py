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
from redis.exceptions import DataError, RedisError, ResponseError

from projections import MongoReadModel, RedisReadModel, RedisWrites

from ._consume_errors import ConsumerError, OffsetConflictError

# ARGV[1] is the fence and the copies as one JSON array, decoded here with cjson:
#   [[[field, expected, next], ...],      partition moves ('' expected: none yet)
#    [[event index, event id], ...],      copies applied at most once by id
#    [event index, ...]]                  the event of each queued command
# ARGV[2] the queued commands as the projection runner sends its own
# (``RedisReadModel.encode_commands``: one JSON array, every argument a string,
# ``[n]`` for the bytes in ARGV[n]), run by the same ``run_command``
# (``RedisReadModel.batch_script``).  Why JSON strings: redis-py packing ~3,000
# separate arguments per batch was a fifth of a consumer's CPU.
_COMMIT = """
local batch = cjson.decode(ARGV[1])
local moves, guarded, owners = batch[1], batch[2], batch[3]
local commands = cjson.decode(ARGV[2])
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
local failed = {}
for c = 1, #commands do
  local owner = owners[c]
  if not skip[owner] then
    -- Under pcall: a handler script may raise (error()), and so may a command
    -- Redis cannot even parse; either is that command's refused write.
    local ok, result = pcall(run_command, commands[c])
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
        read_model = self.read_model
        try:
            commands, binary = read_model.encode_commands(writes.commands, 3)
            head = orjson.dumps(
                [
                    [
                        [m.field, "" if m.expected is None else str(m.expected), str(m.next)]
                        for m in moves
                    ],
                    guarded,
                    writes.owners,
                ]
            )
        except (DataError, TypeError) as error:  # orjson.JSONEncodeError is a TypeError
            raise ConsumerError(self.name, f"a queued write cannot go to Redis: {error}") from None
        script = read_model.batch_script(_COMMIT, writes.scripts.values())
        args = [head, commands, *binary]
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
