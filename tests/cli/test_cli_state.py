"""Time travel from the command line: state at a version, a time and a feed position."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from cli_runner import Chronik

from aggregates import Repository
from aggregates.ledger import Ledger
from eventstore import Position, PostgresEventStore


@dataclass
class Point:
    version: int
    balance: Decimal
    position: Position
    recorded_at: datetime


@pytest.fixture(scope="module")
async def history(
    chronik: Chronik, cli_schema: str, make_pg_store: Callable[..., Awaitable[PostgresEventStore]]
) -> tuple[str, str, list[Point]]:
    """Two ledgers written in turns; for the first, what each version looked like."""
    assert chronik("init").code == 0
    store = await make_pg_store(schema=cli_schema)
    repository = Repository(store, [Ledger])
    first, other = f"tt-{uuid.uuid4().hex[:8]}", f"tt-{uuid.uuid4().hex[:8]}"
    await repository.create(Ledger, first, lambda a: a.open("Tess", "EUR"))
    await repository.create(Ledger, other, lambda a: a.open("Omar", "EUR"))
    points: list[Point] = []
    for amount in ("100", "25.50", "3", "40"):
        await repository.update(Ledger, first, lambda a, m=amount: a.deposit(m))
        await repository.update(Ledger, other, lambda a, m=amount: a.deposit(m))
    balance = Decimal(0)
    async for event in store.read_stream(Ledger.stream_id_for(first)):
        if event.type == "ledger.Deposited":
            balance += Decimal(event.data["amount"])
        points.append(Point(event.version, balance, event.position, event.recorded_at))
    return first, other, points


def _state(chronik: Chronik, *args: str) -> dict[str, object]:
    result = chronik("state", *args, "--json")
    value = result.json()
    assert isinstance(value, dict)
    return value


def test_state_now_and_at_each_version(
    chronik: Chronik, history: tuple[str, str, list[Point]]
) -> None:
    first, _, points = history
    now = _state(chronik, "ledger", first)
    assert now["version"] == points[-1].version == 5
    assert Decimal(now["state"]["balance"]) == Decimal("168.50")  # type: ignore[index]
    for point in (points[0], points[2]):
        then = _state(chronik, "ledger", first, "--at-version", str(point.version))
        assert then["version"] == point.version
        assert Decimal(then["state"]["balance"]) == point.balance  # type: ignore[index]


def test_state_as_of_a_time(chronik: Chronik, history: tuple[str, str, list[Point]]) -> None:
    first, _, points = history
    target = points[2]
    # Between two events: the state is the one after the earlier event.
    between = target.recorded_at + (points[3].recorded_at - target.recorded_at) / 2
    then = _state(chronik, "ledger", first, "--as-of", between.isoformat())
    assert then["version"] == target.version
    assert Decimal(then["state"]["balance"]) == target.balance  # type: ignore[index]
    before = chronik(
        "state", "ledger", first, "--as-of", (points[0].recorded_at - timedelta(days=1)).isoformat()
    )
    assert before.code == 3, before.describe()
    assert "did not exist yet" in before.stderr


def test_state_at_a_feed_position_is_a_consistent_cut(
    chronik: Chronik, history: tuple[str, str, list[Point]]
) -> None:
    first, other, points = history
    cut = points[3].position
    mine = _state(chronik, "ledger", first, "--at-position", str(cut))
    assert mine["version"] == points[3].version
    assert Decimal(mine["state"]["balance"]) == points[3].balance  # type: ignore[index]
    # The other ledger was written after each of ours: at our cut it is one deposit behind.
    theirs = _state(chronik, "ledger", other, "--at-position", str(cut))
    assert theirs["version"] == points[3].version - 1


def test_state_human_output_and_unknowns(
    chronik: Chronik, history: tuple[str, str, list[Point]]
) -> None:
    first, _, _ = history
    table = chronik("state", "ledger", first, "--at-version", "2")
    assert table.code == 0, table.describe()
    assert "version 2 of 5" in table.stdout
    assert "balance:" in table.stdout and "100" in table.stdout
    beyond = chronik("state", "ledger", first, "--at-version", "99")
    assert beyond.code == 3, beyond.describe()
    # Past the bigint range: the same answer, not "unexpected UndefinedFunction".
    huge = chronik("state", "ledger", first, "--at-version", "99999999999999999999999")
    assert huge.code == 3, huge.describe()
    assert "is at version 5" in huge.stderr and "unexpected" not in huge.stderr
    unknown_id = chronik("state", "ledger", "nobody-" + uuid.uuid4().hex[:6])
    assert unknown_id.code == 3, unknown_id.describe()
    unknown_type = chronik("state", "spaceship", first)
    assert unknown_type.code == 3, unknown_type.describe()
    assert "known: ledger, order" in unknown_type.stderr
