"""The shop, end to end: commands, time travel, and the read model kept live.

Run it with ``PYTHONPATH=examples python -m shopping_cart.main``; without
``DATABASE_URL``/``REDIS_URL`` it uses embedded servers under ``./.chronik``.
Prints the stream id of the cart it made (the CLI walk-through uses it).
"""

from __future__ import annotations

import asyncio
import os
import uuid

from aggregates import Repository
from eventstore import PostgresEventStore
from projections import ProjectionRunner, RedisReadModel, StoreFeedSource, status

from .cart import Cart, CartClosed
from .read_model import CART_CONTENTS, cart_contents


async def main() -> None:
    # --8<-- [start:connect]
    store = await PostgresEventStore.connect(os.environ.get("DATABASE_URL"))
    read_model = await RedisReadModel.connect(os.environ.get("REDIS_URL"))
    repository = Repository(store, [Cart])
    # --8<-- [end:connect]
    try:
        # --8<-- [start:commands]
        cart_id = uuid.uuid4().hex[:8]
        # create(): a new stream; the function runs the first command(s).
        await repository.create(Cart, cart_id, lambda cart: cart.add("tea", 2, 450))
        # update(): load, run the command, save; retried on a concurrent write.
        await repository.update(Cart, cart_id, lambda cart: cart.add("mug", 1, 1200))
        await repository.update(Cart, cart_id, lambda cart: cart.remove("tea"))
        cart = await repository.update(Cart, cart_id, lambda cart: cart.check_out())
        print(cart.stream_id, cart.version, cart.state.total_cents)  # cart-... 4 1200

        try:  # a refused command records nothing
            await repository.update(Cart, cart_id, lambda cart: cart.add("spoon", 1, 300))
        except CartClosed as refused:
            print("refused:", refused)
        # --8<-- [end:commands]

        # --8<-- [start:time_travel]
        before_removal = await repository.load(Cart, cart_id, at_version=2)
        print(sorted(before_removal.state.lines), before_removal.state.total_cents)
        # ['mug', 'tea'] 2100
        # --8<-- [end:time_travel]

        # --8<-- [start:runner]
        # A service runs its projections next to it (or in `chronik run`): catch up
        # from the checkpoint, then follow the feed live until stopped.
        stop = asyncio.Event()
        runner = ProjectionRunner(StoreFeedSource(store), [(CART_CONTENTS, read_model)])
        running = asyncio.create_task(runner.run(stop))
        # Here we wait for the read model to catch up, then stop the runner.
        while True:
            now = await status(CART_CONTENTS, read_model, store)
            if now.active and now.lag_events == 0:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await running

        print(await cart_contents(read_model, cart.stream_id))
        # CartContents(cart='cart-...', quantities={'mug': 1}, checked_out_cents=1200)
        # --8<-- [end:runner]
    finally:
        await read_model.close()
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
