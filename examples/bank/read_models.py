"""Read models: a MongoDB statement, dead letters and their replay, rebuilds.

Run: ``PYTHONPATH=examples python -m bank.read_models``.  With ``MONGO_URL`` unset,
the statements go to mongomock (an in-memory stand-in), as in chronik's tests.
"""

from __future__ import annotations

import asyncio
import os
import uuid

from aggregates import Repository
from eventstore import PostgresEventStore
from projections import (
    MongoReadModel,
    RedisReadModel,
    StoreFeedSource,
    list_dead_letters,
    rebuild,
    replay_dead_letters,
)

from .account import Account
from .release1 import CLOSURES_V1
from .views import CLOSURES, STATEMENTS, statement


async def mongo_read_model() -> MongoReadModel:
    # --8<-- [start:mongo]
    url = os.environ.get("MONGO_URL")
    if url:
        return await MongoReadModel.connect(url, database="bank")
    from mongomock_motor import AsyncMongoMockClient  # no server: an in-memory stand-in

    return MongoReadModel(AsyncMongoMockClient(), database="bank", bulk_writes=False)
    # --8<-- [end:mongo]


async def main() -> None:
    async with await PostgresEventStore.connect(os.environ.get("DATABASE_URL")) as store:
        repository = Repository(store, [Account])
        zoe = f"zoe-{uuid.uuid4().hex[:6]}"
        await repository.create(Account, zoe, lambda a: (a.open("Zoe"), a.deposit("12.00")))
        await repository.update(Account, zoe, lambda a: a.withdraw("2.50"))
        await repository.update(Account, zoe, lambda a: a.close())  # no reason given
        feed = StoreFeedSource(store)

        # --8<-- [start:rebuild]
        statements = await mongo_read_model()
        # rebuild(): build a fresh copy from the whole feed beside the active one (if
        # any), then swap readers to it. The first build of a projection is the same.
        result = await rebuild(STATEMENTS, statements, feed)
        print(result.version, result.slot)  # 1 v1g1
        document = await statement(statements, Account.stream_id_for(zoe))
        assert document is not None
        print(document["owner"], document["balance_cents"], len(document["lines"]))  # Zoe 950 2
        await statements.close()
        # --8<-- [end:rebuild]

        # --8<-- [start:dead_letters]
        async with await RedisReadModel.connect(os.environ.get("REDIS_URL")) as redis_model:
            # Release 1's closures handler raises on a closure without a reason: the
            # event is retried, then parked (the other events go on).
            await rebuild(CLOSURES_V1, redis_model, feed)
            for letter in await list_dead_letters(redis_model, "closures"):
                print(letter.stream_id, letter.event_type, letter.error)
            # account-zoe-... bank.Closed builtins.ValueError: account-zoe-... was closed ...

            # The fixed handler (same projection version) replays the parked events.
            replay = await replay_dead_letters(CLOSURES, redis_model)
            print(len(replay.replayed), len(replay.failed))  # 1 0
            view = await redis_model.view("closures")
            print(await view.client.hget(view.key("reasons"), Account.stream_id_for(zoe)))
            # unknown
        # --8<-- [end:dead_letters]


if __name__ == "__main__":
    asyncio.run(main())
