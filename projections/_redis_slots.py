"""Redis keys of the projections' bookkeeping, and the slots kept in them.

Layout, with the default prefix ``chronik:``::

    chronik:_proj:<name>:active              the active slot id (readers start here)
    chronik:_proj:<name>:slots               hash: slot id -> JSON registry record
    chronik:_proj:<name>:generations         hash: "v<version>" -> last generation handed out
    chronik:_proj:<name>:checkpoint:<slot>   hash: position, event_time, updated_at, events
    chronik:_proj:<name>:dead:<slot>         hash: position -> JSON dead letter
    chronik:<name>:<slot>:<relative key>     the slot's data

Slot changes are rare and use WATCH with MULTI/EXEC; the swap of the active
pointer checks, under WATCH, that the new slot is at least as far as the old.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from redis.exceptions import WatchError

from eventstore import START, Position

from ._errors import ProjectionError
from ._redis_reads import SCAN_COUNT, RedisReads, glob_escape, reply_text
from ._slots import ProjectionMeta, SlotInfo, SlotState, check_name, parse_slot_id

__all__ = ["SCAN_COUNT", "RedisSlots", "glob_escape", "reply_text"]


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class RedisSlots(RedisReads):
    """Slot bookkeeping of ``RedisReadModel`` (its base class); reads are in ``RedisReads``."""

    async def meta(self, name: str) -> ProjectionMeta:
        check_name(name)
        with self._translate(name):
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.get(self._active_key(name))
                pipe.hgetall(self._slots_key(name))
                active, registry = await pipe.execute()
            slots = sorted(reply_text(k) or "" for k in registry)
            async with self.client.pipeline(transaction=False) as pipe:
                for slot in slots:
                    pipe.hgetall(self._checkpoint_key(name, slot))
                checkpoints = await pipe.execute() if slots else []
        records = {reply_text(k): json.loads(v) for k, v in registry.items()}
        infos = {
            slot: _slot_info(
                slot, records[slot], {reply_text(k): reply_text(v) for k, v in ck.items()}
            )
            for slot, ck in zip(slots, checkpoints, strict=True)
        }
        return ProjectionMeta(name, reply_text(active), infos)

    async def projection_names(self) -> list[str]:
        pattern = glob_escape(f"{self.prefix}_proj:") + "*" + glob_escape(":slots")
        start, end = len(f"{self.prefix}_proj:"), -len(":slots")
        names: set[str] = set()
        with self._translate("(all)"):
            async for key in self.client.scan_iter(match=pattern, count=SCAN_COUNT):
                names.add((reply_text(key) or "")[start:end])
        return sorted(names)

    # -- slots ---------------------------------------------------------------

    async def create_slot(
        self, name: str, version: int, from_position: Position = START
    ) -> SlotInfo:
        check_name(name)
        with self._translate(name):
            # A counter, not "highest slot + 1": a dropped slot's id is never handed
            # out again, so a new build can never meet data a failed drop left over.
            generation = int(
                await self.client.hincrby(self._meta_key(name, "generations"), f"v{version}", 1)
            )
            info = SlotInfo.new_build(version, generation, from_position)
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(self._slots_key(name), info.slot, json.dumps(info.registry_record()))
                pipe.hset(
                    self._checkpoint_key(name, info.slot),
                    mapping={
                        "position": str(from_position),
                        "updated_at": info.registry_record()["created_at"],
                        "events": 0,
                    },
                )
                await pipe.execute()
        return info

    async def set_slot_state(self, name: str, slot: str, state: SlotState) -> None:
        if state is SlotState.ACTIVE:
            raise ValueError("slots become active through activate(), which checks they caught up")
        slots_key = self._slots_key(name)
        with self._translate(name):
            while True:
                async with self.client.pipeline(transaction=True) as pipe:
                    await pipe.watch(slots_key, self._active_key(name))
                    record = reply_text(await pipe.hget(slots_key, slot))
                    if record is None:
                        raise ProjectionError(name, f"there is no slot {slot}")
                    if reply_text(await pipe.get(self._active_key(name))) == slot:
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
                current = reply_text(await pipe.get(active_key))
                if current == slot:
                    return True
                records = {
                    reply_text(k): json.loads(v) for k, v in (await pipe.hgetall(slots_key)).items()
                }
                if slot not in records:
                    raise ProjectionError(name, f"there is no slot {slot}")
                if records[slot]["state"] == SlotState.ABANDONED:
                    return False  # a newer build of its version replaced it
                mine = reply_text(await pipe.hget(self._checkpoint_key(name, slot), "position"))
                if current is not None:
                    await pipe.watch(self._checkpoint_key(name, current))
                    theirs = reply_text(
                        await pipe.hget(self._checkpoint_key(name, current), "position")
                    )
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
            if reply_text(await self.client.get(self._active_key(name))) == slot:
                raise ProjectionError(name, f"slot {slot} is active and cannot be dropped")
            pattern = glob_escape(self.namespace(name, slot)) + "*"
            chunk: list[Any] = []
            async for key in self.client.scan_iter(match=pattern, count=SCAN_COUNT):
                chunk.append(key)
                if len(chunk) >= SCAN_COUNT:
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
                    match=glob_escape(pattern) + "*", count=SCAN_COUNT
                ):
                    chunk.append(key)
                    if len(chunk) >= SCAN_COUNT:
                        await self.client.unlink(*chunk)
                        chunk = []
                if chunk:
                    await self.client.unlink(*chunk)


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
