"""``chronik trace``: from a demo transfer's start to every event it led to."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_runner import Chronik


@pytest.fixture(scope="module")
def ran(chronik: Chronik) -> None:
    assert chronik("demo", "--json").code == 0
    result = chronik("run", "--until-caught-up", "--json")
    assert result.code == 0, result.describe()


def _started_id(chronik: Chronik, saga_id: str) -> str:
    history = chronik("history", f"saga-{saga_id}", "--raw", "--json").json()
    assert history[0]["type"] == "saga.Started"
    return str(history[0]["event_id"])


def test_trace_of_a_saga_start_shows_the_steps_it_caused(chronik: Chronik, ran: None) -> None:
    started = _started_id(chronik, "demo-transfer-1")
    rows: list[dict[str, Any]] = chronik("trace", started, "--json").json()
    assert rows[0]["event_id"] == started and rows[0]["depth"] == 0
    by_id = {r["event_id"]: r for r in rows}
    types = [r["type"] for r in rows]
    assert "ledger.Withdrawn" in types and "ledger.Deposited" in types
    assert len({r["stream_id"] for r in rows}) == 3  # the saga and both ledgers
    for row in rows[1:]:
        # Every node hangs under its cause, which is in the tree, one level up.
        assert row["causation_id"] == row["parent"]
        assert by_id[row["parent"]]["depth"] == row["depth"] - 1
        assert row["correlation_id"] == rows[0]["correlation_id"]
        assert row["after_ms"] >= 0
    # 'run --until-caught-up' brought the live projections past these events; one
    # that never ran has applied nothing.
    status = chronik("projections", "status", "--json").json()
    ran_ = sorted(p["name"] for p in status if p["checkpoint"] is not None)
    assert ran_ and len(ran_) < len(status)
    assert all(sorted(r["applied_by"]) == ran_ for r in rows)

    by_correlation = chronik("trace", rows[0]["correlation_id"], "--json").json()
    assert [r["event_id"] for r in by_correlation] == [r["event_id"] for r in rows]
    table = chronik("trace", started)
    assert table.code == 0, table.describe()
    assert "  ledger.Withdrawn" in table.stdout  # indented under its cause


def test_trace_of_an_unknown_id_is_not_found(chronik: Chronik, ran: None) -> None:
    result = chronik("trace", "no-such-correlation")
    assert result.code == 3, result.describe()
    assert "no-such-correlation" in result.stderr


def test_status_watch_refreshes_until_the_count(chronik: Chronik, ran: None) -> None:
    result = chronik("projections", "status", "--watch", "0.1", "--count", "3", "--json")
    assert result.code == 0, result.describe()
    refreshes = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(refreshes) == 3
    assert all(
        {r["name"] for r in rows} == {"ledger_balances", "order_summaries"} for rows in refreshes
    )
    table = chronik("projections", "status", "--watch", "0.1", "--count", "2")
    assert table.code == 0, table.describe()
    assert table.stdout.count("PROJECTION") == 2
