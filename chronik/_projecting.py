"""Running projections for the command: until caught up, or until a signal; with progress.

The projections package does the work (runner, rebuild, replay); this module adds
what a person at a terminal needs around it: a stop on SIGINT/SIGTERM, a progress
bar fed by polling the slot's event count, and "stop once caught up" for ``demo``
and ``run --until-caught-up``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from eventstore import START, EventStore
from projections import Phase, Projection, ProjectionRunner, ReadModel, SlotInfo, SlotState

from ._errors import CommandError
from ._interrupts import stop_on_signals
from ._progress import Progress, alongside

Target = tuple[Projection[Any], ReadModel[Any]]
SlotPicker = Callable[[dict[str, SlotInfo]], SlotInfo | None]

__all__ = [
    "Target",
    "abandon_slot",
    "drop_abandoned_slots",
    "run_projections",
    "slot_progress",
    "stop_on_signals",
]

log = logging.getLogger("chronik")
_POLL_SECONDS = 0.2


async def abandon_slot(read_model: ReadModel[Any], name: str, slot: str) -> None:
    """Mark a half-built slot abandoned (never the active one): it will not be swapped in."""
    meta = await read_model.meta(name)
    info = meta.slots.get(slot)
    if info is not None and slot != meta.active and info.state is SlotState.BUILDING:
        await read_model.set_slot_state(name, slot, SlotState.ABANDONED)


async def drop_abandoned_slots(read_model: ReadModel[Any], name: str) -> list[str]:
    """Delete the slots interrupted or replaced builds left behind; their ids.

    Only abandoned slots: nothing reads them and nothing will activate them.  A
    build still writing into one (a rebuild replaced by a newer one) fails at
    its swap either way.
    """
    meta = await read_model.meta(name)
    dropped = []
    for info in meta.slots.values():
        if info.state is SlotState.ABANDONED and info.slot != meta.active:
            await read_model.drop_slot(name, info.slot)
            dropped.append(info.slot)
    return sorted(dropped)


@contextlib.asynccontextmanager
async def slot_progress(
    read_model: ReadModel[Any], name: str, pick: SlotPicker, bar: Progress
) -> AsyncIterator[None]:
    """Advance ``bar`` as the picked slot's event count grows, while the body runs."""

    shown = 0

    async def catch_up() -> None:
        nonlocal shown
        info = pick((await read_model.meta(name)).slots)
        if info is not None and info.events > shown:
            bar.advance(info.events - shown)
            shown = info.events

    async def follow() -> None:
        while True:
            await asyncio.sleep(_POLL_SECONDS)
            await catch_up()

    async with alongside(name, follow, catch_up):
        yield


async def run_projections(
    store: EventStore,
    runner: ProjectionRunner,
    targets: Sequence[Target],
    stop: asyncio.Event,
    *,
    until_caught_up: bool,
    bar: Progress | None = None,
) -> None:
    """Run until ``stop`` (a signal), or with ``until_caught_up`` until every projection
    has reached the feed's head as it was at the start."""
    watcher = None
    if until_caught_up:
        watcher = asyncio.create_task(_stop_when_caught_up(store, runner, targets, stop, bar))
    announcer = asyncio.create_task(_announce_standby(runner))
    try:
        await runner.run(stop)
    finally:
        announcer.cancel()
        if watcher is not None and not watcher.done():
            watcher.cancel()
    if watcher is not None:
        # The watcher stops the runner when a projection fails; its error says why.
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def _announce_standby(runner: ProjectionRunner) -> None:
    """Say when a projection waits because another process leads it.

    Otherwise a second ``chronik run`` sits silent, as if hung.
    """
    waiting: set[str] = set()
    while True:
        now = {name for name, state in runner.states.items() if state.phase is Phase.STANDBY}
        if now - waiting:
            log.info(
                "standing by for %s: another runner leads %s; this one takes over if it stops",
                ", ".join(sorted(now - waiting)),
                "it" if len(now - waiting) == 1 else "them",
            )
        waiting = now
        await asyncio.sleep(_POLL_SECONDS)


async def _stop_when_caught_up(
    store: EventStore,
    runner: ProjectionRunner,
    targets: Sequence[Target],
    stop: asyncio.Event,
    bar: Progress | None,
) -> None:
    head = await store.head() or START
    total = 0
    if bar is not None:
        for projection, model in targets:
            info = (await model.meta(projection.name)).current_slot(projection.version)
            total += await store.count_after(info.position if info else None)
        total -= len(targets) * await store.count_after(head)  # up to the head, as below
        bar.set_total(max(total, 0))
    while not stop.is_set():
        pending = 0
        # Done is what was left at the start minus what is left now (up to the head
        # as it was): right however far the runner got before the first look.
        left = 0
        states = runner.states
        for projection, model in targets:
            state = states[projection.name]
            if state.phase in (Phase.STOPPED, Phase.RETIRED):
                continue
            if state.restarts:
                stop.set()
                raise CommandError(
                    f"projection {projection.name!r} failed: {state.error}",
                    "fix the cause, then run 'chronik run' again (it resumes from its checkpoint)",
                )
            info = (await model.meta(projection.name)).current_slot(projection.version)
            if info is None or info.state is not SlotState.ACTIVE or info.position < head:
                pending += 1
                if bar is not None:
                    start = info.position if info else None
                    left += await store.count_after(start) - await store.count_after(head)
        if bar is not None:
            bar.advance(max(total - left - bar.done, 0))
        if pending == 0:
            stop.set()
            return
        await asyncio.sleep(_POLL_SECONDS)
