"""``projections status`` names the transaction holding the feed back, not its SQL text."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import psycopg
from cli_runner import Chronik

from eventstore import NewEvent, PostgresEventStore

SECRET = "s3cret-pw-4711"
LITERAL = "card-4111-1111"


async def test_status_shows_the_blocker_without_its_statement_text(
    chronik: Chronik,
    cli_schema: str,
    pg_dsn: str,
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
) -> None:
    assert chronik("init").code == 0
    store = await make_pg_store(schema=cli_schema)
    role = f"tmp_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(
        pg_dsn, application_name="billing-worker"
    ) as blocker:
        # An open transaction with an xid whose last statement holds a password
        # and a literal; an event committed after it waits behind it.
        pid = blocker.info.backend_pid
        await blocker.execute(f"CREATE ROLE {role}")
        await blocker.execute(
            f"/* {LITERAL} */ ALTER ROLE {role} PASSWORD '{SECRET}' VALID UNTIL 'infinity'"
        )
        await store.append(f"late-{uuid.uuid4().hex[:6]}", [NewEvent("x.Happened", {})])
        try:
            result = chronik("projections", "status", "--json")
            table = chronik("projections", "status")
        finally:
            await blocker.rollback()
    for shown in (result, table):
        assert shown.code == 0, shown.describe()
        assert SECRET not in shown.stdout + shown.stderr
        assert LITERAL not in shown.stdout + shown.stderr
    held = result.json()[0]["held_back_by"]
    assert held["pid"] == pid
    assert held["application_name"] == "billing-worker"
    assert held["statement"] == "ALTER ROLE ..."
    assert held["state"] == "idle in transaction"
    assert held["age_seconds"] >= 0
    assert "query" not in held
    assert result.json()[0]["held_back_events"] >= 1
    assert "'billing-worker'" in table.stdout and "ALTER ROLE ..." in table.stdout
    assert f"pg_cancel_backend({held['pid']})" in table.stdout
