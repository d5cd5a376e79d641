"""init, streams and history: the commands that need only the event store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from cli_bank_app import Credited, Debited
from cli_runner import Chronik

from eventstore import NewEvent, PostgresEventStore

APP = ("--app", "cli_bank_app:app")


@pytest.fixture(scope="module")
async def seeded(
    chronik: Chronik, cli_schema: str, make_pg_store: Callable[..., Awaitable[PostgresEventStore]]
) -> PostgresEventStore:
    first = chronik("init")
    assert first.code == 0, first.describe()
    store = await make_pg_store(schema=cli_schema)
    # bank-1 starts with an event as release 1 wrote it: cents, schema v1.
    await store.append("bank-1", [NewEvent("bank.Credited", {"cents": 1250}, schema_version=1)])
    await store.append("bank-1", [Credited(amount=Decimal("3.10")), Debited(amount=Decimal("2"))])
    await store.append("bank-2", [Credited(amount=Decimal("7"))])
    await store.append("audit:2024", [Debited(amount=Decimal("1"))])
    return store


def test_init_is_idempotent(chronik: Chronik, seeded: PostgresEventStore) -> None:
    again = chronik("init")
    assert again.code == 0, again.describe()
    assert "already up to date" in again.stdout
    assert repr(seeded.schema) in again.stdout


def test_streams_json_lists_type_and_version(chronik: Chronik, seeded: PostgresEventStore) -> None:
    rows = chronik("streams", "--json", *APP).json()
    found = {row["stream_id"]: (row["type"], row["version"]) for row in rows}
    assert found == {"audit:2024": ("audit", 1), "bank-1": ("bank", 3), "bank-2": ("bank", 1)}


def test_streams_filters_by_type_and_prints_a_table(
    chronik: Chronik, seeded: PostgresEventStore
) -> None:
    rows = chronik("streams", "--type", "bank", "--json", *APP).json()
    assert [row["stream_id"] for row in rows] == ["bank-1", "bank-2"]
    table = chronik("streams", *APP)
    assert table.code == 0, table.describe()
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["STREAM", "TYPE", "VERSION", "UPDATED"]
    assert lines[2].split()[:3] == ["bank-1", "bank", "3"]


def test_history_decodes_through_the_upcasters(
    chronik: Chronik, seeded: PostgresEventStore
) -> None:
    events = chronik("history", "bank-1", "--json", *APP).json()
    assert [(e["version"], e["type"], e["data"]) for e in events] == [
        (1, "bank.Credited", {"amount": "12.5"}),
        (2, "bank.Credited", {"amount": "3.10"}),
        (3, "bank.Debited", {"amount": "2"}),
    ]
    assert (events[0]["stored_schema_version"], events[0]["schema_version"]) == (1, 2)
    table = chronik("history", "bank-1", *APP)
    assert table.code == 0, table.describe()
    assert "v2 (stored v1)" in table.stdout.splitlines()[1]


def test_history_raw_shows_what_was_stored(chronik: Chronik, seeded: PostgresEventStore) -> None:
    events = chronik("history", "bank-1", "--raw", "--json", *APP).json()
    assert events[0]["schema_version"] == 1
    assert events[0]["data"] == {"cents": 1250}
    ranged = chronik(
        "history", "bank-1", "--from-version", "2", "--to-version", "2", "--json", *APP
    ).json()
    assert [e["version"] for e in ranged] == [2]


def test_unknown_stream_is_not_found(chronik: Chronik, seeded: PostgresEventStore) -> None:
    result = chronik("history", "bank-404", *APP)
    assert result.code == 3, result.describe()
    assert "bank-404" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_missing_schema_is_not_found_with_a_hint(chronik: Chronik) -> None:
    result = chronik("streams", "--schema", "cli_never_created", *APP)
    assert result.code == 3, result.describe()
    assert "chronik init" in result.stderr


def test_debug_shows_the_traceback(chronik: Chronik, seeded: PostgresEventStore) -> None:
    result = chronik("--debug", "history", "bank-404", *APP)
    assert result.code == 3
    assert "Traceback" in result.stderr
