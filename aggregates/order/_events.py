"""The order's events (all at schema version 1)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from eventstore import Event

from .._money import Money


class OrderLine(BaseModel):
    """One line of an order: ``quantity`` units of ``sku`` at ``unit_price`` each."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)
    unit_price: Money = Field(ge=0)


class OrderPlaced(Event):
    event_type: ClassVar[str] = "order.Placed"

    customer: str
    lines: tuple[OrderLine, ...]


class ItemAdded(Event):
    """Units added; if the sku is already in the order, its quantity grows."""

    event_type: ClassVar[str] = "order.ItemAdded"

    line: OrderLine


class ItemRemoved(Event):
    """``quantity`` units of ``sku`` removed; the line goes when none are left."""

    event_type: ClassVar[str] = "order.ItemRemoved"

    sku: str
    quantity: int = Field(gt=0)


class OrderPaid(Event):
    event_type: ClassVar[str] = "order.Paid"

    amount: Money


class OrderShipped(Event):
    event_type: ClassVar[str] = "order.Shipped"

    carrier: str = ""


class OrderCancelled(Event):
    event_type: ClassVar[str] = "order.Cancelled"

    reason: str = ""


ORDER_EVENTS: tuple[type[Event], ...] = (
    OrderPlaced,
    ItemAdded,
    ItemRemoved,
    OrderPaid,
    OrderShipped,
    OrderCancelled,
)
