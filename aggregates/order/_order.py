"""The Order aggregate: lines of items, payment of exactly the total, shipping.

Life cycle: ``new`` -place-> ``placed`` -pay-> ``paid`` -ship-> ``shipped``; ``cancel``
from ``placed`` or ``paid`` (refunds are another aggregate's business), never after
shipping.  Items change only while ``placed``.  The total is derived from the lines
every time, never stored, so it cannot drift from them.  Each refusal is an
``OrderError`` subclass naming the order and the rule, and records nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeAlias

from pydantic import BaseModel

from .._aggregate import Aggregate, applies, command
from .._errors import InvalidAmount
from .._money import Money, MoneyFormatError, MoneyInput, parse_money
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
    ItemAdded,
    ItemRemoved,
    OrderCancelled,
    OrderLine,
    OrderPaid,
    OrderPlaced,
    OrderShipped,
)

ItemInput: TypeAlias = OrderLine | tuple[str, int, MoneyInput] | Mapping[str, Any]
"""An item for ``place``: an ``OrderLine``, ``(sku, quantity, unit_price)`` or a mapping."""


class OrderStatus(StrEnum):
    NEW = "new"
    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


class OrderState(BaseModel):
    status: OrderStatus = OrderStatus.NEW
    customer: str = ""
    lines: dict[str, OrderLine] = {}
    paid: Money = Decimal(0)

    @property
    def total(self) -> Decimal:
        return sum((line.quantity * line.unit_price for line in self.lines.values()), Decimal(0))


class Order(Aggregate[OrderState]):
    """A customer's order: place, add_item, remove_item, pay, ship, cancel."""

    type_name = "order"

    @property
    def status(self) -> OrderStatus:
        return self.state.status

    @property
    def lines(self) -> tuple[OrderLine, ...]:
        return tuple(self.state.lines.values())

    @property
    def total(self) -> Decimal:
        return self.state.total

    # -- commands ------------------------------------------------------------

    @command
    def place(self, customer: str, items: Iterable[ItemInput]) -> None:
        if self.state.status is not OrderStatus.NEW:
            raise self.refuse(OrderAlreadyPlaced, f"the order is already {self.state.status}")
        if not isinstance(customer, str) or not customer.strip():
            raise self.refuse(InvalidCustomer, f"customer must be a non-empty string: {customer!r}")
        lines = tuple(self._line(item) for item in items)
        if not lines:
            raise self.refuse(EmptyOrder, "an order needs at least one item")
        skus = [line.sku for line in lines]
        duplicates = sorted({sku for sku in skus if skus.count(sku) > 1})
        if duplicates:
            raise self.refuse(InvalidItem, f"sku listed more than once: {', '.join(duplicates)}")
        self.record(OrderPlaced(customer=customer, lines=lines))

    @command
    def add_item(self, sku: str, quantity: int, unit_price: MoneyInput) -> None:
        self._require(OrderStatus.PLACED, "add items")
        line = self._line((sku, quantity, unit_price))
        existing = self.state.lines.get(line.sku)
        if existing is not None and existing.unit_price != line.unit_price:
            raise self.refuse(
                PriceMismatch,
                f"{line.sku} is in the order at {existing.unit_price}, not {line.unit_price}",
            )
        self.record(ItemAdded(line=line))

    @command
    def remove_item(self, sku: str, quantity: int | None = None) -> None:
        self._require(OrderStatus.PLACED, "remove items")
        existing = self.state.lines.get(sku)
        if existing is None:
            raise self.refuse(ItemNotInOrder, f"{sku!r} is not in the order")
        if quantity is None:
            quantity = existing.quantity
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise self.refuse(InvalidItem, f"quantity must be a positive int, got {quantity!r}")
        if quantity > existing.quantity:
            raise self.refuse(
                ItemNotInOrder,
                f"cannot remove {quantity} of {sku!r}: the order holds {existing.quantity}",
            )
        self.record(ItemRemoved(sku=sku, quantity=quantity))

    @command
    def pay(self, amount: MoneyInput) -> None:
        self._require(OrderStatus.PLACED, "pay")
        value = self._money(amount, "payment")
        total = self.state.total
        if not self.state.lines:
            raise self.refuse(EmptyOrder, "the order has no items left to pay for")
        if value != total:
            raise self.refuse(
                PaymentMismatch, f"payment of {value} does not equal the total {total}"
            )
        self.record(OrderPaid(amount=value))

    @command
    def ship(self, carrier: str = "") -> None:
        self._require(OrderStatus.PAID, "ship")
        self.record(OrderShipped(carrier=carrier))

    @command
    def cancel(self, reason: str = "") -> None:
        status = self.state.status
        if status not in (OrderStatus.PLACED, OrderStatus.PAID):
            self._require(OrderStatus.PLACED, "cancel")
        self.record(OrderCancelled(reason=reason))

    # -- rules ---------------------------------------------------------------

    def _require(self, wanted: OrderStatus, action: str) -> None:
        status = self.state.status
        if status is wanted:
            return
        error: type[OrderError]
        if status is OrderStatus.NEW:
            error = OrderNotPlaced
        elif status is OrderStatus.CANCELLED:
            error = AlreadyCancelled
        elif status is OrderStatus.SHIPPED:
            error = AlreadyShipped
        elif wanted is OrderStatus.PAID:
            error = OrderNotPaid
        else:
            error = OrderNotOpen
        raise self.refuse(error, f"cannot {action}: the order is {status}")

    def _line(self, item: ItemInput) -> OrderLine:
        if isinstance(item, OrderLine):
            return item
        if isinstance(item, Mapping):
            sku, quantity, price = item.get("sku"), item.get("quantity"), item.get("unit_price")
        elif isinstance(item, tuple) and len(item) == 3:
            sku, quantity, price = item
        else:
            raise self.refuse(
                InvalidItem, f"an item is (sku, quantity, unit_price) or an OrderLine: {item!r}"
            )
        if not isinstance(sku, str) or not sku:
            raise self.refuse(InvalidItem, f"sku must be a non-empty string, got {sku!r}")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise self.refuse(
                InvalidItem, f"quantity of {sku} must be a positive int, got {quantity!r}"
            )
        unit_price = self._money(price, f"unit price of {sku}")
        if unit_price < 0:
            raise self.refuse(InvalidItem, f"unit price of {sku} must be >= 0, got {unit_price}")
        return OrderLine(sku=sku, quantity=quantity, unit_price=unit_price)

    def _money(self, value: Any, what: str) -> Decimal:
        try:
            return parse_money(value, what)
        except MoneyFormatError as error:
            raise self.refuse(InvalidAmount, str(error)) from error

    # -- evolving the state --------------------------------------------------

    @applies(OrderPlaced)
    def _placed(self, event: OrderPlaced) -> None:
        state = self.state
        state.status = OrderStatus.PLACED
        state.customer = event.customer
        state.lines = {line.sku: line for line in event.lines}

    @applies(ItemAdded)
    def _item_added(self, event: ItemAdded) -> None:
        lines, line = self.state.lines, event.line
        existing = lines.get(line.sku)
        if existing is not None:
            line = existing.model_copy(update={"quantity": existing.quantity + line.quantity})
        lines[line.sku] = line

    @applies(ItemRemoved)
    def _item_removed(self, event: ItemRemoved) -> None:
        lines = self.state.lines
        left = lines[event.sku].quantity - event.quantity
        if left > 0:
            lines[event.sku] = lines[event.sku].model_copy(update={"quantity": left})
        else:
            del lines[event.sku]

    @applies(OrderPaid)
    def _paid(self, event: OrderPaid) -> None:
        self.state.status = OrderStatus.PAID
        self.state.paid = event.amount

    @applies(OrderShipped)
    def _shipped(self, event: OrderShipped) -> None:
        self.state.status = OrderStatus.SHIPPED

    @applies(OrderCancelled)
    def _cancelled(self, event: OrderCancelled) -> None:
        self.state.status = OrderStatus.CANCELLED
