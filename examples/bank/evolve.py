"""Evolving events: old stored data is upcast on load; snapshots retire themselves.

Run: ``PYTHONPATH=examples python -m bank.evolve``.
"""

from __future__ import annotations

import asyncio
import os
import uuid

from aggregates import Repository
from eventstore import NewEvent, PostgresEventStore
from snapshots import EveryNEvents, PostgresSnapshotStore

from .account import Account


async def main() -> None:
    async with await PostgresEventStore.connect(os.environ.get("DATABASE_URL")) as store:
        # --8<-- [start:upcast]
        account_id = f"eve-{uuid.uuid4().hex[:6]}"
        stream = Account.stream_id_for(account_id)
        # What release 1 stored: Deposited at schema version 1, in cents.
        old = [
            NewEvent("bank.Opened", {"owner": "Eve"}),
            NewEvent("bank.Deposited", {"cents": 2550}, schema_version=1),
        ]
        await store.append(stream, old)

        repository = Repository(store, [Account])  # checks the upcaster chain for gaps
        account = await repository.load(Account, account_id)
        print(account.state.balance)  # 25.5: the v1 event was upcast to v2 on the way in

        # The raw store API returns events as stored: no upcasting there.
        async for recorded in store.read_stream(stream):
            print(recorded.type, recorded.schema_version, recorded.data)
        # bank.Opened 1 {'owner': 'Eve'}
        # bank.Deposited 1 {'cents': 2550}
        # ...a codec upcasts and validates them when you need typed events:
        async for recorded in store.read_stream(stream):
            print(repository.codec.decode(recorded))
        # owner='Eve'
        # amount=Decimal('25.5')
        # --8<-- [end:upcast]

        # --8<-- [start:snapshots]
        snapshots = PostgresSnapshotStore.from_event_store(store)
        # Every 100 events by default; here every 3rd version, so this save writes one.
        with_snapshots = Repository(
            store, [Account], snapshots=snapshots, snapshot_policy=EveryNEvents(3)
        )
        await with_snapshots.update(Account, account_id, lambda a: a.deposit("4.50"))
        print(await snapshots.load(stream))  # Snapshot(stream_id='account-eve-...', version=3, ...

        # A release changes what the state means without changing its schema, so it
        # bumps state_version: the fingerprint differs and old snapshots are ignored.
        class AccountV2(Account):
            state_version = 2

        upgraded = Repository(store, [AccountV2], snapshots=snapshots)
        account = await upgraded.load(AccountV2, account_id)
        print(account.state.balance, upgraded.snapshots_ignored)  # 30.00 1
        # The load rebuilt the state from the events and wrote a fresh snapshot.
        # --8<-- [end:snapshots]


if __name__ == "__main__":
    asyncio.run(main())
