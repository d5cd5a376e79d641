"""Why the CLI tests wait for ``feed_settled`` before ``run --until-caught-up``: a
transaction elsewhere on the server that holds an xid holds the feed's head back,
and the command stops at the head it can see (product behaviour).  Reproduced here
with such a transaction held open on purpose."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import psycopg
from cli_runner import Chronik
from support.projection_runs import feed_settled, last_committed

from aggregates import Repository
from aggregates.ledger import Ledger
from eventstore import PostgresEventStore


async def test_run_stops_at_a_held_back_head_and_reaches_the_end_once_settled(
    chronik: Chronik,
    pg_dsn: str,
    cli_schema: str,
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
) -> None:
    assert chronik("init").code == 0
    store = await make_pg_store(schema=cli_schema)
    repository = Repository(store, [Ledger])
    await repository.create(Ledger, f"a{uuid.uuid4().hex[:6]}", lambda x: x.open("Ann", "EUR"))
    before = await feed_settled(store)
    async with await psycopg.AsyncConnection.connect(pg_dsn) as elsewhere:
        # Another session's transaction that took its xid before the next events commit.
        await elsewhere.execute("SELECT pg_current_xact_id()")
        await repository.create(Ledger, f"b{uuid.uuid4().hex[:6]}", lambda x: x.open("Ben", "EUR"))
        held = chronik("run", "--until-caught-up", "--json")
        assert held.code == 0, held.describe()
        [row] = [r for r in chronik("projections", "status", "--json").json()
                 if r["name"] == "ledger_balances"]  # fmt: skip
        assert row["checkpoint"] == str(before)  # the head it could see
        await elsewhere.rollback()
    # What a test asserting "lag 0 right after the run" met now and then.
    last = await feed_settled(store)
    assert last is not None and str(last) != str(before)
    [row] = [r for r in chronik("projections", "status", "--json").json()
             if r["name"] == "ledger_balances"]  # fmt: skip
    assert row["lag_events"] == 1
    assert chronik("run", "--until-caught-up").code == 0
    [row] = [r for r in chronik("projections", "status", "--json").json()
             if r["name"] == "ledger_balances"]  # fmt: skip
    assert (row["checkpoint"], row["lag_events"]) == (str(last), 0)
    assert last == await last_committed(store)
