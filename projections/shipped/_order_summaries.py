"""Order summaries and per-customer order lists, in MongoDB.

Collections of the active slot (see ``MongoReadModel.view``)::

    orders      _id: order stream id; customer, status, lines {<sku key>: {sku,
                quantity, unit_price}}, paid, carrier, reason, placed_at, version
    customers   _id: customer; orders (order stream ids), order_count

Every handler is a blind update (``$set``, ``$inc``, ``$addToSet``): nothing reads
the model while projecting.  The order total is derived from the lines when read,
as the Order aggregate does, so it cannot drift from them.  Amounts are decimal
strings: exact, and the same in every MongoDB flavour.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aggregates.order import (
    ORDER_EVENTS,
    ItemAdded,
    ItemRemoved,
    OrderCancelled,
    OrderPaid,
    OrderPlaced,
    OrderShipped,
)
from eventstore import EventCodec, RecordedEvent

from .._mongo import MongoReadModel
from .._mongo_reads import MongoView
from .._mongo_writes import MongoWrites
from .._projection import Projection

NAME = "order_summaries"


def sku_key(sku: str) -> str:
    """A sku as a field name: MongoDB reads "." as a path and "$" as an operator."""
    return sku.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


ORDER_SUMMARIES: Projection[MongoWrites] = Projection(
    NAME,
    writes=MongoWrites,
    version=1,
    codec=EventCodec(ORDER_EVENTS),
    description="order summaries and per-customer order lists",
    must_handle=("order.*",),
)


@ORDER_SUMMARIES.on(OrderPlaced)
def _placed(event: OrderPlaced, envelope: RecordedEvent, w: MongoWrites) -> None:
    order = envelope.stream_id
    lines = {
        sku_key(line.sku): {
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price": str(line.unit_price),
        }
        for line in event.lines
    }
    w.upsert(
        "orders",
        order,
        {
            "$set": {
                "customer": event.customer,
                "status": "placed",
                "lines": lines,
                "placed_at": envelope.recorded_at.isoformat(),
                "version": envelope.version,
            }
        },
    )
    w.upsert(
        "customers",
        event.customer,
        {"$addToSet": {"orders": order}, "$inc": {"order_count": 1}},
    )


@ORDER_SUMMARIES.on(ItemAdded)
def _item_added(event: ItemAdded, envelope: RecordedEvent, w: MongoWrites) -> None:
    key, line = sku_key(event.line.sku), event.line
    w.update(
        "orders",
        envelope.stream_id,
        {
            "$inc": {f"lines.{key}.quantity": line.quantity},
            "$set": {
                f"lines.{key}.sku": line.sku,
                f"lines.{key}.unit_price": str(line.unit_price),
                "version": envelope.version,
            },
        },
    )


@ORDER_SUMMARIES.on(ItemRemoved)
def _item_removed(event: ItemRemoved, envelope: RecordedEvent, w: MongoWrites) -> None:
    w.update(
        "orders",
        envelope.stream_id,
        {
            "$inc": {f"lines.{sku_key(event.sku)}.quantity": -event.quantity},
            "$set": {"version": envelope.version},
        },
    )


@ORDER_SUMMARIES.on(OrderPaid)
def _paid(event: OrderPaid, envelope: RecordedEvent, w: MongoWrites) -> None:
    w.update(
        "orders",
        envelope.stream_id,
        {"$set": {"status": "paid", "paid": str(event.amount), "version": envelope.version}},
    )


@ORDER_SUMMARIES.on(OrderShipped)
def _shipped(event: OrderShipped, envelope: RecordedEvent, w: MongoWrites) -> None:
    w.update(
        "orders",
        envelope.stream_id,
        {"$set": {"status": "shipped", "carrier": event.carrier, "version": envelope.version}},
    )


@ORDER_SUMMARIES.on(OrderCancelled)
def _cancelled(event: OrderCancelled, envelope: RecordedEvent, w: MongoWrites) -> None:
    w.update(
        "orders",
        envelope.stream_id,
        {"$set": {"status": "cancelled", "reason": event.reason, "version": envelope.version}},
    )


# -- queries -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderSummaryLine:
    sku: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class OrderSummary:
    order: str
    customer: str
    status: str
    lines: tuple[OrderSummaryLine, ...]
    paid: Decimal | None
    version: int

    @property
    def total(self) -> Decimal:
        return sum((line.quantity * line.unit_price for line in self.lines), Decimal(0))


def summary_from_document(doc: dict[str, Any]) -> OrderSummary:
    lines = tuple(
        OrderSummaryLine(line["sku"], int(line["quantity"]), Decimal(line["unit_price"]))
        for line in sorted((doc.get("lines") or {}).values(), key=lambda item: item["sku"])
        if int(line.get("quantity", 0)) > 0
    )
    paid = doc.get("paid")
    return OrderSummary(
        order=str(doc["_id"]),
        customer=doc.get("customer", ""),
        status=doc.get("status", ""),
        lines=lines,
        paid=Decimal(paid) if paid is not None else None,
        version=int(doc.get("version", 0)),
    )


async def _view(read_model: MongoReadModel, view: MongoView | None) -> MongoView:
    return view if view is not None else await read_model.view(NAME)


async def order_summary(
    read_model: MongoReadModel, order: str, *, view: MongoView | None = None
) -> OrderSummary | None:
    """The order (by stream id) as projected, or None."""
    view = await _view(read_model, view)
    doc = await view.collection("orders").find_one({"_id": order})
    return summary_from_document(doc) if doc is not None else None


async def customer_orders(
    read_model: MongoReadModel, customer: str, *, view: MongoView | None = None
) -> list[OrderSummary]:
    """The customer's orders as projected, oldest first by stream id order."""
    view = await _view(read_model, view)
    doc = await view.collection("customers").find_one({"_id": customer})
    if doc is None:
        return []
    orders = sorted(doc.get("orders") or [])
    found = {d["_id"]: d async for d in view.collection("orders").find({"_id": {"$in": orders}})}
    return [summary_from_document(found[o]) for o in orders if o in found]
