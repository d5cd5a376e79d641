"""Accounts for the runbook: one written partly by release 1, one closed without a reason.

Prints the two account ids (Ann's first).
"""

from __future__ import annotations

import asyncio
import os
import uuid

from aggregates import Repository
from eventstore import NewEvent, PostgresEventStore

from .account import Account


async def seed() -> tuple[str, str]:
    async with await PostgresEventStore.connect(os.environ.get("DATABASE_URL")) as store:
        repository = Repository(store, [Account])
        ann, ben = f"ann-{uuid.uuid4().hex[:6]}", f"ben-{uuid.uuid4().hex[:6]}"
        await repository.create(Account, ann, lambda account: account.open("Ann"))
        # Release 1 stored deposits in cents (schema version 1): what old data looks like.
        old = NewEvent("bank.Deposited", {"cents": 10000}, schema_version=1)
        await store.append(Account.stream_id_for(ann), [old], expected_version=1)
        await repository.update(Account, ann, lambda account: account.withdraw("30.25"))
        await repository.create(
            Account, ben, lambda account: (account.open("Ben"), account.deposit("10.00"))
        )
        await repository.update(Account, ben, lambda account: account.close())
        return ann, ben


if __name__ == "__main__":
    print(*asyncio.run(seed()))
