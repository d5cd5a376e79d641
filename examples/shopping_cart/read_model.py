"""The cart read model in Redis: what is in each cart, and the carts checked out."""

from __future__ import annotations

from dataclasses import dataclass

from eventstore import RecordedEvent
from projections import Projection, RedisReadModel, RedisView, RedisWrites

from .cart import CheckedOut, ItemAdded, ItemRemoved

# --8<-- [start:projection]
CART_CONTENTS: Projection[RedisWrites] = Projection(
    "cart_contents",  # the read model's name: also what `chronik rebuild` takes
    writes=RedisWrites,  # a Redis read model (MongoWrites for MongoDB)
    version=1,  # bump when the handlers change what they write: rebuilds beside the old
)


# A handler gets the typed event (already upcast to its current version), the
# envelope it came in (stream id, version, position, recorded_at...) and the batch's
# writes. It only queues writes: the runner commits them with the checkpoint.
@CART_CONTENTS.on(ItemAdded)
def item_added(event: ItemAdded, envelope: RecordedEvent, writes: RedisWrites) -> None:
    writes.hincrby(f"cart:{envelope.stream_id}", event.sku, event.quantity)


@CART_CONTENTS.on(ItemRemoved)
def item_removed(event: ItemRemoved, envelope: RecordedEvent, writes: RedisWrites) -> None:
    writes.hdel(f"cart:{envelope.stream_id}", event.sku)


@CART_CONTENTS.on(CheckedOut)
def checked_out(event: CheckedOut, envelope: RecordedEvent, writes: RedisWrites) -> None:
    writes.zadd("checked_out", {envelope.stream_id: event.total_cents})


# --8<-- [end:projection]


# --8<-- [start:queries]
@dataclass(frozen=True)
class CartContents:
    cart: str
    quantities: dict[str, int]
    checked_out_cents: int | None


async def cart_contents(read_model: RedisReadModel, stream_id: str) -> CartContents:
    # view() resolves the projection's active slot once; its keys are relative to
    # that slot, so reads keep working while a rebuild swaps in a new version.
    view: RedisView = await read_model.view(CART_CONTENTS.name)
    quantities = await view.client.hgetall(view.key("cart", stream_id))
    total = await view.client.zscore(view.key("checked_out"), stream_id)
    return CartContents(
        cart=stream_id,
        # str, not bytes: RedisReadModel.connect() makes a client that decodes replies.
        quantities={str(sku): int(count) for sku, count in sorted(quantities.items())},
        checked_out_cents=None if total is None else int(total),
    )


# --8<-- [end:queries]
