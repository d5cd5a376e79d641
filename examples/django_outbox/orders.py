"""A Django service that saves its row and appends its events in one transaction."""

from __future__ import annotations

from django.db import connection, transaction

from eventstore import NO_STREAM, AppendResult, NewEvent
from eventstore.sync import PostgresEventStore

from .models import Order


# --8<-- [start:place]
def place_order(store: PostgresEventStore, order_id: str, cents: int) -> AppendResult:
    """Save the order row and append its event: both commit, or neither does."""
    with transaction.atomic():
        Order.objects.create(order_id=order_id, cents=cents)
        return store.append(
            f"order-{order_id}",
            [NewEvent("shop.OrderPlaced", {"order_id": order_id, "cents": cents})],
            NO_STREAM,
            # Django's own psycopg 3 connection, inside the atomic block.
            connection=connection.connection,
        )


# --8<-- [end:place]
