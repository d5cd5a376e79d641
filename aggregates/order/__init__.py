"""The shipped Order aggregate: items, payment of exactly the total, shipping, cancel.

Stream ids are ``order-<id>``; events are ``order.*`` (all at schema version 1).
"""

from .._errors import InvalidAmount
from ._errors import (
    AlreadyCancelled,
    AlreadyShipped,
    EmptyOrder,
    InvalidCustomer,
    InvalidItem,
    ItemNotInOrder,
    OrderAlreadyPlaced,
    OrderError,
    OrderNotOpen,
    OrderNotPaid,
    OrderNotPlaced,
    PaymentMismatch,
    PriceMismatch,
)
from ._events import (
    ORDER_EVENTS,
    ItemAdded,
    ItemRemoved,
    OrderCancelled,
    OrderLine,
    OrderPaid,
    OrderPlaced,
    OrderShipped,
)
from ._order import ItemInput, Order, OrderState, OrderStatus

__all__ = [
    "ORDER_EVENTS",
    "AlreadyCancelled",
    "AlreadyShipped",
    "EmptyOrder",
    "InvalidAmount",
    "InvalidCustomer",
    "InvalidItem",
    "ItemAdded",
    "ItemInput",
    "ItemNotInOrder",
    "ItemRemoved",
    "Order",
    "OrderAlreadyPlaced",
    "OrderCancelled",
    "OrderError",
    "OrderLine",
    "OrderNotOpen",
    "OrderNotPaid",
    "OrderNotPlaced",
    "OrderPaid",
    "OrderPlaced",
    "OrderShipped",
    "OrderState",
    "OrderStatus",
    "PaymentMismatch",
    "PriceMismatch",
]
