"""Standbys take over, a broker outage is reported and marks nothing published."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from support.kafka import REAL_BROKER, consume, relay_options, until_true
from support.projection_runs import last_committed

from eventstore import NewEvent, PostgresEventStore
from messaging import MockClusterProcess, Relay, RelayPhase, decode, relay_status


@contextlib.asynccontextmanager
async def running(relay: Relay) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await task


async def caught_up(store: PostgresEventStore) -> bool:
    # The last committed event, not the feed's head: a transaction open anywhere on
    # the server holds the head back, and a relay at that head has not caught up.
    found = await relay_status(store, "test")
    return bool(found) and found[0].checkpoint == await last_committed(store)


async def test_one_leader_and_a_standby_that_takes_over(
    relay_store: PostgresEventStore, kafka_bootstrap: str, prefix: str
) -> None:
    first = Relay(relay_store, kafka_bootstrap, relay_options(prefix))
    second = Relay(relay_store, kafka_bootstrap, relay_options(prefix))
    async with running(first) as stop_first:
        await until_true(lambda: _phases(first, second, RelayPhase.LEADING, RelayPhase.STARTING))
        async with running(second):
            await until_true(lambda: _phases(first, second, RelayPhase.LEADING, RelayPhase.STANDBY))
            await relay_store.append("ledger-a", [NewEvent("x.One", {})])
            await until_true(lambda: caught_up(relay_store))
            [status] = await relay_status(relay_store, "test")
            assert status.leader_pid is not None
            stop_first.set()
            await until_true(lambda: _phases(second, first, RelayPhase.LEADING, RelayPhase.STOPPED))
            await relay_store.append("ledger-a", [NewEvent("x.Two", {})])
            await until_true(lambda: caught_up(relay_store))
    found = consume(kafka_bootstrap, [prefix + "ledger"])
    assert [decode(m.headers, m.value).type for m in found] == ["x.One", "x.Two"]


async def _phases(a: Relay, b: Relay, phase_a: RelayPhase, phase_b: RelayPhase) -> bool:
    return a.state.phase is phase_a and b.state.phase is phase_b


async def test_a_broker_outage_is_reported_and_marks_nothing_published(
    relay_store: PostgresEventStore, prefix: str
) -> None:
    if REAL_BROKER:
        return  # the outage is a killed mock cluster; a real broker cannot be killed here
    options = relay_options(prefix, delivery_timeout=2.0, backoff_initial=0.2, backoff_max=1.0)
    with MockClusterProcess() as first_cluster:
        relay = Relay(relay_store, first_cluster.bootstrap_servers, options)
        async with running(relay):
            await relay_store.append("ledger-a", [NewEvent("x.Before", {})])
            await until_true(lambda: caught_up(relay_store))
            [before] = await relay_status(relay_store, "test")
            first_cluster.kill()
            await relay_store.append("ledger-a", [NewEvent("x.During", {"i": i}) for i in range(5)])

            async def reported() -> bool:
                [status] = await relay_status(relay_store, "test")
                return status.last_error is not None

            await until_true(reported)
            [during] = await relay_status(relay_store, "test")
            assert relay.state.phase is RelayPhase.STUCK
            assert "ledger-a" in (during.last_error or "")
            assert f"'{prefix}ledger'" in (during.last_error or "")
            # Nothing of what the dead broker never acknowledged counts as published.
            assert during.checkpoint == before.checkpoint
            assert during.published_events == before.published_events
            assert during.lag_events == 5
    # A broker comes back (the mock cannot reuse the ports: a new address).
    with MockClusterProcess() as second_cluster:
        relay = Relay(relay_store, second_cluster.bootstrap_servers, options)
        async with running(relay):
            await until_true(lambda: caught_up(relay_store))
        [after] = await relay_status(relay_store, "test")
        assert after.last_error is None
        found = consume(second_cluster.bootstrap_servers, [prefix + "ledger"])
        assert [decode(m.headers, m.value).data for m in found] == [{"i": i} for i in range(5)]
