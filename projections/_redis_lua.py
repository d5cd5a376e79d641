"""The Lua scripts that commit a batch to Redis in one atomic step.

Why a script and not MULTI/EXEC: Redis runs a script atomically, like an EXEC,
but the script can also *check* before it writes.  So the fence (the checkpoint is
still where this writer found it, and for a live slot the slot is still the
active one), the batch's writes, its dead letters and the new checkpoint go in one
request and one reply: no WATCH round trips, and no per-command "QUEUED" replies
for the client to parse (which made MULTI/EXEC cost twice a plain pipeline).

Each queued command runs under ``pcall``: a command Redis refuses (a wrong type),
or any error of a handler script, is reported with its index and the rest of the
batch still applies, as in an EXEC.

Why a commit is all-or-nothing although Redis never undoes a script's writes:
everything that could fail outside a queued command (the checkpoint hash, the
dead-letter hash of the wrong type) is checked before the first write and answered
with ``corrupt``, and nothing after the first write can raise.  A script that
failed half-way used to be re-run event by event from the old checkpoint, applying
the earlier events' writes a second time.

Handler scripts (``RedisScript``) cannot be called from a script by SHA, so
their bodies are compiled into the commit script as local functions; a commit
script is cached per set of handler scripts.  That part, the ``run_command``
every queued command goes through and the JSON form of the commands are one
piece of code (``batch_source``, ``encode_commands``) shared with the Kafka-fed
read models in ``messaging``, whose commit script fences per-partition offsets
instead of one checkpoint (``RedisReadModel.batch_script``, ``encode_commands``).

The argument layout: ``ARGV[1..3]`` the guard, ``ARGV[4]`` the batch's commands as
one JSON array of arrays of strings, then the dead letters (count, field/value
pairs), the resolved dead letters (count, fields), and the checkpoint fields, and
after them one more: for a commit the batch index of the event of each command
(comma-separated), for a replay the dead letter to store instead of unparking it
when one of its writes is refused.  Last come the command arguments JSON cannot
carry (bytes that are not UTF-8): the commands hold ``[n]`` for ``ARGV[n]``.

Why the commands travel as one JSON string: redis-py packs every argument in
Python, and a batch of 500 events has thousands; that packing was a third of the
runner's CPU.  orjson writes the whole batch in one call and Lua's cjson reads
it in C.  Every argument goes as a string, converted as redis-py converts it
(``repr`` of numbers), so a number never passes through Lua's doubles.

Why refused writes are recorded by the script itself: the checkpoint moves past
the batch in the same step, so a dead letter written afterwards could be lost (a
crash, a lost reply, a failed request) and the event with it.  A commit with
refused writes records them as ``pending`` in the checkpoint hash, atomically
with the checkpoint; the slot takes no further commit until the runner has parked
them (``SETTLE``), re-reading their events after the batch's previous checkpoint
if it has to.  A replay that fails half-way keeps its dead letter parked, marked
partial (its other writes landed) and no longer blocking (the checkpoint moved on).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from redis.exceptions import DataError

from ._redis_writes import RedisScript

_COMMIT_GUARD = """
local replaying = false
local state = redis.call('HMGET', KEYS[1], 'position', 'pending', 'events')
local found, pending = state[1], state[2]
if found ~= ARGV[1] then
  if found == ARGV[2] then return {'done', pending or ''} end
  return {'conflict', found or ''}
end
if pending then return {'pending', pending} end
if state[3] and not tonumber(state[3]) then
  return {'corrupt', KEYS[1] .. ' has a non-integer events count'}
end
if ARGV[3] ~= '' then
  local active = redis.call('GET', KEYS[2])
  if active ~= ARGV[3] then return {'inactive', active or ''} end
end
"""

_REPLAY_GUARD = """
local replaying = true
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then return {'missing'} end
if ARGV[2] ~= '' then
  local found = redis.call('HGET', KEYS[1], 'position')
  if found ~= ARGV[2] then return {'conflict', found or ''} end
end
"""

_APPLY = """
local kind = redis.call('TYPE', KEYS[3])['ok']
if kind ~= 'hash' and kind ~= 'none' then
  return {'corrupt', KEYS[3] .. ' (the dead letters) is a ' .. kind .. ', not a hash'}
