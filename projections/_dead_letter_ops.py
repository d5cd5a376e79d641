"""Listing and replaying dead letters (after the cause was fixed)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eventstore import Position

from ._apply import Sleep, apply_with_retries
from ._dead_letters import DeadLetter
from ._errors import (
    DeadLetterNotFoundError,
    PartialDeadLetterError,
    ProjectionDefinitionError,
    ProjectionNotReadyError,
)
from ._projection import Projection
from ._read_model import ReadModel
from ._slots import SlotState, check_name


@dataclass(frozen=True, slots=True)
class DeadLetterReplay:
    """What a replay did: positions applied and unparked, and those that failed again."""

    replayed: list[Position] = field(default_factory=list)
    failed: list[DeadLetter] = field(default_factory=list)


async def list_dead_letters(
    read_model: ReadModel[Any], name: str | None = None, *, all_slots: bool = False
) -> list[DeadLetter]:
    """Parked events of one projection (or all), by projection and position.

    By default only the active and building slots' dead letters: those of retired
    slots no longer matter to readers.
    """
    names = [check_name(name)] if name is not None else await read_model.projection_names()
    letters: list[DeadLetter] = []
    for projection in names:
        meta = await read_model.meta(projection)
        for info in sorted(meta.slots.values(), key=lambda s: (s.version, s.generation)):
            current = info.slot == meta.active or info.state is SlotState.BUILDING
            if all_slots or current:
                letters.extend(await read_model.dead_letters(projection, info.slot))
    return letters


async def replay_dead_letters(
    projection: Projection[Any],
    read_model: ReadModel[Any],
    *,
    positions: Iterable[Position] | None = None,
    slot: str | None = None,
    force: bool = False,
    sleep: Sleep = asyncio.sleep,
) -> DeadLetterReplay:
    """Run parked events through the (fixed) handlers again, oldest first.

    Each success is applied and unparked in one atomic step of the read model, so a
    replay interrupted half-way, or run twice, applies no event twice.  Failures stay
    parked with the new error.  The events are applied after later ones: handlers
    whose writes do not commute (a "set" where a later event set the same field)
    should be replayed by a rebuild instead.  A blocking dead letter (the projection
    stopped at it) moves the checkpoint on; restart its runner afterwards.  The
    default slot is the one of the projection's version: active, or being built.

    A partial dead letter (the read model refused one of its writes after the
    others landed) would apply those others twice: unless ``force``, the replay is
    refused with ``PartialDeadLetterError`` before anything is applied.

    An unreadable dead letter (the store could not decode the stored event) has no
    data to apply: it stays parked and is listed in ``failed``.
    """
    name = projection.name
    meta = await read_model.meta(name)
    if slot is None:
        current = meta.current_slot(projection.version)
        if current is None:
            raise ProjectionNotReadyError(
                name, f"no slot of version {projection.version} to replay dead letters into"
            )
        slot = current.slot
    info = meta.slots.get(slot)
    if info is None or info.version != projection.version:
        raise ProjectionDefinitionError(
            name,
            f"slot {slot} is not a slot of version {projection.version} "
            f"(it is {'missing' if info is None else f'version {info.version}'})",
        )
    letters = await read_model.dead_letters(name, slot)
    if positions is not None:
        wanted = set(positions)
        missing = wanted - {d.position for d in letters}
        if missing:
            raise DeadLetterNotFoundError(name, min(missing))
        letters = [d for d in letters if d.position in wanted]
    partial = [d for d in letters if d.partial]
    if partial and not force:
        raise PartialDeadLetterError(name, partial[0].position)
    result = DeadLetterReplay()
    for letter in letters:
        if letter.unreadable:
            # Its stored data cannot be decoded; the letter holds none to apply.
            result.failed.append(letter)
            continue
        writes = read_model.new_writes(name, slot)
        failure = await apply_with_retries(projection, letter.event, writes, 0, sleep=sleep)
        if failure is not None:
            error, trace, _ = failure
            again = letter.failed_again(error, trace, datetime.now(UTC))
            await read_model.park(name, slot, [again])
            result.failed.append(again)
            continue
        await read_model.commit_replay(name, slot, letter, writes)
        result.replayed.append(letter.position)
    return result
