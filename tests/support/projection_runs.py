"""Running projections in tests: wait on conditions with a deadline, never on time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from psycopg import sql

from eventstore import EventStore, Position, PostgresEventStore
from projections import Phase, ProjectionRunner

#: A hang guard, not a timing assertion: conditions normally hold in milliseconds.
DEADLINE = 60.0
_POLL = 0.01


async def until(condition: Callable[[], bool], *, deadline: float = DEADLINE) -> None:
    """Return once ``condition()`` holds; fail the test if it never does."""
    async with asyncio.timeout(deadline):
        while not condition():  # noqa: ASYNC110 (runner states have no event to await)
            await asyncio.sleep(_POLL)


async def last_committed(store: EventStore) -> Position | None:
    """The position of the last committed event, visible in the feed yet or not.

    ``store.head()`` is the last event the gap-safe feed may hand out: it stops
    below the oldest transaction still open in the whole cluster.  Any transaction
    that takes an xid (another test's task, a subprocess, autovacuum's ANALYZE
    writing statistics) while a test appends holds the head back at the events
    appended before it, and a runner that is live at that head is rightly caught up
    with the visible feed while the test's later events are still to come.
    """
    if not isinstance(store, PostgresEventStore):
        return await store.head()
    async with store.connection() as connection:
        cursor = await connection.execute(
            sql.SQL(
                "SELECT transaction_id::text::bigint, global_position FROM {}"
                " ORDER BY transaction_id DESC, global_position DESC LIMIT 1"
            ).format(sql.Identifier(store.schema, "events"))
        )
        row = await cursor.fetchone()
    return Position(row[0], row[1]) if row else None


async def feed_shows(store: EventStore, through: Position | None) -> bool:
    """Whether the gap-safe feed's head has reached ``through`` (``last_committed``)."""
    head = await store.head()
    return through is None or (head is not None and head >= through)


async def feed_settled(store: EventStore, *, deadline: float = DEADLINE) -> Position | None:
    """Wait until the feed shows every event committed so far; the last one's position.

    A command run "until caught up" stops at the head it can see when it starts
    (product behaviour): a transaction elsewhere on the shared server that took its
    xid before these events committed holds that head back.  Once the feed shows
    them it shows them for good (a transaction that takes its xid later has a
    larger one), so a test that waits here before such a command may expect it to
    reach ``last_committed``.
    """
    through = await last_committed(store)
    async with asyncio.timeout(deadline):
        while not await feed_shows(store, through):  # noqa: ASYNC110 (a database state)
            await asyncio.sleep(_POLL)
    return through


async def is_caught_up(
    runner: ProjectionRunner,
    store: EventStore,
    names: Iterable[str],
    through: Position | None,
) -> bool:
    """Every projection of ``names`` is live at the head, and the head reached ``through``."""
    head = await store.head()
    if through is not None and (head is None or head < through):
        return False
    states = runner.states
    return all(states[n].phase is Phase.LIVE and states[n].position == head for n in names)


async def run_until_caught_up(
    runner: ProjectionRunner,
    store: EventStore,
    *,
    names: Iterable[str] | None = None,
    deadline: float = DEADLINE,
) -> None:
    """Run ``runner`` until every projection (or ``names``) is live at the head, then stop.

    The head must have reached every event committed before the call: live at a
    head held back by an open transaction is not caught up with what the test wrote.
    """
    through = await last_committed(store)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    wanted = set(names) if names is not None else set(runner.states)

    async def caught_up() -> None:
        while not await is_caught_up(runner, store, wanted, through):
            if task.done():
                await task
                raise AssertionError(f"the runner ended early: {runner.states}")
            await asyncio.sleep(_POLL)

    try:
        await asyncio.wait_for(caught_up(), deadline)
    finally:
        stop.set()
        await task
