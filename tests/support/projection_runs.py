"""Running projections in tests: wait on conditions with a deadline, never on time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from eventstore import EventStore
from projections import Phase, ProjectionRunner

#: A hang guard, not a timing assertion: conditions normally hold in milliseconds.
DEADLINE = 60.0
_POLL = 0.01


async def until(condition: Callable[[], bool], *, deadline: float = DEADLINE) -> None:
    """Return once ``condition()`` holds; fail the test if it never does."""
    async with asyncio.timeout(deadline):
        while not condition():  # noqa: ASYNC110 (runner states have no event to await)
            await asyncio.sleep(_POLL)


async def run_until_caught_up(
    runner: ProjectionRunner,
    store: EventStore,
    *,
    names: Iterable[str] | None = None,
    deadline: float = DEADLINE,
) -> None:
    """Run ``runner`` until every projection (or ``names``) is live at the head, then stop."""
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    wanted = set(names) if names is not None else set(runner.states)

    async def caught_up() -> None:
        while True:
            head = await store.head()
            states = runner.states
            if all(states[n].phase is Phase.LIVE and states[n].position == head for n in wanted):
                return
            if task.done():
                await task
                raise AssertionError(f"the runner ended early: {runner.states}")
            await asyncio.sleep(_POLL)

    try:
        await asyncio.wait_for(caught_up(), deadline)
    finally:
        stop.set()
        await task