end
local commands = cjson.decode(ARGV[4])
-- Nothing above wrote anything.  From here on nothing may fail: Redis keeps what
-- a failing script wrote, so a failure now would leave a batch half applied.
local failed = {}
for c = 1, #commands do
  -- Any error of a command or a handler script is that command's refused write.
  local ok, result = pcall(run_command, commands[c])
  if not ok then result = {err = tostring(result)} end
  if type(result) == 'table' and result.err then
    failed[#failed + 1] = tostring(c)
    failed[#failed + 1] = tostring(result.err)
  end
end
local i = 5
local letters = tonumber(ARGV[i])
i = i + 1
for _ = 1, letters do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
local resolved = tonumber(ARGV[i])
i = i + 1
for _ = 1, resolved do
  redis.call('HDEL', KEYS[3], ARGV[i])
  i = i + 1
end
if ARGV[i] ~= '' then
  redis.call('HSET', KEYS[1], 'position', ARGV[i], 'updated_at', ARGV[i + 1])
  if ARGV[i + 2] ~= '' then redis.call('HSET', KEYS[1], 'event_time', ARGV[i + 2]) end
  redis.call('HINCRBY', KEYS[1], 'events', ARGV[i + 3])
end
local extra = ARGV[i] == '' and ARGV[i + 1] or ARGV[i + 4]
if #failed > 0 then
  if replaying then
    redis.call('HSET', KEYS[3], ARGV[1], extra)
  else
    local owners = {}
    for owner in string.gmatch(extra, '[^,]+') do owners[#owners + 1] = owner end
    local entries = {}
    for f = 1, #failed, 2 do
      entries[#entries + 1] = {owners[tonumber(failed[f])], failed[f + 1]}
    end
    redis.call('HSET', KEYS[1], 'pending',
      cjson.encode({previous = ARGV[1], position = ARGV[i], failures = entries}))
  end
end
return {'ok', failed}
"""

#: The body of a projection's batch commit and of a dead letter's replay.
APPLY_COMMIT = _COMMIT_GUARD + _APPLY
APPLY_REPLAY = _REPLAY_GUARD + _APPLY

#: Parks the dead letters of a batch's pending failures and clears them, if the
#: checkpoint still records those very failures (``ARGV[1]``, the batch position).
SETTLE = """
local pending = redis.call('HGET', KEYS[1], 'pending')
if not pending then return 0 end
if cjson.decode(pending)['position'] ~= ARGV[1] then return -1 end
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('HDEL', KEYS[1], 'pending')
return 1
"""


#: What every batch script runs each queued command through (``batch_source``):
#: ``[n]`` arguments become ``ARGV[n]``, a handler script runs as the local
#: function it was compiled into, anything else goes to ``redis.pcall``.  Callers
#: wrap it in ``pcall``: any error is that command's refused write.
_RUN_COMMAND = """
local function run_command(args)
  for a = 1, #args do
    if type(args[a]) == 'table' then args[a] = ARGV[args[a][1]] end
  end
  if args[1] == 'EVALSHA' then
    local script = handler_scripts[args[2]]
    local nkeys = tonumber(args[3])
    if script == nil then return {err = 'unknown script ' .. args[2]} end
    return script({unpack(args, 4, 3 + nkeys)}, {unpack(args, 4 + nkeys, #args)})
  end
  return redis.pcall(unpack(args))
end
"""


def batch_source(body: str, scripts: Iterable[RedisScript]) -> str:
    """A batch script: ``scripts`` compiled in as ``handler_scripts``, ``run_command``, ``body``.

    Shared with the Kafka-fed read models (``messaging``), whose commit fences
    per-partition offsets instead of one checkpoint but runs the same commands.
    """
    # The handler script's body sees its own KEYS and ARGV as function parameters.
    entries = [
        f"  ['{script.sha}'] = function(KEYS, ARGV)\n{script.source}\n  end,"
        for script in sorted(scripts, key=lambda s: s.sha)
    ]
    return "local handler_scripts = {\n" + "\n".join(entries) + "\n}\n" + _RUN_COMMAND + body


def encode_commands(
    commands: Sequence[Sequence[Any]], first_binary: int
) -> tuple[bytes, list[bytes]]:
    """Queued commands as one JSON array of arrays of strings, and the arguments JSON
    cannot carry (bytes that are not UTF-8), which travel as ``ARGV[first_binary]``
    on and stand in the JSON as ``[n]`` for ``ARGV[n]``.  ``DataError`` for an
    argument Redis cannot take."""
    binary: list[bytes] = []
    try:
        encoded = orjson.dumps(
            [
                [arg if type(arg) is str else _json_arg(arg, binary, first_binary) for arg in c]
                for c in commands
            ]
        )
    except orjson.JSONEncodeError as error:  # a str with a lone surrogate
        raise DataError(f"a queued command has an argument Redis cannot take: {error}") from error
    return encoded, binary


def encode_args(
    guard: tuple[str, str, str],
    commands: Sequence[tuple[Any, ...]],
    dead_letters: Sequence[tuple[str, str]],
    resolved: Sequence[str],
    checkpoint: tuple[str, str, str, int] | None,
    extra: str,
) -> list[Any]:
    """The ARGV of a commit or replay script (the layout is in the module docstring)."""
    tail: list[Any] = [len(dead_letters)]
    for field, value in dead_letters:
        tail.append(field)
        tail.append(value)
    tail.append(len(resolved))
    tail.extend(resolved)
    if checkpoint is None:
        tail.append("")
    else:
        tail.extend(checkpoint)
    tail.append(extra)
    # Arguments JSON cannot carry go last; their ARGV index follows everything else.
    batch, binary = encode_commands(commands, len(guard) + 1 + len(tail) + 1)
    return [*guard, batch, *tail, *binary]


def _json_arg(value: Any, binary: list[bytes], first_binary: int) -> str | list[int]:
    """One command argument as the string Redis gets, as redis-py would send it."""
    if type(value) is int:  # the common case after text: counters, amounts, scores
        return str(value)
    if isinstance(value, str):
        return str.__str__(value)  # its text, as redis-py encodes it (not its __str__)
    if isinstance(value, bool):
        # A bool is an int, but "True" is rarely what was meant: redis-py refuses it.
        raise DataError(
            "Invalid input of type: 'bool'. Convert to a bytes, string, int or float first."
        )
    if isinstance(value, (int, float)):
        # Numbers as redis-py writes them (repr for floats): as JSON numbers, Lua
        # would turn them into doubles and back, changing 0.1 and integers past 2**53.
        return repr(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        try:
            return data.decode()
        except UnicodeDecodeError:
            binary.append(data)
            return [first_binary + len(binary) - 1]
    raise DataError(
        f"Invalid input of type: '{type(value).__name__}'. "
        "Convert to a bytes, string, int or float first."
    )
