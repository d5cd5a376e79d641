"""Recovering from a projection bug with the command: run, dead letters, replay, rebuild."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from cli_runner import Chronik
from support.projection_runs import feed_settled

from aggregates import Repository
from aggregates.ledger import Ledger
from eventstore import PostgresEventStore
from projections import RedisReadModel

V1 = ("--app", "cli_bug_app:app_v1")
V2 = ("--app", "cli_bug_app:app_v2")


@pytest.fixture(scope="module")
async def ledgers(
    chronik: Chronik, cli_schema: str, make_pg_store: Callable[..., Awaitable[PostgresEventStore]]
) -> dict[str, int]:
    """Two ledgers; their true balances in cents.  One was frozen (the poison event)."""
    assert chronik("init").code == 0
    store = await make_pg_store(schema=cli_schema)
    repository = Repository(store, [Ledger])
    a, b = f"a{uuid.uuid4().hex[:6]}", f"b{uuid.uuid4().hex[:6]}"
    await repository.create(Ledger, a, lambda x: (x.open("Ann", "EUR"), x.deposit("100.00")))
    await repository.update(Ledger, a, lambda x: x.withdraw("30.25"))
    await repository.create(Ledger, b, lambda x: (x.open("Ben", "EUR"), x.deposit("10.00")))
    await repository.update(Ledger, b, lambda x: x.freeze("fraud check"))
    return {f"ledger-{a}": 6975, f"ledger-{b}": 1000}


async def _read(redis_url: str, schema: str, name: str) -> dict[str, Any]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return await RedisReadModel(client, prefix=f"{schema}:").snapshot(name)
    finally:
        await client.aclose()


def _cents(snapshot: dict[str, Any]) -> dict[str, int]:
    return {stream: int(value) for stream, value in snapshot["cents"].items()}


async def test_recover_from_a_projection_bug(
    chronik: Chronik,
    ledgers: dict[str, int],
    redis_url: str,
    cli_schema: str,
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
) -> None:
    # `run --until-caught-up` stops at the head it can see: wait until no transaction
    # elsewhere on the shared server holds it below the seeded events, so that every
    # run and rebuild below must reach the last of them (lag 0 is then guaranteed).
    last = await feed_settled(await make_pg_store(schema=cli_schema))
    # 1. The buggy release projects: withdrawals were added, a freeze crashed.
    first = chronik("run", "--until-caught-up", *V1)
    assert first.code == 0, first.describe()
    wrong = _cents(await _read(redis_url, cli_schema, "balances"))
    assert wrong != ledgers
    assert sum(wrong.values()) == 6975 + 1000 + 2 * 3025

    # 2. Status shows the parked event; dead letters name it.
    status = {row["name"]: row for row in chronik("projections", "status", "--json", *V1).json()}
    assert status["balances"]["lag_events"] == 0
    assert status["balances"]["checkpoint"] == str(last)
    assert status["freezes"]["dead_letters"] == 1
    letters = chronik("deadletters", "list", "--json", *V1).json()
    assert [(d["projection"], d["type"]) for d in letters] == [("freezes", "ledger.Frozen")]
    assert "cannot handle a freeze" in letters[0]["error"]

    # 3. Replaying with the bug still there fails and keeps it parked (exit 1).
    again = chronik("deadletters", "replay", "freezes", *V1)
    assert again.code == 1, again.describe()
    # ... with the fixed handler it is applied and unparked.
    fixed = chronik("deadletters", "replay", "freezes", *V2)
    assert fixed.code == 0, fixed.describe()
    assert chronik("deadletters", "list", "--json", *V2).json() == []
    frozen = await _read(redis_url, cli_schema, "freezes")
    assert frozen["frozen"] == [next(s for s, c in ledgers.items() if c == 1000)]

    # 4. What-if: v2 into a scratch copy, compared with the live (buggy) one.
    what_if = chronik("replay", "balances", "--into", "fix-1", "--diff", "--json", *V2).json()
    assert what_if["identical"] is False
    assert what_if["live_checkpoint"] == what_if["scratch_checkpoint"]
    assert list(what_if["changed"]) == ["cents"]
    assert what_if["changed"]["cents"] == {
        "live": {s: str(c) for s, c in wrong.items()},
        "scratch": {s: str(c) for s, c in ledgers.items()},
    }
    human = chronik("replay", "balances", "--into", "fix-1", "--diff", *V2)
    assert "1 key(s) differ" in human.stdout, human.describe()
    assert _cents(await _read(redis_url, cli_schema, "balances")) == wrong  # live untouched

    # 5. Rebuild with the fix: built beside the live slot, swapped in.
    rebuilt = chronik("rebuild", "balances", "--json", *V2).json()
    assert rebuilt["version"] == 2
    assert _cents(await _read(redis_url, cli_schema, "balances")) == ledgers
    status = {row["name"]: row for row in chronik("projections", "status", "--json", *V2).json()}
    assert status["balances"]["active_version"] == 2
    assert status["balances"]["lag_events"] == 0
    assert status["balances"]["checkpoint"] == str(last)
    table = chronik("projections", "status", *V2)
    assert table.code == 0 and "balances" in table.stdout


def test_unknown_projection_is_not_found(chronik: Chronik, ledgers: dict[str, int]) -> None:
    for args in (
        ("rebuild", "nope"),
        ("replay", "nope", "--into", "x"),
        ("deadletters", "replay", "nope"),
    ):
        result = chronik(*args, *V2)
        assert result.code == 3, result.describe()
        assert "known: balances, freezes" in result.stderr


def test_bad_scratch_name_is_a_usage_error(chronik: Chronik, ledgers: dict[str, int]) -> None:
    result = chronik("replay", "balances", "--into", "../evil", *V2)
    assert result.code == 2, result.describe()


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_cleanly_on_signals(
    chronik: Chronik, ledgers: dict[str, int], signal_number: int
) -> None:
    process = chronik.start("run", *V2)
    # A silent, hung process must fail the test, not hang it.
    watchdog = threading.Timer(90, process.kill)
    watchdog.start()
    try:
        # Wait until it leads its projections (logged on stderr), then signal.
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "leading" not in seen and time.monotonic() < deadline:
            seen += process.stderr.readline()
        assert "leading" in seen, seen
        process.send_signal(signal_number)
        out, err = process.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, seen + err
    assert "finished" in out
