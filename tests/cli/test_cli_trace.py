"""``chronik trace``: from a demo transfer's start to every event it led to."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from cli_runner import Chronik

from eventstore import NewEvent, PostgresEventStore


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


async def test_trace_shows_the_kafka_hop_of_what_a_relay_published(
    chronik: Chronik, ran: None, kafka_bootstrap: str, pg_dsn: str, cli_schema: str
) -> None:
    started = _started_id(chronik, "demo-transfer-1")
    before = chronik("trace", started, "--json").json()
    # The demo relayed what it seeded (to a mock cluster gone since; the hop was real).
    assert all(r["kafka"] == [_hop("demo", r, "chronik.")] for r in before)

    kafka = Chronik({**chronik.env, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}, chronik.cwd)
    prefix = f"tr{uuid.uuid4().hex[:8]}."
    relayed = kafka("relay", "--until-caught-up", "--topic-prefix", prefix)
    assert relayed.code == 0, relayed.describe()
    # Its progress, as plain lines (stderr is not a terminal): the whole feed, at 100%.
    lines = [line for line in relayed.stderr.splitlines() if line.startswith("relaying")]
    assert lines and lines[-1].startswith("relaying default  100%  "), relayed.describe()
    # Written after the relay ran: not published, and the trace must not say it was.
    store = await PostgresEventStore.connect(pg_dsn, schema=cli_schema, pool_size=1)
    try:
        late = f"ledger-{uuid.uuid4().hex[:6]}"
        late_id = uuid.uuid4()
        await store.append(late, [NewEvent("ledger.Touched", {"n": 1}, event_id=late_id)])
    finally:
        await store.close()

    rows = chronik("trace", started, "--json", "--topic-prefix", f"default={prefix}").json()
    assert [r["event_id"] for r in rows] == [r["event_id"] for r in before]
    for row in rows:
        assert row["kafka"] == [_hop("default", row, prefix), _hop("demo", row, "chronik.")]
    table = chronik("trace", started, "--topic-prefix", f"default={prefix}")
    assert table.code == 0, table.describe()
    assert f"=> kafka {prefix}ledger" in table.stdout and "relay default" in table.stdout

    unpublished = chronik("trace", str(late_id), "--json").json()
    assert [r["kafka"] for r in unpublished] == [[]]


def _hop(relay: str, row: dict[str, Any], prefix: str) -> dict[str, Any]:
    kind = row["stream_id"].split("-")[0]
    return {"relay": relay, "mode": "at-least-once", "topic": prefix + kind}
