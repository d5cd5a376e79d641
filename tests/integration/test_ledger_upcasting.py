"""The ledger's shipped migration, proved with data as release 1 wrote it, on PostgreSQL.

Release 1 stored ``ledger.AccountOpened{holder, currency}``, ``ledger.Deposited{amount}``
and ``ledger.Withdrawn{amount, memo}`` with amounts as JSON numbers, all at schema
version 1.  These tests append exactly that and load it through the current classes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from aggregates import Repository
from aggregates.ledger import Deposited, Ledger, Opened, Withdrawn
from eventstore import (
    EventValidationError,
    InMemoryEventStore,
    NewEvent,
    PostgresEventStore,
    UpcastError,
)
from snapshots import OnDemand, PostgresSnapshotStore

D = Decimal


def release_1(kind: str, **data: Any) -> NewEvent:
    return NewEvent(f"ledger.{kind}", data, schema_version=1)


RELEASE_1_HISTORY = [
    release_1("AccountOpened", holder="ann", currency="EUR"),
    release_1("Deposited", amount=100),
    release_1("Deposited", amount=0.1),
    release_1("Withdrawn", amount=20.5, memo="groceries"),
    release_1("Deposited", amount=0.2),
]


def new_id() -> str:
    return uuid4().hex[:16]


@pytest.fixture
def repo(pg_store: PostgresEventStore) -> Repository:
    return Repository(pg_store, [Ledger])


async def test_a_release_1_ledger_loads_as_current_events(
    repo: Repository, pg_store: PostgresEventStore
) -> None:
    ledger_id = new_id()
    await pg_store.append(f"ledger-{ledger_id}", RELEASE_1_HISTORY)
    ledger = await repo.load(Ledger, ledger_id)
    assert (ledger.owner, ledger.currency, ledger.overdraft_limit) == ("ann", "EUR", 0)
    assert ledger.balance == D("79.8")  # exact: 100 + 0.1 - 20.5 + 0.2, no float drift
    assert ledger.version == 5

    decoded = [repo.codec.decode(e) async for e in pg_store.read_stream(f"ledger-{ledger_id}")]
    assert decoded == [
        Opened(owner="ann", currency="EUR", overdraft_limit=D(0)),
        Deposited(amount=D(100), currency=None),
        Deposited(amount=D("0.1"), currency=None),
        Withdrawn(amount=D("20.5"), currency=None, description="groceries"),
        Deposited(amount=D("0.2"), currency=None),
    ]
    # The stored rows keep the shape they were written in: migration happens on read.
    raw = [e async for e in pg_store.read_stream(f"ledger-{ledger_id}")]
    assert raw[0].type == "ledger.AccountOpened" and raw[0].data == {
        "holder": "ann",
        "currency": "EUR",
    }
    assert raw[1].schema_version == 1


async def test_release_2_continues_a_release_1_ledger(
    repo: Repository, pg_store: PostgresEventStore
) -> None:
    ledger_id = new_id()
    await pg_store.append(f"ledger-{ledger_id}", RELEASE_1_HISTORY)
    await repo.update(Ledger, ledger_id, lambda led: led.withdraw(D("79.8"), description="all"))
    await repo.update(Ledger, ledger_id, lambda led: led.close())
    ledger = await repo.load(Ledger, ledger_id)
    assert ledger.balance == 0 and ledger.status == "closed"
    raw = [e async for e in pg_store.read_stream(f"ledger-{ledger_id}")]
    assert [(e.type, e.schema_version) for e in raw[-2:]] == [
        ("ledger.Withdrawn", 2),
        ("ledger.Closed", 1),
    ]
    assert raw[-2].data == {"amount": "79.8", "currency": "EUR", "description": "all"}
    # Time travel into the release-1 part of the history upcasts too.
    assert (await repo.load(Ledger, ledger_id, at_version=3)).balance == D("100.1")


async def test_events_after_a_snapshot_still_go_through_the_upcasters(
    pg_store: PostgresEventStore,
) -> None:
    snapshots = PostgresSnapshotStore.from_event_store(pg_store)
    repo = Repository(pg_store, [Ledger], snapshots=snapshots, snapshot_policy=OnDemand())
    plain = Repository(pg_store, [Ledger])
    ledger_id = new_id()
    stream_id = f"ledger-{ledger_id}"
    await pg_store.append(stream_id, RELEASE_1_HISTORY[:2])
    snapshot = await repo.snapshot(await repo.load(Ledger, ledger_id))
    assert snapshot.version == 2
    # A release-1 writer still running during the rollout appends old shapes after it.
    await pg_store.append(stream_id, RELEASE_1_HISTORY[2:], expected_version=2)
    with_snapshot = await repo.load(Ledger, ledger_id)
    assert with_snapshot.state == (await plain.load(Ledger, ledger_id)).state
    assert with_snapshot.balance == D("79.8")
    assert repo.snapshots_ignored == 0
    await snapshots.delete(stream_id)


async def test_a_failing_step_names_stream_version_type_stored_version_and_step(
    repo: Repository, pg_store: PostgresEventStore
) -> None:
    ledger_id = new_id()
    await pg_store.append(
        f"ledger-{ledger_id}",
        [release_1("AccountOpened", owner="ann", currency="EUR")],  # no "holder"
    )
    with pytest.raises(UpcastError) as caught:
        await repo.load(Ledger, ledger_id)
    error = caught.value
    assert (error.stream_id, error.version, error.event_type, error.schema_version) == (
        f"ledger-{ledger_id}",
        1,
        "ledger.AccountOpened",
        1,
    )
    assert error.step == "ledger.AccountOpened v1 -> ledger.Opened v2"


async def test_upcast_data_that_does_not_validate_names_the_event(
    repo: Repository, pg_store: PostgresEventStore
) -> None:
    ledger_id = new_id()
    await pg_store.append(
        f"ledger-{ledger_id}",
        [
            release_1("AccountOpened", holder="ann", currency="EUR"),
            release_1("Deposited", amount="lots"),
        ],
    )
    with pytest.raises(EventValidationError, match=rf"ledger-{ledger_id}.*version 2"):
        await repo.load(Ledger, ledger_id)


def test_the_chain_is_complete_for_the_current_classes() -> None:
    # Building a Repository validates the merged chain (it would raise on a gap).
    repo = Repository(InMemoryEventStore(), [Ledger])
    assert [u.step for u in Ledger.upcasters or ()] == [
        "ledger.AccountOpened v1 -> ledger.Opened v2",
        "ledger.Deposited v1->v2",
        "ledger.Withdrawn v1->v2",
    ]
    assert repo.codec.event_classes["ledger.Opened"] is Opened
