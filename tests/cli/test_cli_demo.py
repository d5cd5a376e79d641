"""``chronik demo`` seeds the shipped app through the framework; the other commands read it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from cli_runner import Chronik
from support.projection_runs import feed_settled, last_committed

from eventstore import PostgresEventStore


@pytest.fixture(scope="module")
async def demo(
    chronik: Chronik, cli_schema: str, make_pg_store: Callable[..., Awaitable[PostgresEventStore]]
) -> dict[str, Any]:
    report = chronik("demo", "--json").json()
    assert isinstance(report, dict)
    # Where the last event the demo seeded is (the schema is this module's own).
    report["seeded_through"] = str(await last_committed(await make_pg_store(schema=cli_schema)))
    return report


def test_demo_seeds_a_few_hundred_events_with_legacy_and_snapshots(
    chronik: Chronik, demo: dict[str, Any]
) -> None:
    assert demo["already_seeded"] is False
    assert 300 <= demo["events"] <= 600
    assert demo["legacy_events"] == 4
    assert demo["snapshots"] >= 1
    streams = chronik("streams", "--json").json()
    assert len(streams) == demo["streams"]
    assert sum(row["version"] for row in streams) == demo["events"]
    assert {row["type"] for row in streams} == {"ledger", "order", "saga"}
    assert chronik("streams", "--type", "order", "--json").json() == [
        row for row in streams if row["type"] == "order"
    ]


async def test_demo_projects_what_it_seeded(
    chronik: Chronik,
    demo: dict[str, Any],
    cli_schema: str,
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
) -> None:
    projected = {row["projection"]: row for row in demo["projections"]}
    assert set(projected) == {"ledger_balances", "order_summaries"}
    assert projected["ledger_balances"]["persistent"] is True
    assert projected["order_summaries"]["persistent"] is False  # no MONGO_URL in tests
    status = {row["name"]: row for row in chronik("projections", "status", "--json").json()}
    assert status["ledger_balances"]["checkpoint"] == projected["ledger_balances"]["position"]
    if projected["ledger_balances"]["position"] != demo["seeded_through"]:
        # The demo projects up to the head it can see once it has seeded (as `run
        # --until-caught-up` does): a transaction elsewhere on the shared server held
        # that head below the last seeded events.  What it left is what a run then
        # projects, once the feed shows it.
        await feed_settled(await make_pg_store(schema=cli_schema))
        assert chronik("run", "--until-caught-up").code == 0
        status = {row["name"]: row for row in chronik("projections", "status", "--json").json()}
    assert status["ledger_balances"]["checkpoint"] == demo["seeded_through"]
    assert status["ledger_balances"]["lag_events"] == 0


def test_legacy_events_are_upcast_in_history_and_raw_keeps_them(
    chronik: Chronik, demo: dict[str, Any]
) -> None:
    decoded = chronik("history", "ledger-legacy-0001", "--json").json()
    raw = chronik("history", "ledger-legacy-0001", "--raw", "--json").json()
    assert [e["type"] for e in raw[:2]] == ["ledger.AccountOpened", "ledger.Deposited"]
    assert [e["schema_version"] for e in raw[:4]] == [1, 1, 1, 1]
    assert decoded[0]["type"] == "ledger.Opened"
    assert decoded[0]["data"]["owner"] == raw[0]["data"]["holder"]
    assert decoded[1]["data"]["amount"] == "1200"
    state = chronik("state", "ledger", "legacy-0001", "--json").json()
    assert Decimal(state["state"]["balance"]) == Decimal("1200") - Decimal("80.25") + Decimal(
        "45.5"
    ) + Decimal("19.99")


def test_busy_account_loads_from_a_snapshot(chronik: Chronik, demo: dict[str, Any]) -> None:
    state = chronik("state", "ledger", "acme-ops", "--json").json()
    assert state["snapshot_version"] is not None
    assert 0 < state["snapshot_version"] <= state["version"]
    # The same state replayed from scratch (at its own version, before any snapshot).
    assert state["version"] > 25
    order = chronik("state", "order", "2024-0001", "--json").json()
    assert order["type"] == "order" and order["version"] >= 1


def test_demo_twice_adds_nothing_and_prints_hints(chronik: Chronik, demo: dict[str, Any]) -> None:
    before = chronik("streams", "--json").json()
    again = chronik("demo")
    assert again.code == 0, again.describe()
    assert "already" in again.stdout
    assert "chronik state ledger" in again.stdout
    assert "in-memory MongoDB stand-in, not persisted" in again.stdout + again.stderr
    assert chronik("streams", "--json").json() == before


def test_time_travel_hints_of_the_demo_work(chronik: Chronik, demo: dict[str, Any]) -> None:
    hints = [command for command, _ in demo["try_next"] if command.startswith("chronik state")]
    assert len(hints) >= 4
    for hint in hints:
        args = [part.strip("'") for part in hint.split()[1:]]
        result = chronik(*args)
        assert result.code == 0, result.describe()
    at_cut = chronik("state", "ledger", "alice", "--at-position", demo["midpoint"], "--json")
    as_of = chronik("state", "ledger", "alice", "--as-of", demo["midpoint_time"], "--json")
    assert at_cut.json()["version"] == as_of.json()["version"]
    now = chronik("state", "ledger", "alice", "--json").json()
    assert at_cut.json()["version"] < now["version"]


def test_demo_relays_to_the_embedded_kafka_and_shows_arrivals(demo: dict[str, Any]) -> None:
    kafka = demo["kafka"]
    assert kafka["embedded"] is True  # no KAFKA_BOOTSTRAP_SERVERS in these tests
    assert kafka["published_events"] == demo["events"]
    assert sum(kafka["topics"].values()) == demo["events"]
    # One topic per aggregate type the demo wrote (ledger, order, and the sagas' own).
    assert {"chronik.ledger", "chronik.order"} <= set(kafka["topics"])
    assert all(topic.startswith("chronik.") for topic in kafka["topics"])
    assert kafka["samples"] and all(s["type"] and s["id"] for s in kafka["samples"])
