"""``chronik sagas list|show|retry`` and ``chronik run`` driving sagas, as a user runs them.

The demo starts four transfers (one refunded: June's account is closed).  A fifth
one is made to fail in-process: its target is frozen and its source is frozen
after the debit, so the refund is refused too and the saga needs a person.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from cli_runner import Chronik

from aggregates import Repository
from aggregates.ledger import Ledger
from eventstore import PostgresEventStore
from sagas import SagaEngine, start_saga
from sagas.shipped import TRANSFER, transfer_data


@pytest.fixture(scope="module")
def demo(chronik: Chronik) -> dict[str, Any]:
    report = chronik("demo", "--json").json()
    assert isinstance(report, dict)
    return report


class _Stop(BaseException):
    pass


@pytest.fixture(scope="module")
async def failed_saga(
    demo: dict[str, Any],
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
    cli_schema: str,
) -> str:
    store = await make_pg_store(cli_schema)
    repo = Repository(store, [Ledger])
    await repo.create(Ledger, "cli-a", lambda ledger: (ledger.open("A", "EUR"), ledger.deposit(50)))
    await repo.create(Ledger, "cli-b", lambda ledger: (ledger.open("B", "EUR"), ledger.freeze("x")))
    await start_saga(repo, TRANSFER, "cli-stuck", transfer_data("cli-a", "cli-b", 20, "EUR"))

    def stop_after_the_debit(saga_id: str, where: str) -> None:
        if where == "after":
            raise _Stop

    with pytest.raises(_Stop):
        await SagaEngine(repo, [TRANSFER], on_commit=stop_after_the_debit).drive("cli-stuck")
    await repo.update(Ledger, "cli-a", lambda ledger: ledger.freeze("investigation"))
    assert await SagaEngine(repo, [TRANSFER]).drive("cli-stuck") == "failed"
    return "cli-stuck"


def test_list_shows_the_demo_transfers(chronik: Chronik, demo: dict[str, Any]) -> None:
    assert demo["transfers"] == 4
    rows = {r["saga_id"]: r for r in chronik("sagas", "list", "--json").json()}
    statuses = {rows[f"demo-transfer-{n}"]["status"] for n in range(1, 4)}
    assert statuses == {"completed"}
    assert rows["demo-transfer-4"]["status"] == "compensated"
    compensated = chronik("sagas", "list", "--status", "compensated", "--json").json()
    assert [r["saga_id"] for r in compensated] == ["demo-transfer-4"]
    table = chronik("sagas", "list")
    assert table.code == 0, table.describe()
    assert table.stdout.splitlines()[0].split()[:3] == ["ID", "SAGA", "STATUS"]
    assert "demo-transfer-4  transfer  compensated" in table.stdout


def test_show_gives_steps_and_the_events_they_caused(
    chronik: Chronik, demo: dict[str, Any]
) -> None:
    report = chronik("sagas", "show", "demo-transfer-4", "--json").json()
    assert report["status"] == "compensated"
    assert [(s["step"], s["phase"], s["outcome"]) for s in report["steps"]] == [
        ("debit", "do", "completed"),
        ("credit", "do", "failed"),
        ("debit", "undo", "compensated"),
    ]
    withdrawn, refunded = report["steps"][0]["caused"][0], report["steps"][2]["caused"][0]
    assert withdrawn["stream_id"] == refunded["stream_id"] == "ledger-dana"
    assert refunded["version"] == withdrawn["version"] + 1
    history = chronik("history", withdrawn["stream_id"], "--json").json()
    by_version = {e["version"]: e for e in history}
    assert by_version[withdrawn["version"]]["event_id"] == withdrawn["event_id"]
    text = chronik("sagas", "show", "demo-transfer-4")
    assert "ledger-dana@" in text.stdout and "ledger-closed" in text.stdout
    # The instance is an aggregate like any other: state and time travel work.
    state = chronik("state", "saga", "demo-transfer-4", "--at-version", "2", "--json").json()
    assert state["state"]["status"] == "running" and state["state"]["completed"] == [0]


def test_show_of_an_unknown_saga_is_not_found(chronik: Chronik, demo: dict[str, Any]) -> None:
    result = chronik("sagas", "show", "no-such-saga")
    assert result.code == 3, result.describe()
    assert "no-such-saga" in result.stderr


async def test_retry_after_fixing_the_cause(
    chronik: Chronik,
    failed_saga: str,
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
    cli_schema: str,
) -> None:
    failed = (
        await asyncio.to_thread(chronik, "sagas", "list", "--status", "failed", "--json")
    ).json()
    assert [r["saga_id"] for r in failed] == [failed_saga]
    assert "frozen" in failed[0]["reason"]
    # Not fixed yet: the refund is refused again, and the command says so.
    again = await asyncio.to_thread(chronik, "sagas", "retry", failed_saga, "--json")
    assert again.code == 1, again.describe()
    assert json.loads(again.stdout)["status"] == "failed"
    repo = Repository(await make_pg_store(cli_schema), [Ledger])
    await repo.update(Ledger, "cli-a", lambda ledger: ledger.unfreeze("cleared"))
    fixed = await asyncio.to_thread(
        chronik, "sagas", "retry", failed_saga, "--reason", "unfrozen", "--json"
    )
    report = fixed.json()
    assert report["status"] == "compensated"
    # The refund was refused twice (frozen), then done after the fix.
    assert [(s["step"], s["outcome"]) for s in report["steps"]] == [
        ("debit", "completed"),
        ("credit", "failed"),
        ("debit", "saga-failed"),
        ("debit", "saga-failed"),
        ("debit", "compensated"),
    ]
    assert (await repo.load(Ledger, "cli-a")).balance == 50
    completed = await asyncio.to_thread(chronik, "sagas", "retry", "demo-transfer-1")
    assert completed.code == 1 and "only a failed saga" in completed.stderr


def test_run_drives_sagas_until_caught_up(chronik: Chronik, demo: dict[str, Any]) -> None:
    result = chronik("run", "--until-caught-up", "--json")
    assert result.code == 0, result.describe()
    assert "sagas:" in result.stderr
