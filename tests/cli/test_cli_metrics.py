"""``chronik run --metrics-port``: a real HTTP client against a real runner process."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from cli_runner import Chronik
from support.http_scrape import get, metrics_url, poll

from aggregates import Repository
from aggregates.ledger import Ledger
from eventstore import NewEvent, PostgresEventStore

DEADLINE = 60.0
_BALANCES = 'projection="ledger_balances"'


@pytest.fixture(scope="module")
def seeded(chronik: Chronik) -> None:
    assert chronik("demo", "--json").code == 0


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0


async def test_run_serves_metrics_health_and_readiness(
    chronik: Chronik,
    seeded: None,
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
    cli_schema: str,
) -> None:
    process = chronik.start("run", "--metrics-port", "0")
    try:
        url = metrics_url(process)

        assert get(url + "/healthz") == (200, "alive\n")
        # Ready once every projection it leads has caught up with the seeded feed.

        def leading() -> dict[str, Any] | None:
            code, body = get(url + "/readyz")
            found: dict[str, Any] = json.loads(body) if code == 200 else {}
            # Standby while taking the lock at the start (ready, and stated); alone, it leads.
            roles = {p["role"] for p in found.get("projections", {}).values()}
            return found if roles == {"leader"} else None

        ready = poll(leading)
        assert ready["ready"] is True
        # Ready within the bound (default 1000 events), not necessarily at the head.
        assert all(p["lag_events"] <= 1000 for p in ready["projections"].values())

        # New work: the runner projects it, and the scrape shows the batch and no lag.
        store = await make_pg_store(cli_schema)
        repo = Repository(store, [Ledger])
        await repo.create(Ledger, "metrics-1", lambda a: (a.open("M", "EUR"), a.deposit(3)))

        def batched() -> str | None:
            metrics = get(url + "/metrics")[1]
            found = re.search(
                r'^chronik_projection_batch_seconds_count\{projection="ledger_balances"\} (\S+)',
                metrics,
                re.M,
            )
            lag = re.search(
                r'^chronik_projection_lag_events\{projection="ledger_balances"\} 0\.0$',
                metrics,
                re.M,
            )
            return metrics if found and float(found.group(1)) > 0 and lag else None

        metrics = poll(batched)
        assert re.search(
            r'^chronik_projection_leader\{projection="ledger_balances"\} 1\.0$', metrics, re.M
        )
        assert "chronik_feed_held_back_events 0.0" in metrics
        assert get(url + "/nothing")[0] == 404
    finally:
        _stop(process)


async def test_relay_serves_its_lag_and_readiness(
    chronik: Chronik,
    seeded: None,
    kafka_bootstrap: str,
    make_pg_store: Callable[..., Awaitable[PostgresEventStore]],
    cli_schema: str,
) -> None:
    kafka = Chronik({**chronik.env, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}, chronik.cwd)
    prefix = f"m{uuid.uuid4().hex[:8]}."
    process = kafka.start("relay", "--name", "metered", "--topic-prefix", prefix,
                          "--metrics-port", "0")  # fmt: skip
    try:
        url = metrics_url(process)

        def leading() -> dict[str, Any] | None:
            code, body = get(url + "/readyz")
            found: dict[str, Any] = json.loads(body)["relays"]["metered"] if code == 200 else {}
            # A standby is ready too (stated as such); this one is alone, so it leads.
            return found if found.get("role") == "leader" else None

        assert poll(leading)["ready"] is True
        store = await make_pg_store(cli_schema)
        await store.append(f"ledger-{uuid.uuid4().hex[:6]}", [NewEvent("ledger.Metered", {})])

        def published() -> str | None:
            metrics = get(url + "/metrics")[1]
            lag = re.search(r'^chronik_relay_lag_events\{relay="metered"\} 0\.0$', metrics, re.M)
            sent = re.search(r"^chronik_relay_published_events_total (\S+)$", metrics, re.M)
            return metrics if lag and sent and float(sent.group(1)) > 0 else None

        poll(published)
    finally:
        _stop(process)
