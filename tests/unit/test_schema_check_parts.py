"""The schema check's parts on in-memory stores: snapshots, projections, the report."""

from __future__ import annotations

import json
from decimal import Decimal

from aggregates import Repository
from aggregates.ledger import Closed, Ledger
from chronik import App, check_app_schemas
from chronik.default_app import app as shipped_app
from eventstore import InMemoryEventStore, SchemaRecord, event_json_schema
from projections.shipped import LEDGER_BALANCES
from snapshots import InMemorySnapshotStore, OnDemand, Snapshot


async def test_the_shipped_app_passes_on_its_own_history() -> None:
    store = InMemoryEventStore()
    repository = Repository(store, [Ledger])
    await repository.create(Ledger, "ann", lambda ledger: ledger.open("Ann", "EUR"))
    await repository.update(Ledger, "ann", lambda ledger: ledger.deposit(Decimal("3")))
    report = await check_app_schemas(shipped_app, store, sample=None)
    assert report.ok, report.render()
    assert report.stats["events_checked"] == 2
    assert {r.key for r in await store.schemas.list()} == {
        ("ledger.Opened", 2),
        ("ledger.Deposited", 2),
    }


async def test_stale_and_orphaned_snapshots_are_warnings() -> None:
    store, snapshots = InMemoryEventStore(), InMemorySnapshotStore()
    repository = Repository(store, [Ledger], snapshots=snapshots, snapshot_policy=OnDemand())
    ledger = await repository.create(Ledger, "bob", lambda ledger: ledger.open("Bob", "EUR"))
    await repository.snapshot(ledger)
    state = ledger.state.model_dump(mode="json")
    await snapshots.save(Snapshot("ledger-old", "ledger", 1, "an-old-fingerprint", state))
    await snapshots.save(Snapshot("gone-1", "gone", 1, "x", {}))

    report = await check_app_schemas(shipped_app, store, snapshots=snapshots)
    assert report.ok  # snapshots are an optimisation: never a reason to stop a deploy
    found = {(f.subject, tuple(sorted(f.details.items()))) for f in report.warnings}
    assert found == {
        ("ledger", (("aggregate_type", "ledger"), ("stale", 1))),
        ("gone", (("aggregate_type", "gone"), ("orphaned", 1))),
    }


async def test_a_handler_for_a_type_the_app_no_longer_produces_is_a_warning() -> None:
    app = App(name="slim", events=[], projections=[LEDGER_BALANCES])
    report = await check_app_schemas(app, InMemoryEventStore())
    handled = sorted(f.details["type"] for f in report.warnings if f.check == "projections")
    assert handled == sorted(LEDGER_BALANCES.handled_types)


async def test_the_report_as_json_and_for_people() -> None:
    store = InMemoryEventStore()
    older = {**event_json_schema(Closed), "description": "an older text"}
    await store.schemas.register([SchemaRecord("ledger.Closed", 1, older, "f", "old")])
    report = await check_app_schemas(shipped_app, store)
    data = json.loads(json.dumps(report.as_dict()))
    assert data["ok"] is True  # only the description changed
    [closed] = [f for f in data["findings"] if f["subject"] == "ledger.Closed v1"]
    assert closed["level"] == "info" and "compatible change" in closed["message"]
    assert "schemas check ok" in report.render()
    assert "(root): annotation changed: description (compatible)" in report.render()
